"""One slow receiver uses at most its own slots; deliveries to other receivers go on meanwhile."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from app.connectors.webhook import RetryPolicy, allow_list
from app.connectors.webhook.config import Destination
from app.connectors.webhook.delivery import Deliverer
from tests.integration.kafka_helpers import wait_for


@asynccontextmanager
async def _server(handler: Callable[[web.Request], object]) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/hook", handler)  # type: ignore[arg-type]
    runner = web.AppRunner(app)
    await runner.setup()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        await runner.cleanup()


def _to(url: str) -> Destination:
    return Destination(f"callback:{url}", url, None, True, RetryPolicy(max_attempts=1), 30)


async def test_a_slow_receiver_holds_its_own_slots_and_not_the_others() -> None:
    release = asyncio.Event()
    in_slow = 0
    most_in_slow = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal in_slow, most_in_slow
        in_slow += 1
        most_in_slow = max(most_in_slow, in_slow)
        await release.wait()
        in_slow -= 1
        return web.Response(status=204)

    async def fast(request: web.Request) -> web.Response:
        return web.Response(status=204)

    deliverer = Deliverer(allow_list(["127.0.0.1/32"]), per_destination=2)
    async with _server(slow) as slow_url, _server(fast) as fast_url, deliverer:
        stuck = [asyncio.create_task(deliverer.deliver(_to(slow_url), {"n": n}, f"s-{n}")) for n in range(5)]
        await wait_for(lambda: in_slow == 2, 10, what="the slow receiver to hold its two slots")
        quick = await asyncio.wait_for(
            asyncio.gather(*(deliverer.deliver(_to(fast_url), {"n": n}, f"f-{n}") for n in range(5))), 10
        )
        assert all(outcome.delivered for outcome in quick)
        assert not any(task.done() for task in stuck)
        release.set()
        assert all(outcome.delivered for outcome in await asyncio.gather(*stuck))
    assert most_in_slow == 2
