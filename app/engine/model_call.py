"""One LLM step of a run: budget check, attempts with retries, fallback model, usage.

    llm_call (one step; model, tokens, cost)
     ├── llm_attempt (primary, attempt 1)       ✗ llm_unavailable
     ├── llm_attempt (fallback, attempt 1)      ✗ rate_limit
     ├── retry_wait  (Retry-After / back-off)
     └── llm_attempt (fallback, attempt 2)      ✓

`fallback_model`: after the primary fails once with a provider error (any LLM
category, retryable or not — another provider may well accept the request), the
fallback model gets the whole retry budget. Without a fallback the primary gets it.
No fallback is called once the run's deadline has passed.

The llm_call span explains the step: attempts made against attempts allowed, whether
the fallback was tried (and why not), and on failure why the step gave up (`GiveUp`:
a Retry-After or back-off past the deadline, attempts exhausted, a category never
retried), so a trace answers "why did this run stop retrying?".

The call is priced here, once for every client: the project's prices first, then the
cost the client reported, then litellm's price map (`CostModel.call_cost`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from app.contracts import SpanKind, Usage
from app.contracts.errors import ErrorCategory, FerryError
from app.contracts.spans import FallbackSkip, SpanAttr
from app.engine.budget import Budget
from app.engine.journal import record_llm_step, replay_llm_step
from app.engine.model import LLMRequest, LLMResponse
from app.engine.pricing import CostModel
from app.engine.retry import RetryPolicy, RetryRecord, call_with_retries, traced_sleeper
from app.engine.state import RunDeps, RunState
from app.engine.streaming import watched_answer
from app.observability.tracing import SpanHandle, usage_attributes

_PROVIDER_CATEGORIES = frozenset(
    {
        ErrorCategory.RATE_LIMIT,
        ErrorCategory.LLM_TIMEOUT,
        ErrorCategory.LLM_UNAVAILABLE,
        ErrorCategory.LLM_BAD_REQUEST,
        ErrorCategory.CONTEXT_LENGTH,
        ErrorCategory.AUTH,
    }
)


async def call_model(
    deps: RunDeps,
    state: RunState,
    *,
    model: str,
    fallback_model: str | None,
    policy: RetryPolicy,
    attempt_timeout: float,
    temperature: float | None,
    tools: list[dict[str, Any]] | None,
    budget: Budget,
    reasoning_effort: str | None = None,
    reasoning_budget: int | None = None,
) -> LLMResponse:
    """Call the model on `state.messages`; add the call's usage to `state.usage`."""
    if (recorded := replay_llm_step(deps.run_id, state)) is not None:  # done before a crash: not paid again
        return recorded
    with deps.tracer.span(SpanKind.LLM_CALL, f"llm {model}", model=model, llm__step=state.llm_steps + 1) as span:
        estimate = budget.check_before_request(
            state.usage,
            steps=state.llm_steps,
            model=model,
            messages=state.messages,
            tools=tools,
            cost_model=deps.cost_model,
        )
        span.set(llm__estimated_prompt_tokens=estimate)
        messages = list(state.messages)  # the request sees this step's conversation, frozen

        def count_retry() -> None:
            state.llm_retries += 1

        sleeper = traced_sleeper(deps.tracer, deps.clock, on_wait=count_retry)
        answer = watched_answer()  # a chat socket watching this run: each attempt streams to it

        def attempt_on(target: str) -> Callable[[int], Awaitable[LLMResponse]]:
            async def attempt(number: int) -> LLMResponse:
                timeout = deps.deadline.cap(attempt_timeout)
                if answer is not None:
                    await answer.begin()  # text shown by an earlier step or attempt is void
                with deps.tracer.span(
                    SpanKind.LLM_ATTEMPT, f"attempt {target}", model=target, attempt=number
                ) as attempt_span:
                    response = await deps.llm.complete(
                        LLMRequest(
                            model=target,
                            messages=messages,
                            tools=tools,
                            temperature=temperature,
                            reasoning_effort=reasoning_effort,
                            reasoning_budget=reasoning_budget,
                            timeout=max(timeout, 0.001),
                            on_text=answer.text if answer is not None else None,
                        )
                    )
                    attempt_span.set(
                        llm__prompt_tokens=response.usage.prompt_tokens,
                        llm__completion_tokens=response.usage.completion_tokens,
                    )
                    if answer is not None and not answer.shown and response.text and not response.tool_calls:
                        await answer.text(response.text)  # a client that cannot stream: all at once
                    return response

            return attempt

        primary_policy = policy.with_attempts(1) if fallback_model else policy
        primary, fallback = RetryRecord(), RetryRecord()
        span.set(**{SpanAttr.ATTEMPTS_ALLOWED: primary_policy.attempts + (policy.attempts if fallback_model else 0)})
        try:
            try:
                response = await call_with_retries(
                    attempt_on(model),
                    policy=primary_policy,
                    deadline=deps.deadline,
                    rng=deps.rng,
                    sleeper=sleeper,
                    record=primary,
                )
            except FerryError as exc:
                skip = _fallback_skip(fallback_model, exc, deps.deadline.expired())
                span.set(**{SpanAttr.FALLBACK_TRIED: skip is None, SpanAttr.FALLBACK_SKIPPED: skip})
                if skip is not None:
                    _explain_give_up(span, primary)
                    raise
                span.set(fallback_model=fallback_model, fallback_reason=exc.category.value)
                assert fallback_model is not None
                try:
                    response = await call_with_retries(
                        attempt_on(fallback_model),
                        policy=policy,
                        deadline=deps.deadline,
                        rng=deps.rng,
                        sleeper=sleeper,
                        record=fallback,
                    )
                except FerryError:
                    _explain_give_up(span, fallback)
                    raise
        finally:
            span.set(**{SpanAttr.ATTEMPTS: primary.attempts + fallback.attempts})

        call_usage = priced_usage(deps.cost_model, response)
        state.usage.add(call_usage)
        state.llm_steps += 1
        span.set(
            model=response.model,
            **usage_attributes(call_usage),
            llm__tool_calls=len(response.tool_calls),
        )
        await record_llm_step(deps.run_id, response, call_usage)  # durable before the run acts on it
        budget.check_after_response(state.usage)
        return response


def priced_usage(cost_model: CostModel, response: LLMResponse) -> Usage:
    """One call's usage, priced once for every client: the project's prices first, then
    the cost the client reported, then litellm's price map (`CostModel.call_cost`)."""
    reported = response.usage
    return Usage(
        prompt_tokens=reported.prompt_tokens,
        completion_tokens=reported.completion_tokens,
        total_tokens=reported.total_tokens,
        cost_usd=cost_model.call_cost(
            response.model, reported.prompt_tokens, reported.completion_tokens, reported=reported.cost_usd
        ),
        llm_calls=1,
    )


async def side_call(deps: RunDeps, state: RunState, request: LLMRequest) -> tuple[LLMResponse, Usage]:
    """A call the run makes beside its steps (a guardrail's judge, a context summary): one
    attempt, priced and counted in the run's usage, not a step towards max_iterations."""
    response = await deps.llm.complete(request)
    usage = priced_usage(deps.cost_model, response)
    state.usage.add(usage)
    return response, usage


def _fallback_skip(fallback_model: str | None, error: FerryError, deadline_passed: bool) -> FallbackSkip | None:
    """Why the fallback is not called after the primary failed with `error`; None: call it."""
    if fallback_model is None:
        return FallbackSkip.NOT_CONFIGURED
    if error.category not in _PROVIDER_CATEGORIES:
        return FallbackSkip.NOT_A_PROVIDER_ERROR
    if deadline_passed:
        return FallbackSkip.DEADLINE_PASSED
    return None


def _explain_give_up(span: SpanHandle, record: RetryRecord) -> None:
    span.set(
        **{
            SpanAttr.GIVE_UP: record.give_up.value if record.give_up else None,
            SpanAttr.GIVE_UP_WAIT_SECONDS: record.wait_seconds,
            SpanAttr.GIVE_UP_REMAINING_SECONDS: record.remaining_seconds,
            SpanAttr.RETRY_AFTER_SECONDS: record.retry_after_seconds,
        }
    )
