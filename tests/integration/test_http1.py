"""The buyer HTTP/1.1 client against raw local servers: framing, keep-alive, stale
connections, compression, limits."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from callbid.adapters.buyers.guard import AddressGuard, AddressRefused, GuardedResolver
from callbid.adapters.buyers.http1 import (
    Http1Pool,
    ResponseTooLarge,
    ServerDisconnected,
    endpoint_of,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
LIMIT = 1024


class Server:
    """A raw TCP server on loopback that counts its connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/bid?x=1"

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


def answer(body: bytes, *extra: str) -> bytes:
    lines = ["HTTP/1.1 200 OK", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.fixture
async def pool() -> AsyncIterator[Http1Pool]:
    client = Http1Pool(GuardedResolver(AddressGuard(["127.0.0.0/8"])), limit=8)
    yield client
    await client.close()


async def post(pool: Http1Pool, url: str, body: bytes = b"{}") -> tuple[int, bytes]:
    response = await pool.request("POST", url, (), body, max_body=LIMIT)
    return response.status, response.body


async def test_keep_alive_reuses_one_connection_and_sends_what_it_was_given(
    pool: Http1Pool,
) -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            seen.append(await read_request(reader))
            writer.write(answer(b'{"ok": true}', "Content-Type: application/json"))

    server = Server(handler)
    async with server as url:
        for _ in range(3):
            assert await post(pool, url, b'{"a": 1}') == (200, b'{"ok": true}')
    assert server.connections == 1
    assert seen[0].startswith(b"POST /bid?x=1 HTTP/1.1\r\n")
    assert b"\r\nContent-Length: 8\r\n" in seen[0]
    assert seen[0].endswith(b'\r\n\r\n{"a": 1}')


async def test_a_connection_the_server_closed_while_idle_is_replaced_transparently(
    pool: Http1Pool,
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"first"))
        await writer.drain()  # then close: the pool still holds the connection as idle

    server = Server(handler)
    async with server as url:
        assert await post(pool, url) == (200, b"first")
        await asyncio.sleep(0.05)
        assert await post(pool, url) == (200, b"first")
    assert server.connections == 2


async def test_a_body_without_length_runs_until_the_connection_closes(pool: Http1Pool) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
        await writer.drain()

    async with Server(handler) as url:
        assert await post(pool, url) == (200, b"until the end")


async def test_chunked_and_gzip_answers_are_decoded(pool: Http1Pool) -> None:
    packed = gzip.compress(b'{"bid": 3}')

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        chunks = b"%x\r\n%s\r\n0\r\n\r\n" % (len(packed), packed)
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"
            + chunks
        )
        await read_request(reader)

    async with Server(handler) as url:
        assert await post(pool, url) == (200, b'{"bid": 3}')


async def test_a_gzip_bomb_stops_at_the_limit(pool: Http1Pool) -> None:
    bomb = gzip.compress(b"0" * (LIMIT * 50))

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(bomb, "Content-Encoding: gzip"))
        await writer.drain()

    async with Server(handler) as url:
        with pytest.raises(ResponseTooLarge) as too_large:
            await post(pool, url)
    assert len(too_large.value.head) == LIMIT


async def test_a_declared_length_over_the_limit_is_refused_before_reading(
    pool: Http1Pool,
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(5)

    async with Server(handler) as url:
        with pytest.raises(ResponseTooLarge):
            await asyncio.wait_for(post(pool, url), 1)


async def test_garbage_instead_of_http_is_a_bad_response(pool: Http1Pool) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    async with Server(handler) as url:
        with pytest.raises(ServerDisconnected, match="bad response"):
            await post(pool, url)


async def test_a_cancelled_request_never_leaves_its_answer_to_the_next(pool: Http1Pool) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(0.2)
        writer.write(answer(b"late"))
        await read_request(reader)
        writer.write(answer(b"next"))

    server = Server(handler)
    async with server as url:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(post(pool, url), 0.05)
        await asyncio.sleep(0.3)
        assert await post(pool, url) == (200, b"late")  # a new connection's first answer
    assert server.connections == 2


async def test_the_guard_is_applied_to_every_connection() -> None:
    pool = Http1Pool(GuardedResolver(AddressGuard()), limit=2)
    try:
        with pytest.raises(AddressRefused):
            await pool.request("GET", "http://localhost:9/", (), None, max_body=LIMIT)
    finally:
        await pool.close()


@pytest.mark.parametrize(
    ("url", "host_header", "target"),
    [
        ("http://buyer.example/bid", "buyer.example", "/bid"),
        ("https://buyer.example:8443", "buyer.example:8443", "/"),
        ("http://[::1]:8080/a b?q=x y&z=%20", "[::1]:8080", "/a%20b?q=x%20y&z=%20"),
        ("HTTPS://Buyer.Example:443/p", "buyer.example", "/p"),
    ],
)
def test_endpoint_of_builds_host_header_and_target(url: str, host_header: str, target: str) -> None:
    endpoint = endpoint_of(url)
    assert (endpoint.host_header, endpoint.target) == (host_header, target)


@pytest.mark.parametrize("url", ["ftp://buyer.example/", "http:///nohost", "buyer.example/bid"])
def test_endpoint_of_refuses_what_is_not_an_http_url(url: str) -> None:
    with pytest.raises(ValueError, match="not an http"):
        endpoint_of(url)
