"""The demo's app: a loopback HTTP server that runs what its deploy repo's branch says.

It stands for `checkout`, deployed from `deploys/checkout.yaml` on branch main (`gitops:
git-revert`): on every scrape it reads `image:` from the branch head (`git show`), so a deploy
or a revert takes effect at once, as deploy-on-merge would. Image v1.8.0 fails 40% of requests;
every other image 0.5%. The counters carry two hours of healthy history before the bad deploy
(the process was up all along), so the lifetime ratio two scrapes give as a baseline is the
app's usual one, not the incident's. Serves /metrics, /health and /version.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

BAD_IMAGES = frozenset({"shop/checkout:v1.8.0"})
RPS = 200.0
HEALTHY_RATIO, BROKEN_RATIO = 0.005, 0.4
HISTORY_S, BROKEN_S = 7200.0, 240.0  # up two hours; the bad deploy landed four minutes ago


def deployed_image(repo: Path, branch: str = "main") -> str:
    """The `image:` the branch head's checkout.yaml names ("" when it cannot be read)."""
    out = subprocess.run(["git", "-C", str(repo), "show", f"{branch}:checkout.yaml"],
                         capture_output=True, text=True, check=False).stdout
    found = re.search(r"image:\s*(\S+)", out)
    return found.group(1) if found else ""


class Counters:
    """Requests and errors so far, advanced at RPS with the error ratio of what is deployed."""

    def __init__(self, repo: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.repo, self.clock, self.lock = repo, clock, threading.Lock()
        self.requests = RPS * (HISTORY_S + BROKEN_S)
        self.errors = RPS * (HISTORY_S * HEALTHY_RATIO + BROKEN_S * BROKEN_RATIO)
        self.at, self.image = clock(), deployed_image(repo)

    def advance(self) -> tuple[int, int, str]:
        with self.lock:
            now, self.image = self.clock(), deployed_image(self.repo)
            ratio = BROKEN_RATIO if self.image in BAD_IMAGES else HEALTHY_RATIO
            elapsed, self.at = max(now - self.at, 0.0), now
            self.requests += RPS * elapsed
            self.errors += RPS * elapsed * ratio
            return int(self.requests), int(self.errors), self.image


def _handler(counters: Counters) -> type[BaseHTTPRequestHandler]:
    class App(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer(send_body=True)

        def do_HEAD(self) -> None:
            self._answer(send_body=False)

        def _answer(self, send_body: bool) -> None:
            if self.path == "/metrics":
                requests, errors, _ = counters.advance()
                body = ("# TYPE http_requests_total counter\n"
                        f'http_requests_total{{code="200"}} {requests - errors}\n'
                        f'http_requests_total{{code="500"}} {errors}\n'
                        "# TYPE http_requests_errors_total counter\n"
                        f"http_requests_errors_total {errors}\n").encode()
            elif self.path == "/health":
                body = b"ok\n"
            elif self.path == "/version":
                body = f"{deployed_image(counters.repo)}\n".encode()
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return App


def serve(repo: Path, port: int = 0) -> ThreadingHTTPServer:
    """The app on 127.0.0.1:`port` (0: any free port), served from a daemon thread."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(Counters(repo)))
    threading.Thread(target=server.serve_forever, name="demo-app", daemon=True).start()
    return server
