"""The example project's invoice pipeline on both model paths, against the simulator.

As `make run` has it, every model takes the direct OpenAI-protocol path and litellm is
never imported; with `api: litellm` for the project's model in `ferry.yaml` (what a
model that needs litellm gets), the same pipeline runs through litellm with the same
record. Each case runs `ferry run` in a fresh interpreter, since whether litellm was
imported is a fact of the whole process; the wrapper counts each client's calls.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "samples" / "invoices" / "acme-a-7781.pdf"
MODEL = "gemini/gemini-2.5-flash"  # the example agents' model

WRAPPER = """
import json, sys
from app.cli import main
from app.engine.llm import LiteLLMClient
from app.engine.openai_compat import OpenAICompatClient

calls = {"direct": 0, "litellm": 0}

def counted(cls, path):
    complete = cls.complete
    async def wrapper(self, request):
        calls[path] += 1
        return await complete(self, request)
    cls.complete = wrapper

counted(OpenAICompatClient, "direct")
counted(LiteLLMClient, "litellm")
code = main(sys.argv[1:])
print(json.dumps({**calls, "litellm_imported": "litellm" in sys.modules}), file=sys.stderr)
sys.exit(code)
"""


def run_pipeline(project: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FERRY_LLM_", "GEMINI_", "GOOGLE_"))}
    args = ["run", "invoice-pipeline", "--input", f"@{SAMPLE}", "--project", str(project), "--sim"]
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=180
    )
    assert done.returncode == 0, done.stderr
    counts: dict[str, Any] = json.loads(done.stderr.strip().splitlines()[-1])
    result: dict[str, Any] = json.loads(done.stdout)
    return result, counts


def assert_the_sample_record(result: dict[str, Any]) -> None:
    expected = json.loads(SAMPLE.with_suffix(".json").read_text())["expected"]
    record = result["output"]
    assert result["status"] == "completed", result.get("error")
    assert (record["vendor"], record["invoice_number"]) == (expected["vendor"], expected["invoice_number"])
    assert Decimal(record["total"]) == Decimal(str(expected["total"]))
    assert record["validation_status"] == "valid"
    assert result["usage"]["llm_calls"] == 5 and result["usage"]["cost_usd"] > 0


def test_the_pipeline_takes_the_direct_path_and_never_imports_litellm() -> None:
    result, counts = run_pipeline(ROOT)
    assert_the_sample_record(result)
    assert counts == {"direct": 5, "litellm": 0, "litellm_imported": False}


def test_the_pipeline_runs_through_litellm_when_its_model_needs_it(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    for part in ("agents", "tools", "schemas"):
        shutil.copytree(ROOT / part, project / part)
    config = yaml.safe_load((ROOT / "ferry.yaml").read_text())
    config["models"][MODEL]["api"] = "litellm"
    (project / "ferry.yaml").write_text(yaml.safe_dump(config))
    result, counts = run_pipeline(project)
    assert_the_sample_record(result)
    assert counts == {"direct": 0, "litellm": 5, "litellm_imported": True}
