"""docs/webhooks.md's receiver, run exactly as printed, accepts Ferry's deliveries and nothing else."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from app.connectors.webhook import RetryPolicy, allow_list
from app.connectors.webhook.config import Destination
from app.connectors.webhook.delivery import Deliverer

DOCS = Path(__file__).resolve().parents[3] / "docs" / "webhooks.md"
SECRET = "whsec_docs"


def _receiver_code() -> str:
    text = DOCS.read_text()
    marker = text.index("<!-- receiver:")
    match = re.search(r"```python\n(.*?)```", text[marker:], re.DOTALL)
    assert match is not None, "the receiver's code block follows its marker"
    return match.group(1)


def test_the_receiver_is_about_ten_lines() -> None:
    assert len([line for line in _receiver_code().splitlines() if line.strip()]) <= 16


@pytest.fixture
async def receiver_url(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    monkeypatch.setenv("FERRY_WEBHOOK_SECRET", SECRET)
    namespace: dict[str, Any] = {}
    exec(compile(_receiver_code(), str(DOCS), "exec"), namespace)  # the docs' own code, as printed
    runner = web.AppRunner(namespace["app"])
    await runner.setup()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/ferry-webhook"
    await runner.cleanup()


def _destination(url: str, secret_env: str) -> Destination:
    return Destination(
        identity=f"callback:{url}",
        url=url,
        secret_env=secret_env,
        guarded=True,
        retry=RetryPolicy(max_attempts=2, base_delay_s=0.01),
        timeout_s=5,
    )


async def test_the_docs_receiver_accepts_a_signed_delivery(receiver_url: str) -> None:
    env = {"RIGHT": SECRET}
    async with Deliverer(allow_list(["127.0.0.1/32"]), environ=env) as deliverer:
        outcome = await deliverer.deliver(_destination(receiver_url, "RIGHT"), {"run_id": "r1"}, "d-1")
    assert outcome.delivered and outcome.status == 204 and outcome.attempts == 1


async def test_the_docs_receiver_refuses_a_wrong_secret_or_an_old_timestamp(receiver_url: str) -> None:
    env = {"WRONG": "not-the-secret", "RIGHT": SECRET}
    async with Deliverer(allow_list(["127.0.0.1/32"]), environ=env) as deliverer:
        wrong = await deliverer.deliver(_destination(receiver_url, "WRONG"), {"run_id": "r1"}, "d-1")
    async with Deliverer(allow_list(["127.0.0.1/32"]), environ=env, clock=lambda: time.time() - 3600) as deliverer:
        stale = await deliverer.deliver(_destination(receiver_url, "RIGHT"), {"run_id": "r1"}, "d-1")
    for outcome in (wrong, stale):
        assert not outcome.delivered
        assert outcome.status == 401 and outcome.attempts == 1  # a 401 is final: not retried
        assert outcome.reason == "HTTP 401, final"
