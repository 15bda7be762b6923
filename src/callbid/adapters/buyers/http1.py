"""A lean pooled HTTP/1.1 client for buyer pings: asyncio transports of our own, responses
parsed by `httptools` (the C parser uvicorn serves with).

Why not aiohttp: a buyer ping is one small request on a kept-alive connection, and nothing of a
general client (cookies, redirects, proxies, multipart, tracing, middlewares) is wanted. Measured
on the 2-core development machine (`bench/http_clients.py`, 5 local buyers, 64 fan-outs in
flight): aiohttp's pooled session spent 180 to 290 µs of CPU per request, this client 33 to
42 µs; at five buyers a ping, aiohttp's share alone was more than the rest of the ping.

What it does: one pool of keep-alive connections per (scheme, host, port), at most `limit`
requests in flight, idle connections dropped after `keepalive` seconds; TLS through asyncio;
DNS through the `GuardedResolver` (the connection goes to an allowed address, never to the
name); bodies read bounded (`ResponseTooLarge`), chunked and gzip/deflate decoded, read until
close when the server gives no length. A request that fails on a reused connection before any
answer byte is retried once on a new one (the server closed it while idle). A cancelled
request closes its connection: a half-read answer can never be mistaken for the next one's.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import cast
from urllib.parse import quote, urlsplit

import httptools

from callbid.adapters.buyers.guard import GuardedResolver

#: Characters left as they are in a request target (RFC 3986 reserved and unreserved, `%`).
_TARGET_SAFE = "/?#[]@!$&'()*+,;=:-._~%"
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: A compressed answer may arrive this many times the body limit before it is decoded (and
#: held to the limit itself).
_COMPRESSION_ALLOWANCE = 16


class ResponseTooLarge(Exception):
    """A buyer's answer is longer than the client reads; `head` is what was read."""

    def __init__(self, head: bytes) -> None:
        super().__init__("response too large")
        self.head = head


class ServerDisconnected(ConnectionError):
    """The connection ended before a whole answer arrived."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What a URL says about where to send: pool key, connection and request line parts."""

    scheme: str
    host: str
    port: int
    host_header: str
    target: str


@lru_cache(maxsize=4096)
def endpoint_of(url: str) -> Endpoint:
    """The endpoint of an absolute http(s) URL (ValueError when it is not one)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port or _DEFAULT_PORTS[scheme]
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == _DEFAULT_PORTS[scheme] else f"{shown}:{port}"
    target = quote(parts.path or "/", safe=_TARGET_SAFE)
    if parts.query:
        target += "?" + quote(parts.query, safe=_TARGET_SAFE)
    return Endpoint(scheme, host, port, host_header, target)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str | None


class _Connection(asyncio.Protocol):
    """One kept-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[Response] | None = None
        self._on_status: Callable[[int], None] | None = None
        self._limit = 0
        self._reset()

    def _reset(self) -> None:
        self.received = False
        self._status = 0
        self._chunks: list[bytes] = []
        self._size = 0
        self._content_type: str | None = None
        self._encoding: str | None = None
        self._sized = False
        self._headers_done = False

    def send(
        self, data: bytes, limit: int, on_status: Callable[[int], None] | None
    ) -> asyncio.Future[Response]:
        assert self.transport is not None
        assert self._waiter is None
        self._reset()
        self._limit, self._on_status = limit, on_status
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return waiter

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # bytes nobody asked for: the connection cannot be trusted
            self.abort()
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ServerDisconnected("upgrade refused"))
        except httptools.HttpParserError:
            self._fail(ServerDisconnected("bad response"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and self._headers_done and not self._sized:
            self._finish()  # no length, not chunked: the body ran until the connection closed
        else:
            self._fail(ServerDisconnected("server disconnected"))

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"content-type":
            self._content_type = value.decode("latin-1")
        elif lowered == b"content-encoding":
            self._encoding = value.decode("latin-1").strip().lower()
        elif lowered == b"content-length":
            self._sized = True
            if value.strip().isdigit() and int(value) > self._limit * _COMPRESSION_ALLOWANCE:
                self._fail(ResponseTooLarge(b""))
        elif lowered == b"transfer-encoding":
            self._sized = True

    def on_headers_complete(self) -> None:
        self._headers_done = True
        self._status = self.parser.get_status_code()
        if self._on_status is not None:
            self._on_status(self._status)

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._size += len(body)
        allowed = self._limit if self._encoding is None else self._limit * _COMPRESSION_ALLOWANCE
        if self._size > allowed:
            self._fail(ResponseTooLarge(b"".join(self._chunks)[: self._limit]))

    def on_message_complete(self) -> None:
        self._finish()

    def _finish(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is None or waiter.done():
            return
        body = b"".join(self._chunks)
        try:
            body = _decoded(body, self._encoding, self._limit)
        except ResponseTooLarge as exc:
            waiter.set_exception(exc)
            self.abort()
            return
        if not self.parser.should_keep_alive():
            self.closed = True
        waiter.set_result(Response(self._status, body, self._content_type))

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        self.abort()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


def _decoded(body: bytes, encoding: str | None, limit: int) -> bytes:
    """`body` decompressed (gzip, deflate) to at most `limit` bytes; ResponseTooLarge beyond."""
    if encoding in (None, "", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        return body
    try:
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
        plain = inflater.decompress(body, limit + 1)
    except zlib.error:
        try:
            plain = zlib.decompressobj(-zlib.MAX_WBITS).decompress(body, limit + 1)
        except zlib.error:
            raise ServerDisconnected("bad payload") from None
    if len(plain) > limit:
        raise ResponseTooLarge(plain[:limit])
    return plain


class Http1Pool:
    """Kept-alive HTTP/1.1 connections to buyers; `request` is the only way in."""

    def __init__(
        self,
        resolver: GuardedResolver,
        *,
        limit: int = 256,
        keepalive: float = 30.0,
        user_agent: str = "callbid",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._resolver = resolver
        self._slots = asyncio.Semaphore(limit)
        self._limit = limit
        self._keepalive = keepalive
        self._user_agent = user_agent
        self._clock = clock
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._busy: set[_Connection] = set()
        self._tls: ssl.SSLContext | None = None

    async def request(
        self,
        method: str,
        url: str,
        headers: tuple[tuple[str, str], ...],
        body: bytes | None,
        *,
        max_body: int,
        on_status: Callable[[int], None] | None = None,
    ) -> Response:
        """Send one request and read its whole answer (at most `max_body` bytes).

        Raises ValueError for a URL that is not http(s), `AddressRefused` when the guard
        refuses every address, OSError subclasses for connection failures (`ServerDisconnected`
        among them), `ResponseTooLarge`. Cancelling it closes the connection."""
        endpoint = endpoint_of(url)
        data = self._encode(method, endpoint, headers, body)
        async with self._slots:
            conn, reused = await self._checkout(endpoint)
            try:
                return await self._exchange(conn, endpoint, data, max_body, on_status)
            except ServerDisconnected:
                if not reused or conn.received:
                    raise
            # The server closed the idle connection as we reused it: once more, fresh.
            conn = await self._connect(endpoint)
            return await self._exchange(conn, endpoint, data, max_body, on_status)

    async def close(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.abort()
        self._idle.clear()
        for conn in self._busy:
            conn.abort()
        self._busy.clear()

    async def _exchange(
        self,
        conn: _Connection,
        endpoint: Endpoint,
        data: bytes,
        max_body: int,
        on_status: Callable[[int], None] | None,
    ) -> Response:
        self._busy.add(conn)
        try:
            response = await conn.send(data, max_body, on_status)
        except BaseException:
            conn.abort()
            raise
        finally:
            self._busy.discard(conn)
        self._checkin(endpoint, conn)
        return response

    def _encode(
        self,
        method: str,
        endpoint: Endpoint,
        headers: tuple[tuple[str, str], ...],
        body: bytes | None,
    ) -> bytes:
        lines = [
            f"{method} {endpoint.target} HTTP/1.1",
            f"Host: {endpoint.host_header}",
            f"User-Agent: {self._user_agent}",
        ]
        lines += [f"{name}: {value}" for name, value in headers]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "replace")
        return head + body if body else head

    async def _checkout(self, endpoint: Endpoint) -> tuple[_Connection, bool]:
        idle = self._idle.get((endpoint.scheme, endpoint.host, endpoint.port))
        oldest = self._clock() - self._keepalive
        while idle:
            conn = idle.pop()
            if not conn.closed and conn.idle_since >= oldest:
                return conn, True
            conn.abort()
        return await self._connect(endpoint), False

    def _checkin(self, endpoint: Endpoint, conn: _Connection) -> None:
        if conn.closed:
            conn.abort()
            return
        conn.idle_since = self._clock()
        idle = self._idle.setdefault((endpoint.scheme, endpoint.host, endpoint.port), [])
        if len(idle) >= self._limit:
            idle.pop(0).abort()
        idle.append(conn)

    async def _connect(self, endpoint: Endpoint) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = self._tls_context() if endpoint.scheme == "https" else None
        failure: OSError | None = None
        for address in await self._resolver.resolve(endpoint.host, endpoint.port):
            try:
                _, conn = await loop.create_connection(
                    _Connection,
                    address,
                    endpoint.port,
                    ssl=tls,
                    server_hostname=endpoint.host if tls is not None else None,
                )
                return conn
            except OSError as exc:
                failure = exc
        assert failure is not None
        raise failure

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls
