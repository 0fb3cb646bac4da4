"""One delivery: POST the envelope to one destination, retrying until it lands or is final.

    check (secret, URL placeholders, SSRF on a literal address)
      └─► attempt ─► 2xx: delivered
                 └─► 5xx / 408 / 429 / network error: wait (back-off + jitter, or
                     Retry-After) and attempt again, up to the policy's attempts
                 └─► other 4xx, a refused address, attempts used up: failed, with the reason

Each attempt is signed afresh (a new timestamp) and carries the same delivery id. An
attempt holds one of its host's slots (`per_destination`), so one slow receiver uses at
most that many connections and every other receiver keeps its own pace; waiting between
attempts holds no slot. Guarded destinations (callback URLs) go through a session whose
resolver is `GuardedResolver`, so the address connected to is the address checked.
Redirects are not followed: a 3xx is a final failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from app.connectors.webhook.config import Destination
from app.connectors.webhook.envelope import body_of
from app.connectors.webhook.retry_policy import decide
from app.connectors.webhook.signing import signed_headers
from app.connectors.webhook.ssrf import CallbackRefused, GuardedResolver, IPNetwork, literal_address, refusal, split_url


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    attempts: int
    reason: str
    status: int | None = None


class Deliverer:
    def __init__(
        self,
        allowed: Sequence[IPNetwork] = (),
        per_destination: int = 4,
        *,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.allowed = tuple(allowed)
        self.per_destination = per_destination
        self._environ = environ
        self._clock = clock
        self._sleep = sleep
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._guarded: aiohttp.ClientSession | None = None
        self._plain: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Deliverer:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def start(self) -> None:
        guarded = aiohttp.TCPConnector(resolver=GuardedResolver(self.allowed), use_dns_cache=False)
        self._guarded = aiohttp.ClientSession(connector=guarded, trust_env=False)
        self._plain = aiohttp.ClientSession(trust_env=False)

    async def close(self) -> None:
        for session in (self._guarded, self._plain):
            if session is not None:
                await session.close()
        self._guarded = self._plain = None

    async def deliver(self, destination: Destination, envelope: dict[str, Any], delivery_id: str) -> Outcome:
        body = body_of(envelope)
        try:
            url = destination.expanded_url(self._environ)
        except KeyError as exc:
            return Outcome(False, 0, f"the URL's environment variable {exc.args[0]} is not set")
        secret = destination.secret(self._environ)
        if destination.secret_env is not None and secret is None:
            return Outcome(False, 0, f"no signing secret: the environment variable {destination.secret_env} is not set")
        if destination.guarded:
            try:
                self._check_literal(url)
            except CallbackRefused as exc:
                return Outcome(False, 0, f"refused: {exc.reason}")
        attempt = 0
        while True:
            attempt += 1
            status: int | None = None
            retry_after: str | None = None
            network_error: str | None = None
            try:
                async with self._slot(_host_key(url)):
                    status, retry_after = await self._post(destination, url, body, secret, delivery_id)
            except CallbackRefused as exc:
                return Outcome(False, attempt, f"refused: {exc.reason}")
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                network_error = _describe(exc)
            if status is not None and 200 <= status < 300:
                return Outcome(True, attempt, f"HTTP {status}", status)
            decision = decide(
                destination.retry, attempt, status=status, retry_after=retry_after, network_error=network_error
            )
            if not decision.retry:
                return Outcome(False, attempt, decision.reason, status)
            await self._sleep(decision.delay_s)

    def _check_literal(self, url: str) -> None:
        """aiohttp connects to a literal IP without asking the resolver: check it here."""
        host, _ = split_url(url)
        address = literal_address(host)
        if address is not None:
            reason = refusal(address, self.allowed)
            if reason is not None:
                raise CallbackRefused(url, reason)

    async def _post(
        self, destination: Destination, url: str, body: bytes, secret: str | None, delivery_id: str
    ) -> tuple[int, str | None]:
        session = self._guarded if destination.guarded else self._plain
        if session is None:
            raise RuntimeError("the deliverer is not started")
        headers = signed_headers(secret, str(int(self._clock())), body, delivery_id)
        timeout = aiohttp.ClientTimeout(total=destination.timeout_s)
        async with session.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False) as response:
            await response.read()  # drain, so the connection can be reused
            return response.status, response.headers.get("Retry-After")

    @contextlib.asynccontextmanager
    async def _slot(self, host_key: str) -> AsyncIterator[None]:
        slot = self._slots.get(host_key)
        if slot is None:
            slot = self._slots[host_key] = asyncio.Semaphore(self.per_destination)
        async with slot:
            yield


def _host_key(url: str) -> str:
    """What the per-destination limit counts by: the receiver's host and port (after `${ENV}`)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or ''}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
