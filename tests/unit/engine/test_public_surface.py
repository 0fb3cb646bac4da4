"""The interface the streams layer, the API and the CLI are written against."""

import inspect

import app.engine
from app.engine import Engine, EngineSettings


def test_exports() -> None:
    assert {"Engine", "EngineSettings", "FakeClock", "execute_agent", "next_stage_input"} <= set(app.engine.__all__)
    for name in app.engine.__all__:
        assert getattr(app.engine, name) is not None


def test_engine_signatures() -> None:
    init = inspect.signature(Engine.__init__)
    assert list(init.parameters) == ["self", "project", "settings"]
    assert init.parameters["settings"].kind is inspect.Parameter.KEYWORD_ONLY
    run = inspect.signature(Engine.run)
    assert list(run.parameters) == ["self", "request", "on_span"]
    assert run.parameters["on_span"].kind is inspect.Parameter.KEYWORD_ONLY
    assert inspect.iscoroutinefunction(Engine.run) and inspect.iscoroutinefunction(Engine.aclose)


def test_settings_read_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("FERRY_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("FERRY_LLM_API_KEY", "k-123")
    settings = EngineSettings()
    assert (settings.llm_base_url, settings.llm_api_key) == ("http://127.0.0.1:9/v1", "k-123")
    monkeypatch.delenv("FERRY_LLM_BASE_URL")
    monkeypatch.delenv("FERRY_LLM_API_KEY")
    assert (EngineSettings().llm_base_url, EngineSettings().llm_api_key) == (None, "ferry-sim")
