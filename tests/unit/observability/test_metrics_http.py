"""The `/metrics` endpoint as any HTTP client sees it: one path, GET and HEAD, HTTP/1.1
connections kept for the next scrape, and a stop that lets go of a scraper still connected."""

from __future__ import annotations

import asyncio
import socket

from app.observability.metrics import MetricsEndpoint, MetricsServer, WorkerMetrics
from tests.integration.kafka_helpers import wait_for


async def exchange(port: int, request: bytes) -> bytes:
    """One request on a new connection, read until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def test_only_get_and_head_of_metrics_are_served() -> None:
    metrics = WorkerMetrics()
    metrics.record_dead_letter()
    async with MetricsServer(metrics.registry, MetricsEndpoint(host="127.0.0.1", port=0)) as server:
        assert server.port is not None
        got = await exchange(server.port, b"GET /metrics?x=1 HTTP/1.0\r\nHost: h\r\n\r\n")
        head, body = got.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200 OK") and b"ferry_dlq_records_total 1.0" in body
        assert f"Content-Length: {len(body)}".encode() in head and b"Content-Type: text/plain; version=" in head
        headed = await exchange(server.port, b"HEAD /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert headed.startswith(b"HTTP/1.1 200 OK") and headed.endswith(b"\r\n\r\n")
        assert (await exchange(server.port, b"GET / HTTP/1.0\r\n\r\n")).startswith(b"HTTP/1.1 404")
        refused = await exchange(server.port, b"POST /metrics HTTP/1.0\r\n\r\n")
        assert refused.startswith(b"HTTP/1.1 405") and b"Allow: GET, HEAD" in refused
        # An HTTP/1.1 POST's body is never read: the connection ends after the 405 (exchange
        # reads until the server closes), so the body is not taken for a next request.
        posted = await exchange(server.port, b"POST /metrics HTTP/1.1\r\nContent-Length: 9\r\n\r\nGET / x\r\n")
        assert posted.startswith(b"HTTP/1.1 405") and b"Connection: close" in posted and posted.count(b"HTTP/1.1") == 1


async def test_an_http_1_1_scraper_scrapes_again_on_its_connection() -> None:
    metrics = WorkerMetrics()
    async with MetricsServer(metrics.registry, MetricsEndpoint(host="127.0.0.1", port=0)) as server:
        assert server.port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            for dead_letters in (1, 2):
                metrics.record_dead_letter()
                writer.write(b"GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n")
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                assert b"Connection: close" not in head
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                body = await asyncio.wait_for(reader.readexactly(length), 10)
                assert f"ferry_dlq_records_total {dead_letters}.0".encode() in body
        finally:
            writer.close()


async def test_stopping_lets_go_of_a_connected_scraper_and_frees_the_port() -> None:
    server = MetricsServer(WorkerMetrics().registry, MetricsEndpoint(host="127.0.0.1", port=0))
    await server.start()
    assert server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)  # says nothing
    await wait_for(lambda: bool(server._serving), 5, what="the connection accepted")
    await asyncio.wait_for(server.stop(), 5)
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
    writer.close()
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as a restarted worker's server binds
        probe.bind(("127.0.0.1", server.port))
