"""`isolation: process`: a tool call in its own short-lived, resource-limited process.

Why a fresh subprocess per call rather than a pool: a call that loops or hogs memory
must be killable without taking other runs' calls with it, and limits (RLIMIT_CPU,
RLIMIT_AS, set in the child before any tool code is imported) apply per process. The
price is an interpreter start (~50–150 ms) per call, paid only by agents that ask for it.

Outcomes the caller sees:
- the tool's value, or its exception as a `ToolError`;
- `ToolTimeoutError` when `tool_timeout` passes: the child is SIGKILLed;
- `ToolError` "CPU time limit" when the child burns its CPU seconds (SIGXCPU);
- `ToolError` "memory limit" when an allocation fails under RLIMIT_AS.
Arguments, context and result cross the boundary as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import sys
from pathlib import Path
from typing import Any

from app.contracts.errors import ToolError, ToolTimeoutError

#: Started by path, not with `-m app.engine…`: importing the `app` packages would cost
#: the child half a second of imports it never uses.
_CHILD = str(Path(__file__).resolve().parent / "isolation_child.py")


class ProcessIsolation:
    def __init__(self, *, memory_mb: int, default_cpu_seconds: int, slots: int = 8) -> None:
        self.memory_bytes = memory_mb * 1024 * 1024
        self.default_cpu_seconds = default_cpu_seconds
        self._slots = asyncio.Semaphore(slots)  # a burst of runs must not fork-bomb the host

    async def call(
        self,
        *,
        tool_name: str,
        ref: str,
        project_root: Path,
        kwargs: dict[str, Any],
        context: dict[str, Any] | None,
        timeout: float | None,
    ) -> Any:
        async with self._slots:
            return await self._call(tool_name, ref, project_root, kwargs, context, timeout)

    async def _call(
        self,
        tool_name: str,
        ref: str,
        project_root: Path,
        kwargs: dict[str, Any],
        context: dict[str, Any] | None,
        timeout: float | None,
    ) -> Any:
        # With a timeout the CPU limit is only a backstop, a second past it: at exactly the
        # timeout a tool on a whole core could hit it before a loaded parent's timer fired,
        # and a timeout reported as a CPU-limit kill (tool_error) failed the suite once.
        cpu_seconds = math.ceil(timeout) + 1 if timeout else self.default_cpu_seconds
        job = json.dumps(
            {
                "project_root": str(project_root),
                "ref": ref,
                "kwargs": kwargs,
                "context": context,
                "cpu_seconds": max(1, cpu_seconds),
                "memory_bytes": self.memory_bytes,
            },
            default=str,
        ).encode()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-P",  # run the child script without putting app/engine/ first on sys.path
            _CHILD,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # a kill reaches the tool's own children too
        )
        try:
            async with asyncio.timeout(timeout):
                stdout, stderr = await proc.communicate(job)
        except TimeoutError:
            _kill(proc)
            await proc.wait()
            raise ToolTimeoutError(tool_name, timeout or 0.0) from None
        except BaseException:
            _kill(proc)  # cancelled with the run: leave nothing behind
            await proc.wait()
            raise
        return _answer(tool_name, proc.returncode, stdout, stderr)


def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _answer(tool_name: str, returncode: int | None, stdout: bytes, stderr: bytes) -> Any:
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL) and not stdout:
        raise ToolError(f"tool {tool_name!r} was killed: it exceeded its CPU time limit", tool_name)
    try:
        answer = json.loads(stdout)
    except json.JSONDecodeError:
        tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit code {returncode}"]
        if "MemoryError" in tail[0]:
            raise ToolError(f"tool {tool_name!r} exceeded its memory limit", tool_name) from None
        raise ToolError(f"tool {tool_name!r} crashed in its isolated process: {tail[0]}", tool_name) from None
    if answer.get("ok"):
        return answer.get("value")
    raise ToolError(f"tool {tool_name!r} failed: {answer.get('error')}", tool_name)
