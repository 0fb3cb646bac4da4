"""The interface the streams layer, the API and the CLI are written against."""

import inspect

import app.engine
import app.engine.testing
from app.engine import Engine, EngineSettings, LLMClient
from app.engine.llm import LiteLLMClient
from app.engine.testing import FunctionLLM, ScriptedLLM


def test_exports() -> None:
    assert sorted(app.engine.__all__) == [
        "Clock",
        "Engine",
        "EngineSettings",
        "FakeClock",
        "LLMClient",
        "LLMMiddleware",
        "LLMRequest",
        "LLMResponse",
        "LLMUsage",
        "SystemClock",
        "ToolCall",
        "execute_agent",
        "next_stage_input",
    ]
    assert sorted(app.engine.testing.__all__) == ["FunctionLLM", "Reply", "ScriptedLLM", "Step", "tool_call"]
    for module in (app.engine, app.engine.testing):
        for name in module.__all__:
            assert getattr(module, name) is not None


def test_engine_signatures() -> None:
    init = inspect.signature(Engine.__init__)
    assert list(init.parameters) == [
        "self",
        "project",
        "settings",
        "llm",
        "llm_middleware",
        "clock",
        "agent_trigger",
        "connic",
    ]
    assert all(init.parameters[name].kind is inspect.Parameter.KEYWORD_ONLY for name in list(init.parameters)[2:])
    run = inspect.signature(Engine.run)
    assert list(run.parameters) == ["self", "request", "on_span", "trace_context"]
    assert run.parameters["on_span"].kind is inspect.Parameter.KEYWORD_ONLY
    assert run.parameters["trace_context"].kind is inspect.Parameter.KEYWORD_ONLY
    assert run.parameters["trace_context"].default is None
    assert inspect.iscoroutinefunction(Engine.run) and inspect.iscoroutinefunction(Engine.aclose)


def test_the_model_interface_is_one_async_complete() -> None:
    members = {name for name in vars(LLMClient) if not name.startswith("_")}
    assert members == {"complete"}
    assert list(inspect.signature(LLMClient.complete).parameters) == ["self", "request"]
    for client in (LiteLLMClient(base_url=None, api_key="k"), ScriptedLLM([]), FunctionLLM(lambda request: "ok")):
        assert isinstance(client, LLMClient)


def test_settings_are_data_only() -> None:
    fields = set(EngineSettings.model_fields)
    assert fields == {
        "llm_base_url",
        "llm_api_key",
        "tool_threads",
        "process_slots",
        "process_memory_mb",
        "process_cpu_seconds",
        "retry_jitter",
        "random_seed",
    }
    assert EngineSettings.model_validate_json(EngineSettings(random_seed=3).model_dump_json()) == EngineSettings(
        random_seed=3
    )


def test_settings_read_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("FERRY_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("FERRY_LLM_API_KEY", "k-123")
    settings = EngineSettings()
    assert (settings.llm_base_url, settings.llm_api_key) == ("http://127.0.0.1:9/v1", "k-123")
    monkeypatch.delenv("FERRY_LLM_BASE_URL")
    monkeypatch.delenv("FERRY_LLM_API_KEY")
    assert (EngineSettings().llm_base_url, EngineSettings().llm_api_key) == (None, "ferry-sim")
