"""The two `LLMClient`s behind cassettes: one records around the real model, one replays.

Both are ordinary model clients (`app.engine.model`), so the engine runs a test exactly
as it runs production traffic and needs no switch of its own. One client serves one
run: the LLM calls of a run are sequential (a pipeline's stages too), so the n-th call
of a replayed run is answered by the n-th recorded exchange, after checking that the
request is the one recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.agent_tests.cassette import (
    CassetteRun,
    Exchange,
    error_data,
    error_from,
    explain_difference,
    request_data,
    response_from,
)
from app.contracts.errors import FerryError, LLMBadRequestError
from app.engine.journal import recorded_response
from app.engine.model import LLMClient, LLMRequest, LLMResponse

#: What a request is stored and compared as (child run ids masked, see child_runs.py).
Mask = Callable[[dict[str, Any]], dict[str, Any]]


def _unmasked(data: dict[str, Any]) -> dict[str, Any]:
    return data


class RecordingClient:
    """Passes every call to the real client and keeps the exchange, errors included."""

    def __init__(self, inner: LLMClient, mask: Mask = _unmasked) -> None:
        self._inner = inner
        self._mask = mask
        self.run = CassetteRun()

    async def complete(self, request: LLMRequest) -> LLMResponse:
        sent = self._mask(request_data(request))
        try:
            response = await self._inner.complete(request)
        except FerryError as exc:
            self.run.exchanges.append(Exchange(request=sent, error=error_data(exc)))
            raise
        self.run.exchanges.append(Exchange(request=sent, response=recorded_response(response)))
        return response


class ReplayClient:
    """Answers from one recorded run; the first request that differs ends the replay.

    `mismatch` says how it differed (the runner fails the case with it); every later call
    fails the same way, so a fallback model or a retry cannot hide it.
    """

    def __init__(self, recorded: CassetteRun, mask: Mask = _unmasked) -> None:
        self._exchanges = list(recorded.exchanges)
        self._mask = mask
        self._next = 0
        self.mismatch: str | None = None

    async def complete(self, request: LLMRequest) -> LLMResponse:
        if self.mismatch is not None:
            raise LLMBadRequestError(f"cassette mismatch: {self.mismatch}")
        number = self._next + 1
        if self._next >= len(self._exchanges):
            self.mismatch = f"LLM call {number} was not recorded (the cassette has {len(self._exchanges)} for this run)"
            raise LLMBadRequestError(f"cassette mismatch: {self.mismatch}")
        exchange = self._exchanges[self._next]
        self._next += 1
        difference = explain_difference(exchange.request, self._mask(request_data(request)))
        if difference is not None:
            self.mismatch = f"LLM call {number}: {difference}"
            raise LLMBadRequestError(f"cassette mismatch: {self.mismatch}")
        if exchange.error is not None:
            raise error_from(exchange.error)
        return response_from(exchange.response or {})

    def unplayed(self) -> int:
        """Recorded calls the run did not make (a run that now stops earlier than recorded)."""
        return len(self._exchanges) - self._next
