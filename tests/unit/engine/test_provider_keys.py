"""The key check before `ferry run`: names what is missing, per path, without importing litellm needlessly."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.engine import EngineSettings
from app.engine.provider_keys import missing_provider_keys
from tests.unit.engine.conftest import ProjectFactory

KEYS = (
    "OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "FERRY_LLM_BASE_URL",
    "AZURE_API_BASE",
    "AZURE_OPENAI_API_KEY",
)


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEYS:
        monkeypatch.delenv(name, raising=False)


def test_a_direct_path_model_names_its_missing_key(make_project: ProjectFactory, monkeypatch) -> None:
    project = make_project([{"name": "a", "model": "openai/gpt-4o-mini"}])
    assert missing_provider_keys(project, "a") == ["OPENAI_API_KEY"]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert missing_provider_keys(project, "a") == []


def test_an_azure_model_names_what_it_lacks(make_project: ProjectFactory, monkeypatch) -> None:
    project = make_project([{"name": "a", "model": "azure/my-deployment"}])
    assert missing_provider_keys(project, "a") == ["AZURE_API_BASE", "AZURE_OPENAI_API_KEY"]
    monkeypatch.setenv("AZURE_API_BASE", "https://example.invalid")
    assert missing_provider_keys(project, "a") == ["AZURE_OPENAI_API_KEY"]


def test_a_base_url_serves_every_model_without_provider_keys(make_project: ProjectFactory) -> None:
    project = make_project([{"name": "a", "model": "gemini/gemini-2.5-flash"}])
    settings = EngineSettings(llm_base_url="http://127.0.0.1:9/v1")
    assert missing_provider_keys(project, "a", settings) == []


def test_a_litellm_model_is_checked_by_litellm(make_project: ProjectFactory) -> None:
    project = make_project([{"name": "a", "model": "gemini/gemini-2.5-flash"}])
    assert "GEMINI_API_KEY" in missing_provider_keys(project, "a")  # litellm also names GOOGLE_API_KEY


def test_checking_a_direct_path_agent_never_imports_litellm(make_project: ProjectFactory) -> None:
    project = make_project([{"name": "a", "model": "openai/gpt-4o-mini"}])
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from app.project import load_project
        from app.engine.provider_keys import missing_provider_keys
        print(missing_provider_keys(load_project(Path({str(project.root)!r})), "a"))
        print("litellm" in sys.modules)
        """
    )
    env = {"PATH": "/usr/bin:/bin", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=Path.cwd(), check=True
    )
    assert done.stdout.split("\n")[:2] == ["['OPENAI_API_KEY']", "False"]
