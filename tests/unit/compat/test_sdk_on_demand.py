"""The Connic SDK (and jsonschema) are loaded only by a project that uses them.

Each case runs in a fresh interpreter, since what is imported is a fact of the whole
process: the worker's modules are imported and an engine is built for the project as a
worker builds it (no broker is reached for that), then the probe reports what is loaded
and what the project's own modules bound from `connic.tools`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]

PROBE = """
import asyncio, json, sys
import app.cli.worker, app.streams.worker  # the worker's own modules
from app.contracts import RunRequest
from app.engine import EngineSettings
from app.engine.testing import Reply, ScriptedLLM
from app.project import load_project
from app.streams import StreamSettings, Worker

worker = Worker(load_project(sys.argv[1]), StreamSettings(bootstrap="127.0.0.1:1"), engine_settings=EngineSettings())
worker._make_engine(worker.project)
loaded = {name: name in sys.modules for name in ("connic", "jsonschema")}
helpers = sys.modules.get("ferry_probe_helpers")  # the project's module, when it has one
bound = getattr(getattr(helpers, "db_find", None), "__ferry_predefined__", None)
tools = [tool.name for tool in worker.project.agents["a"].resolved_tools]
print(json.dumps({**loaded, "bound": bound, "tools": tools}))
"""


def probe(root: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(root)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def project(tmp_path: Path, *, tools: list[str] | None = None, module: str | None = None) -> Path:
    root = tmp_path / "project"
    (root / "agents").mkdir(parents=True)
    agent: dict[str, Any] = {
        "version": "1.0",
        "name": "a",
        "description": "probe",
        "model": "openai/m",
        "system_prompt": "Hi.",
    }
    if tools:
        agent["tools"] = tools
    (root / "agents" / "a.yaml").write_text(yaml.safe_dump(agent))
    if module is not None:
        (root / "tools").mkdir()
        (root / "tools" / "shop.py").write_text(textwrap.dedent(module))
    return root


SHOP = '''
    def lookup(item: str) -> dict:
        """Look an item up."""
        return {"item": item}
'''


def test_a_worker_for_a_project_without_connic_loads_neither_the_sdk_nor_jsonschema(tmp_path: Path) -> None:
    assert probe(project(tmp_path, tools=["shop.lookup"], module=SHOP)) == {
        "connic": False,
        "jsonschema": False,
        "bound": None,
        "tools": ["lookup"],
    }


def test_a_tool_module_importing_connic_tools_binds_ferrys_dispatcher(tmp_path: Path) -> None:
    """The SDK is first imported by the project's own module: the dispatchers are in place
    before its `from connic.tools import db_find` binds the name."""
    module = """
        import sys
        from connic.tools import db_find

        sys.modules["ferry_probe_helpers"] = sys.modules[__name__]

        def lookup(item: str) -> dict:
            \"\"\"Look an item up.\"\"\"
            return {"item": item}
    """
    assert probe(project(tmp_path, tools=["shop.lookup"], module=module)) == {
        "connic": True,
        "jsonschema": False,
        "bound": "db_find",
        "tools": ["lookup"],
    }


def test_a_predefined_tool_listed_by_name_loads_the_sdk_and_is_offered(tmp_path: Path) -> None:
    assert probe(project(tmp_path, tools=["db_find"])) == {
        "connic": True,
        "jsonschema": False,
        "bound": None,
        "tools": ["db_find"],
    }
