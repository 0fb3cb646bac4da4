"""The Python a suite brings along: mock modules (`tests/mocks/`) and builders (`tests/builders/`).

Each file is imported under a name of its own, derived from its path and bytes, so two
projects (or an edited file) never share a module object, and `sys.path` is never
changed. A file that does not import is a `suite_error` at the line that raised, before
any case runs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import re
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from app.agent_tests.discovery import TESTS_DIR, suite_error

_NOT_WORD = re.compile(r"[^A-Za-z0-9]+")


def import_test_module(project_root: Path, folder: str, name: str) -> ModuleType:
    """`tests/<folder>/<name>.py`, imported (once per content)."""
    path = project_root / TESTS_DIR / folder / f"{name}.py"
    rel = path.relative_to(project_root).as_posix()
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise suite_error(rel, 1, f"cannot read it: {exc.strerror or exc}") from None
    digest = hashlib.sha256(str(path.resolve()).encode() + b"\x00" + source).hexdigest()[:16]
    module_name = f"_ferry_test_{folder}_{_NOT_WORD.sub('_', name)}_{digest}"
    existing = sys.modules.get(module_name)
    if existing is not None:
        return existing
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise suite_error(rel, 1, "cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(module_name, None)
        raise suite_error(rel, exc.lineno or 1, f"invalid Python: {exc.msg}") from None
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise suite_error(rel, _line_in(exc, path), f"raised while imported: {type(exc).__name__}: {exc}") from None
    return module


def _line_in(exc: BaseException, path: Path) -> int:
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if Path(frame.filename) == path]
    return frames[-1].lineno or 1 if frames else 1


def _segment(text: str) -> str:
    return _NOT_WORD.sub("_", text).strip("_")


@dataclass(frozen=True)
class MockModule:
    """One `tests/mocks/<name>.py`: the replacement functions of custom tools and lifecycle phases.

    For the tool `data.customer.add_customer` the most specific function defined wins:
    `mock_data_customer_add_customer`, `mock_data_customer`, `mock_data`, `mock`. Each is
    called as `mock(tool_name, params, context)`; its return value is the tool's result.
    """

    name: str
    module: ModuleType

    @property
    def rel(self) -> str:
        return f"{TESTS_DIR}/mocks/{self.name}.py"

    def for_tool(self, ref: str) -> Callable[..., Any] | None:
        return self._first(_ladder(ref))

    def for_hook(self, ref: str, phase: str) -> Callable[..., Any] | None:
        """`mock_<tool ladder>_hook_before|after`, down to `mock_hook_before|after`."""
        return self._first(f"{name}_hook_{phase}" for name in _ladder(ref))

    def for_middleware(self, phase: str) -> Callable[..., Any] | None:
        """`middleware_before`, `middleware_after` or `middleware_cleanup`."""
        return self._first([f"middleware_{phase}"])

    def for_guardrail(self, direction: str, name: str) -> Callable[..., Any] | None:
        """`guardrail_<direction>_<name>`, then `guardrail_<direction>`, then `guardrail`."""
        return self._first([f"guardrail_{direction}_{_segment(name)}", f"guardrail_{direction}", "guardrail"])

    def _first(self, names: Iterable[str]) -> Callable[..., Any] | None:
        for name in names:
            found = getattr(self.module, name, None)
            if callable(found):
                return found  # type: ignore[no-any-return]
        return None


def _ladder(ref: str) -> list[str]:
    """`mock_a_b_c`, `mock_a_b`, `mock_a`, `mock` for the ref `a.b.c`, most specific first."""
    segments = [_segment(part) for part in ref.split(".")]
    return ["_".join(["mock", *segments[:size]]) for size in range(len(segments), -1, -1)]


async def call_mock(mock: Callable[..., Any], tool_name: str, params: dict[str, Any], context: Any) -> Any:
    """A mock may be sync or async."""
    value = mock(tool_name, params, context)
    if inspect.isawaitable(value):
        value = await value
    return value
