"""The child side of `isolation: process`: one tool call in a fresh, resource-limited Python.

Run as `python -P app/engine/isolation_child.py`; reads one JSON job on stdin, applies
RLIMIT_CPU and RLIMIT_AS before importing any tool code, calls the tool, writes one
JSON answer on stdout. Kept stdlib-only (plus app.project's tool importer, loaded by path) so it starts fast.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import resource
import sys
from pathlib import Path
from typing import Any


def _limit(cpu_seconds: int, memory_bytes: int) -> None:
    # Soft CPU limit → SIGXCPU (kills the child); the hard limit one second later → SIGKILL.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))


def _tool_modules(project_root: Path) -> Any:
    """app.project's tool importer, loaded from its file: importing the `app.project` package
    would pull in pydantic, YAML and the linter (~0.5 s) for every isolated call."""
    path = Path(__file__).resolve().parent.parent / "project" / "tool_import.py"
    spec = importlib.util.spec_from_file_location("_ferry_isolated_tool_import", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.ToolModules(project_root, "isolated")


def _run(job: dict[str, Any]) -> Any:
    modules = _tool_modules(Path(job["project_root"]))
    module_path, func_name = job["ref"].rsplit(".", 1)
    func = getattr(modules.load(module_path), func_name)
    kwargs = dict(job["kwargs"])
    if job.get("context") is not None:
        kwargs["context"] = job["context"]
    result = func(**kwargs)
    if inspect.isawaitable(result):
        result = asyncio.run(_await(result))
    return result


async def _await(awaitable: Any) -> Any:
    return await awaitable


def main() -> int:
    job = json.loads(sys.stdin.buffer.read())
    _limit(int(job["cpu_seconds"]), int(job["memory_bytes"]))
    out = sys.stdout
    try:
        value = _run(job)
        text = json.dumps({"ok": True, "value": value}, default=str)
    except MemoryError:
        text = json.dumps({"ok": False, "kind": "memory", "error": "the tool exceeded its memory limit"})
    except Exception as exc:
        text = json.dumps({"ok": False, "kind": "error", "error": f"{type(exc).__name__}: {exc}"})
    out.write(text)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
