"""A small HTTP/1.1 client on asyncio streams, cheap enough to run hundreds of clients in one
process beside the server on a 2-core machine.

Each ``Client`` keeps one keep-alive connection to 127.0.0.1:port and its own cookies per host,
as a browser does. A GET on a connection the server closed while it was idle is retried once on
a new one; anything else (a POST) goes out on a new connection, so a write is never sent twice.
Failures are answers, never exceptions: status ``"conn"`` (refused, reset, closed mid-answer)
or ``"timeout"``.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from urllib.parse import urlencode

_COOKIE = re.compile(r"^([^=;\s]+)=([^;]*)")
_CSRF_FIELD = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')


@dataclass
class Answer:
    status: int | str  # an HTTP status, or "conn" / "timeout"
    headers: dict[str, list[str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def csrf_token(self) -> str | None:
        found = _CSRF_FIELD.search(self.body)
        return found.group(1).decode() if found else None


class Client:
    def __init__(self, port: int, timeout: float = 30.0):
        self.port, self.timeout = port, timeout
        self.cookies: dict[str, dict[str, str]] = {}
        self._reader = self._writer = None

    async def get(self, host: str, path: str = "/") -> Answer:
        return await self.request("GET", host, path)

    async def post_form(self, host: str, path: str, form: dict) -> Answer:
        body = urlencode(form).encode()
        return await self.request(
            "POST", host, path, body, {"Content-Type": "application/x-www-form-urlencoded"}
        )

    async def post_json(self, host: str, path: str, body: bytes) -> Answer:
        return await self.request("POST", host, path, body, {"Content-Type": "application/json"})

    async def request(self, method, host, path, body=b"", headers=None) -> Answer:
        head = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Accept: text/html"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        jar = self.cookies.get(host)
        if jar:
            head.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in jar.items()))
        if body or method == "POST":
            head.append(f"Content-Length: {len(body)}")
        message = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        retry = method == "GET"
        if method != "GET":
            await self.close()  # a write on a fresh connection: never sent twice
        while True:
            reused = self._writer is not None
            try:
                answer = await asyncio.wait_for(self._exchange(message), self.timeout)
            except TimeoutError:
                await self.close()
                return Answer("timeout", {}, b"")
            except (OSError, asyncio.IncompleteReadError, ValueError):
                await self.close()
                if reused and retry:  # closed by the server while idle: try once more
                    retry = False
                    continue
                return Answer("conn", {}, b"")
            self._keep_cookies(host, answer)
            if (answer.header("connection") or "").lower() == "close":
                await self.close()
            return answer

    async def _exchange(self, message: bytes) -> Answer:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._writer.write(message)
        await self._writer.drain()
        status_line = await self._reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        headers: dict[str, list[str]] = {}
        while (line := await self._reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        if "content-length" in headers:
            body = await self._reader.readexactly(int(headers["content-length"][0]))
        elif headers.get("transfer-encoding", [""])[0].lower() == "chunked":
            body = await self._read_chunked()
        else:  # until the server closes
            body = await self._reader.read()
            headers["connection"] = ["close"]
        return Answer(status, headers, body)

    async def _read_chunked(self) -> bytes:
        parts = []
        while size := int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16):
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)
        while await self._reader.readuntil(b"\r\n") != b"\r\n":
            pass
        return b"".join(parts)

    def _keep_cookies(self, host: str, answer: Answer) -> None:
        for cookie in answer.headers.get("set-cookie", []):
            found = _COOKIE.match(cookie)
            if not found:
                continue
            jar = self.cookies.setdefault(host, {})
            name, value = found.groups()
            if value in ("", '""') or "expires=Thu, 01 Jan 1970" in cookie:
                jar.pop(name, None)
            else:
                jar[name] = value

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._reader = self._writer = None
