"""The plugin's tiny HTTP client (a real plugin would use httpx, as Hemostat's probes do)."""

from __future__ import annotations

import asyncio
import urllib.request


async def call(url: str, timeout_s: float, method: str = "GET") -> tuple[int, str]:
    def send() -> tuple[int, str]:
        request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # settings: http(s) only
            return int(response.status), response.read(4096).decode(errors="replace")

    return await asyncio.to_thread(send)
