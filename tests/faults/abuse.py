"""Hostile HTTP for the fault-and-abuse suite: a seeded generator of malformed webhook requests
(broken HTTP, bad tokens, hostile JSON) and raw-socket helpers that send them and read the answer.
Deterministic for a seed, so a failing request can be replayed."""

from __future__ import annotations

import json
import random
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.agent.daemon_harness import alert_payload

PATH = "/webhook/alertmanager"


@dataclass(frozen=True)
class Probe:
    """One request. `complete`: well-formed enough at the HTTP layer that it must get an answer."""

    kind: str
    raw: bytes
    complete: bool = True


def request(body: bytes, auth: str | None, *, method: str = "POST", path: str = PATH,
            extra: str = "", length: int | None = None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: hemostat\r\nConnection: close\r\n"
    head += f"Authorization: {auth}\r\n" if auth is not None else ""
    head += f"Content-Type: application/json\r\nContent-Length: {len(body) if length is None else length}\r\n"
    return (head + extra + "\r\n").encode("utf-8", "surrogateescape") + body


class Fuzzer:
    """Malformed and hostile requests; `token` is the daemon's, used only by authenticated kinds."""

    def __init__(self, seed: int, token: str) -> None:
        self.rng = random.Random(seed)
        self.token = token

    def unauthenticated(self, count: int) -> Iterator[Probe]:
        kinds = [self.garbage, self.broken_head, self.bad_token]
        for _ in range(count):
            yield self.rng.choice(kinds)()

    def authenticated(self, count: int) -> Iterator[Probe]:
        kinds: list[Callable[[], Probe]] = [self.random_body, self.random_json, self.mutated_alert,
                                            self.deep_json, self.odd_framing, self.wrong_route]
        for _ in range(count):
            yield self.rng.choice(kinds)()

    # -- without a valid token -------------------------------------------------------------------
    def garbage(self) -> Probe:
        return Probe("garbage", self.rng.randbytes(self.rng.randint(0, 400)), complete=False)

    def broken_head(self) -> Probe:
        r = self.rng
        lines = [
            f"{r.choice(['POST', 'GET', 'P0ST', 'post', 'BREW', ''])} {r.choice([PATH, '*', '', PATH + '?' + 'a' * 9000, '/../etc'])} "
            f"{r.choice(['HTTP/1.1', 'HTTP/1.0', 'HTTP/9.9', 'HTTP/1', ''])}",
            "Host: hemostat",
            r.choice(["Content-Length: -1", "Content-Length: abc", "Content-Length: 5\r\nContent-Length: 6",
                      "Transfer-Encoding: chunked\r\nContent-Length: 3", "X-Big: " + "b" * 9000,
                      "Bad Header: x", ":empty-name", "Transfer-Encoding: gzip, chunked",
                      "\x00\x01: nul", "\n".join(f"X-{i}: y" for i in range(80))]),
        ]
        return Probe("broken_head", ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def bad_token(self) -> Probe:
        body = json.dumps(alert_payload(target="checkout", fingerprint=f"{self.rng.getrandbits(64):x}")).encode()
        auth = self.rng.choice([None, "Bearer", "Bearer ", "bearer  ", "Basic " + self.token,
                                "Bearer " + self.token[:-1], "Bearer " + self.token + "x",
                                "Bearer  " + self.token[:3], self.token, "Bearer \u00e9t\u00e9"])
        return Probe("bad_token", request(body, auth))

    # -- with the token: hostile bodies and framing ---------------------------------------------
    def _auth(self) -> str:
        return f"Bearer {self.token}"

    def random_body(self) -> Probe:
        return Probe("random_body", request(self.rng.randbytes(self.rng.randint(0, 2000)), self._auth()))

    def random_json(self) -> Probe:
        return Probe("random_json", request(json.dumps(self._jsonish(4)).encode(), self._auth()))

    def mutated_alert(self) -> Probe:
        doc: dict[str, Any] = alert_payload(target=self.rng.choice(["nobody", "checkout"]),
                                            fingerprint=f"{self.rng.getrandbits(64):x}")
        alert = doc["alerts"][0]
        for _ in range(self.rng.randint(1, 3)):
            where = doc if self.rng.random() < 0.5 else alert
            where[self.rng.choice(list(where))] = self._jsonish(3)
        text = json.dumps(doc)
        if self.rng.random() < 0.2:  # NaN, a BOM, a lone surrogate, or invalid UTF-8
            text = self.rng.choice(["\ufeff" + text, text.replace('"4"', "NaN", 1), text + "\ud800"])
        return Probe("mutated_alert", request(text.encode("utf-8", "surrogatepass"), self._auth()))

    def deep_json(self) -> Probe:
        depth = self.rng.choice([17, 100, 999, 5000, 100_000])
        return Probe("deep_json", request(b"[" * depth + b"]" * depth, self._auth()))

    def odd_framing(self) -> Probe:
        r = self.rng
        body = json.dumps(alert_payload(target="nobody", fingerprint=f"{r.getrandbits(64):x}")).encode()
        choice = r.randint(0, 4)
        if choice == 0:  # chunked, with junk chunk sizes sometimes
            size = r.choice([f"{len(body):x}", "zz", "-1", "ffffffffffffffff"])
            raw = request(b"", self._auth(), extra="Transfer-Encoding: chunked\r\n").replace(
                b"Content-Length: 0\r\n", b"")
            return Probe("odd_framing", raw + size.encode() + b"\r\n" + body + b"\r\n0\r\n\r\n")
        if choice == 1:
            return Probe("odd_framing", request(body, self._auth(), extra="Content-Encoding: gzip\r\n"))
        if choice == 2:
            return Probe("odd_framing", request(body, self._auth(), length=(1 << 20) + 1))
        if choice == 3:
            return Probe("odd_framing", request(body, self._auth(), extra="Expect: 100-continue\r\n"))
        return Probe("odd_framing", request(body + b"GET /healthz HTTP/1.1\r\n\r\n", self._auth(),
                                            length=len(body)))  # a smuggled second request

    def wrong_route(self) -> Probe:
        method, path = self.rng.choice([("GET", PATH), ("PUT", PATH), ("DELETE", PATH), ("POST", "/healthz"),
                                        ("POST", "/metrics"), ("POST", "/webhook"), ("OPTIONS", "*")])
        return Probe("wrong_route", request(b"{}", self._auth(), method=method, path=path))

    def _jsonish(self, depth: int) -> Any:
        r = self.rng
        if depth <= 0 or r.random() < 0.4:
            return r.choice([None, True, r.randint(-2**70, 2**70), r.random() * 1e308, "",
                             "x" * r.randint(0, 50), "\u202e\u0000<!channel>", -0.0])
        if r.random() < 0.5:
            return [self._jsonish(depth - 1) for _ in range(r.randint(0, 4))]
        return {str(r.randint(0, 99)): self._jsonish(depth - 1) for _ in range(r.randint(0, 4))}


def send(port: int, probe: Probe, timeout: float = 15) -> int | None:
    """Send a probe on a new connection; the answer's status, or None if closed without one."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(probe.raw)
            if not probe.complete:
                sock.shutdown(socket.SHUT_WR)  # garbage: let the server see the end of it
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before we finished sending (e.g. 401 before the body): read the answer
        data = _read_all(sock)
    while data.startswith(b"HTTP/1.1 100 "):  # an interim answer to Expect: 100-continue
        data = data.split(b"\r\n\r\n", 1)[1]
    if not data.startswith(b"HTTP/1."):
        return None
    return int(data.split(b" ", 2)[1])


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")
