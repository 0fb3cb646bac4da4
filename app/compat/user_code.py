"""Calling a project's middleware, hook and guardrail functions the way Connic does.

They may be sync or async. Sync ones run in a worker thread (a slow one must not stall
every other run on the event loop); the run's context variables go with them, so a
`connic.tools` call made from one still reaches its own run. `context` is passed only
to functions that declare room for it, as the SDK documents it as optional for hooks.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from typing import Any


def _accepts(func: Callable[..., Any], count: int) -> bool:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return True
    try:
        signature.bind(*range(count))
    except TypeError:
        return False
    return True


async def call_user(func: Callable[..., Any], *args: Any, context: dict[str, Any] | None = None) -> Any:
    """`func(*args, context)`, or `func(*args)` when it takes no context argument."""
    call_args = (*args, context) if context is not None and _accepts(func, len(args) + 1) else args
    if inspect.iscoroutinefunction(func):
        return await func(*call_args)
    result = await asyncio.to_thread(functools.partial(func, *call_args))
    if inspect.isawaitable(result):
        result = await result
    return result
