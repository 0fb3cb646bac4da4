"""One error tree: every exception Ferry defines is a FerryError and is drawn in the tree's docstring;
the contracts at the bottom of the layers import nothing else of app."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import app
import app.contracts.errors as errors
from app.contracts.errors import FerryError

APP_DIR = Path(app.__file__).parent
#: Entry points that run something when imported.
NOT_IMPORTED = {"app.__main__", "app.devstack.llm_sim.__main__", "app.engine.isolation_child"}


def ferry_exception_classes() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module_info in pkgutil.walk_packages([str(APP_DIR)], prefix="app."):
        if module_info.name in NOT_IMPORTED or ".migrations." in module_info.name:
            continue
        module = importlib.import_module(module_info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == module.__name__:
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return list(found.values())


def test_every_ferry_exception_is_under_the_root_and_in_the_drawn_tree() -> None:
    classes = ferry_exception_classes()
    assert len(classes) >= 30  # the walk really found the tree
    outside = [c.__qualname__ for c in classes if not issubclass(c, FerryError)]
    assert outside == []
    undrawn = [c.__qualname__ for c in classes if f" {c.__qualname__} " not in errors.__doc__]
    assert undrawn == []


def test_every_class_carries_its_category() -> None:
    for cls in ferry_exception_classes():
        if issubclass(cls, FerryError):
            assert cls.category.value in errors.__doc__.split(cls.__qualname__, 1)[1].split("\n", 1)[0] or (
                cls.category is cls.__mro__[1].category  # inherits its parent's, drawn on the parent's line
            ), cls


def test_contracts_import_nothing_else_of_app() -> None:
    for path in (APP_DIR / "contracts").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("app"):
                assert node.module.startswith("app.contracts"), f"{path.name} imports {node.module}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("app") or alias.name.startswith("app.contracts"), path.name
