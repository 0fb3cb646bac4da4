"""Running a command's async main: the one place process-wide clients are closed."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_main(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)`, then close litellm's HTTP clients on the same loop."""

    async def main_then_close() -> T:
        from app.engine.llm import close_llm_clients

        try:
            return await main
        finally:
            await close_llm_clients()

    return asyncio.run(main_then_close())
