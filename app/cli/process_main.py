"""How a `ferry` process ends: its async main, its exit code, and its last line on failure.

Every command exits by one convention (also in `ferry --help`):

    0    success
    1    the command ran and what it did failed (a run that did not complete, lint
         errors, a topic conflict, a stack not up), or Ferry failed unexpectedly
    2    a user error: bad arguments or input, a project that does not load, a service
         that cannot be reached: anything raised as `ConfigError` or `BadInputError`
    130  interrupted (Ctrl-C)

Commands return 0 or 1 themselves and raise a `FerryError` for the rest; `exit_code_for`
turns whatever escapes into one line on stderr, never a traceback (`FERRY_DEBUG=1`
adds it). This is also the one place process-wide clients are closed, and where a
command's event loop is chosen: uvloop's where it is installed (Linux and macOS; it is a
dependency there), `FERRY_EVENT_LOOP=asyncio` for the standard library's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import traceback
from collections.abc import Callable, Coroutine
from typing import Any, TextIO, TypeVar

from app.contracts.errors import BadInputError, ConfigError, FerryError

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

DEBUG_ENV = "FERRY_DEBUG"
EVENT_LOOP_ENV = "FERRY_EVENT_LOOP"

EXIT_CODES_HELP = f"""\
exit status:
  0    success
  1    the command ran and what it did failed (a run that did not complete, lint
       errors, a topic conflict…), or Ferry failed unexpectedly
  2    a user error: bad arguments or input, a project that does not load, a
       service that cannot be reached (one line on stderr says what and how to fix it)
  130  interrupted (Ctrl-C)

{DEBUG_ENV}=1 prints the traceback of an error as well."""


def run_main(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the chosen event loop, then close litellm's HTTP clients on it."""

    async def main_then_close() -> T:
        from app.engine.llm import close_llm_clients

        try:
            return await main
        finally:
            await close_llm_clients()

    try:
        loop_factory = event_loop_factory()
    except BaseException:
        main.close()  # never awaited: no "coroutine was never awaited" warning on a bad setting
        raise
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(main_then_close())


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop unless `FERRY_EVENT_LOOP=asyncio` (or uvloop is not installed); None:
    asyncio's own. A profile of a busy worker finds a third of its main thread in the loop
    and its transports, where uvloop's C code costs less than asyncio's Python
    (bench/RESULTS.md, "uvloop")."""
    choice = os.environ.get(EVENT_LOOP_ENV, "").strip().lower() or "uvloop"
    if choice == "asyncio":
        return None
    if choice != "uvloop":
        raise ConfigError(f"{EVENT_LOOP_ENV}={choice!r} is not an event loop — fix: set it to uvloop or asyncio")
    try:
        import uvloop
    except ImportError:  # not a dependency where it does not build (Windows)
        return None
    return uvloop.new_event_loop


def exit_code_for(exc: BaseException, stderr: TextIO | None = None) -> int:
    """Report an exception that escaped a command (one line) and choose the exit code."""
    stream = stderr if stderr is not None else sys.stderr
    if debugging():
        traceback.print_exception(exc, file=stream)
    if isinstance(exc, KeyboardInterrupt):
        print("ferry: interrupted", file=stream)
        return EXIT_INTERRUPTED
    error = ferry_error_in(exc)
    if error is not None:
        print(_prefixed(error.message or type(error).__name__), file=stream)
        return EXIT_USER_ERROR if isinstance(error, ConfigError | BadInputError) else EXIT_FAILED
    hint = "" if debugging() else f" (a bug in Ferry? rerun with {DEBUG_ENV}=1 to see the traceback)"
    print(_prefixed(f"unexpected error: {type(exc).__name__}: {exc}{hint}"), file=stream)
    return EXIT_FAILED


def ferry_error_in(exc: BaseException) -> FerryError | None:
    """The FerryError itself, or the first one inside an exception group (a TaskGroup's)."""
    if isinstance(exc, FerryError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = ferry_error_in(inner)
            if found is not None:
                return found
    return None


def debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _prefixed(message: str) -> str:
    """`ferry: ` once: some messages (older call sites) already start with it."""
    return message if message.startswith("ferry:") else f"ferry: {message}"


def lingering_threads() -> list[threading.Thread]:
    """Threads the interpreter would wait for at exit (non-daemon, still running)."""
    current = threading.current_thread()
    return [t for t in threading.enumerate() if t is not current and not t.daemon and t.is_alive()]


def exit_now(code: int) -> None:
    """Exit without waiting for lingering threads: a thread cannot be stopped, only left."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed or broken pipe: nothing to flush
            stream.flush()
    os._exit(code)
