"""`OpenAICompatClient`: the model interface (`model.py`) spoken directly to OpenAI-protocol servers.

One POST of a chat completion per `complete`, on one pooled aiohttp session per
client, with no library between the engine and the wire. With `request.on_text` the
answer is streamed (server-sent events) and folded back into the same response
(`stream.py`). aiohttp because it was the
cheapest client measured here: ~0.2 ms of CPU per call at 64 in flight against ~2–8 ms
for httpx and the `openai` SDK, whose pool bookkeeping grows with the connections
(bench/bench_http_clients.py, bench/RESULTS.md). That cost caps a worker's runs/s per core.

The session is made on the first call, inside the running event loop, and closed by
`aclose()`; the client belongs to whoever built it (the engine, through the router).
Translation of every failure into Ferry's categories is `errors.py`'s, of bodies
`wire.py`'s; endpoints (URL, key, proxy) are the `EndpointTable`'s.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import replace

import aiohttp

from app.contracts.errors import FerryError
from app.engine.model import LLMRequest, LLMResponse, TextSink
from app.engine.openai_compat.embeddings import embeddings_body, embeddings_url, parse_embeddings
from app.engine.openai_compat.endpoints import Endpoint, EndpointTable
from app.engine.openai_compat.errors import error_for_status, error_for_transport, malformed_answer
from app.engine.openai_compat.stream import CompletionFold
from app.engine.openai_compat.wire import Completion, MalformedCompletion, parse_completion, request_body
from app.engine.price_map import ListPrice, list_price

#: Connections open at once across all hosts. Concurrency is the scheduler's to limit
#: (max_concurrent_runs, model rate limits); this only guards the process's file
#: descriptors, as the `openai` SDK's default of 1000 does. A call waiting for a
#: connection waits within its own timeout.
DEFAULT_CONNECTIONS = 1000

_LINE_LIMIT = 1 << 20

PriceLookup = Callable[[str], ListPrice | None]


class OpenAICompatClient:
    """Calls one chat completion, once: retries and fallbacks are the engine's business."""

    def __init__(
        self,
        endpoints: EndpointTable,
        *,
        connections: int = DEFAULT_CONNECTIONS,
        prices: PriceLookup = list_price,
    ) -> None:
        self._endpoints = endpoints
        self._connections = connections
        self._prices = prices
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def for_base_url(cls, base_url: str, api_key: str, *, connections: int = DEFAULT_CONNECTIONS) -> OpenAICompatClient:
        """Every model sent to one OpenAI-compatible server (the simulator, vLLM, a proxy)."""
        return cls(EndpointTable(base_url=base_url, api_key=api_key), connections=connections)

    async def complete(self, request: LLMRequest) -> LLMResponse:
        endpoint = self._endpoints.endpoint(request.model)
        body = json.dumps(request_body(request, endpoint.model)).encode()
        session = self._session_in_this_loop()
        try:
            async with asyncio.timeout(request.timeout):
                async with session.post(
                    endpoint.url, data=body, headers=endpoint.headers, proxy=endpoint.proxy
                ) as answer:
                    status, headers = answer.status, answer.headers
                    if request.on_text is None or not 200 <= status < 300:
                        raw = await answer.read()
                    else:
                        raw = await _read_stream(answer, request.on_text, endpoint)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise error_for_transport(exc, url=endpoint.url, timeout=request.timeout) from exc
        if not 200 <= status < 300:
            raise error_for_status(status, raw, headers, url=endpoint.url)
        return self._response(request.model, endpoint, raw)

    async def embed(self, model: str, texts: Sequence[str], *, timeout: float) -> list[list[float]]:
        """One `/embeddings` POST for every text (the `Embedder` interface)."""
        endpoint = self._endpoints.endpoint(model)
        url = embeddings_url(endpoint.url)
        body = json.dumps(embeddings_body(endpoint.model, texts)).encode()
        session = self._session_in_this_loop()
        try:
            async with asyncio.timeout(timeout):
                async with session.post(url, data=body, headers=endpoint.headers, proxy=endpoint.proxy) as answer:
                    status, headers, raw = answer.status, answer.headers, await answer.read()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise error_for_transport(exc, url=url, timeout=timeout) from exc
        if not 200 <= status < 300:
            raise error_for_status(status, raw, headers, url=url)
        try:
            return parse_embeddings(json.loads(raw), len(texts))
        except ValueError as exc:  # not JSON, or not an embeddings answer
            raise malformed_answer(url, str(exc)) from exc

    def _response(self, model: str, endpoint: Endpoint, raw: bytes) -> LLMResponse:
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise malformed_answer(endpoint.url, f"not JSON ({exc})") from exc
        if isinstance(data, dict) and "error" in data and "choices" not in data:
            raise _error_in_body(data, raw, endpoint)  # OpenRouter and some proxies answer 200 with an error
        try:
            completion = parse_completion(data, model)
        except MalformedCompletion as exc:
            raise malformed_answer(endpoint.url, str(exc)) from exc
        if not endpoint.reports_cost:
            return completion.response
        response = completion.response
        return replace(response, usage=replace(response.usage, cost_usd=self._cost(model, endpoint, completion)))

    def _cost(self, model: str, endpoint: Endpoint, completion: Completion) -> float | None:
        """The list price of this call: the model string first, then the model the server named
        (an Azure deployment answers with the model it runs)."""
        price = self._prices(model)
        if price is None and completion.answered_by:
            price = self._prices(f"{endpoint.provider}/{completion.answered_by}") or self._prices(
                completion.answered_by
            )
        if price is None:
            return None
        usage = completion.response.usage
        return price.cost(usage.prompt_tokens, usage.completion_tokens, completion.cached_prompt_tokens)

    def _session_in_this_loop(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            # A session is bound to the loop it was made in; a client reused from another
            # loop (tests, `asyncio.run` twice) gets a new one (the old loop's is gone with it).
            connector = aiohttp.TCPConnector(limit=self._connections, limit_per_host=0, ttl_dns_cache=300)
            timeout = aiohttp.ClientTimeout(total=None)  # each call's own timeout applies (complete)
            # read_bufsize: one SSE line holds a whole chunk, which a long tool argument can
            # push past aiohttp's 64 KiB line limit.
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=timeout, auto_decompress=True, read_bufsize=_LINE_LIMIT
            )
            self._loop = loop
        return self._session

    async def aclose(self) -> None:
        """Close the connection pool; a later call opens a new one."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()


async def _read_stream(answer: aiohttp.ClientResponse, on_text: TextSink, endpoint: Endpoint) -> bytes:
    """Hand each text delta to `on_text` as it arrives; return the folded answer as a body.

    A server that ignores `stream` and answers one JSON body is read as such."""
    if "text/event-stream" not in answer.headers.get("Content-Type", ""):
        return await answer.read()
    fold = CompletionFold()
    async for line in answer.content:
        if not line.startswith(b"data:"):
            continue  # blank separators, `event:`/`id:` fields, `: keep-alive` comments
        data = line[5:].strip()
        if data == b"[DONE]":
            break
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise malformed_answer(endpoint.url, f"a stream chunk is not JSON ({exc})") from exc
        if isinstance(chunk, dict) and "error" in chunk and "choices" not in chunk:
            raise _error_in_body(chunk, data, endpoint)  # the provider failed mid-answer
        text = fold.add(chunk)
        if text:
            await on_text(text)
    if fold.chunks == 0:
        raise malformed_answer(endpoint.url, "the stream ended before any chunk")
    return json.dumps(fold.completion()).encode()


def _error_in_body(data: dict[str, object], raw: bytes, endpoint: Endpoint) -> FerryError:
    error = data.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    status = code if isinstance(code, int) and 400 <= code < 600 else 502
    return error_for_status(status, raw, {}, url=endpoint.url)
