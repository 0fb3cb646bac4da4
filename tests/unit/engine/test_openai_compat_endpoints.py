"""Which path a model takes and where the direct path sends it, from the same settings litellm reads."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.contracts.errors import AuthError, ConfigError
from app.engine.openai_compat import EndpointTable
from app.engine.openai_compat.endpoints import AZURE_DEFAULT_API_VERSION
from app.project.config import ModelOverrides, ProjectConfig


def table(environ: dict[str, str] | None = None, **options: object) -> EndpointTable:
    return EndpointTable(environ=environ or {}, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("openai/gpt-4o-mini", "openai"),
        ("azure/my-deployment", "openai"),
        ("gemini/gemini-2.5-flash", "litellm"),
        ("anthropic/claude-sonnet-4", "litellm"),
        ("groq/llama-3.3-70b", "litellm"),  # speaks the protocol, but only when ferry.yaml asks
        ("gpt-4o", "litellm"),  # no prefix: litellm infers the provider
    ],
)
def test_default_paths_by_prefix(model: str, path: str) -> None:
    assert table().path_of(model) == path


def test_a_base_url_sends_every_model_to_the_direct_path() -> None:
    endpoints = table(base_url="http://127.0.0.1:8/v1/", api_key="k")
    assert endpoints.path_of("gemini/gemini-2.5-flash") == "openai"
    endpoint = endpoints.endpoint("gemini/gemini-2.5-flash")
    assert endpoint.url == "http://127.0.0.1:8/v1/chat/completions"
    assert endpoint.model == "gemini-2.5-flash"
    assert endpoint.headers["Authorization"] == "Bearer k"
    assert not endpoint.reports_cost  # the server's name for it is an alias: not priced as Gemini
    assert endpoints.endpoint("plain-name").model == "plain-name"
    assert endpoints.endpoint("openrouter/meta/llama-3").model == "meta/llama-3"  # only the first prefix goes


def test_ferry_yaml_chooses_the_path_per_model() -> None:
    overrides = {
        "openai/gpt-4o": ModelOverrides(api="litellm"),
        "groq/llama-3.3-70b": ModelOverrides(api="openai"),
        "local/qwen": ModelOverrides(base_url="http://gpu-box:8000/v1", api_key_env="GPU_BOX_KEY"),
    }
    endpoints = table({"GROQ_API_KEY": "gk", "GPU_BOX_KEY": "bk"}, overrides=overrides)
    assert endpoints.path_of("openai/gpt-4o") == "litellm"
    assert endpoints.path_of("groq/llama-3.3-70b") == "openai"
    assert endpoints.path_of("local/qwen") == "openai"
    groq = endpoints.endpoint("groq/llama-3.3-70b")
    assert (groq.url, groq.model, groq.headers["Authorization"]) == (
        "https://api.groq.com/openai/v1/chat/completions",
        "llama-3.3-70b",
        "Bearer gk",
    )
    assert groq.reports_cost
    local = endpoints.endpoint("local/qwen")
    assert (local.url, local.model, local.headers["Authorization"]) == (
        "http://gpu-box:8000/v1/chat/completions",
        "qwen",
        "Bearer bk",
    )
    assert not local.reports_cost


def test_a_models_own_base_url_wins_over_ferry_llm_base_url() -> None:
    overrides = {"local/qwen": ModelOverrides(base_url="http://gpu-box:8000/v1")}
    endpoints = table(base_url="http://sim:1/v1", api_key="sim", overrides=overrides)
    assert endpoints.endpoint("local/qwen").url == "http://gpu-box:8000/v1/chat/completions"
    assert endpoints.endpoint("local/qwen").headers["Authorization"] == "Bearer sim"
    assert endpoints.endpoint("openai/x").url == "http://sim:1/v1/chat/completions"


def test_openai_reads_litellms_environment() -> None:
    environ = {"OPENAI_API_KEY": "sk-1", "OPENAI_API_BASE": "https://proxy.example/v1", "OPENAI_ORGANIZATION": "org-9"}
    endpoint = table(environ).endpoint("openai/gpt-4o-mini")
    assert endpoint.url == "https://proxy.example/v1/chat/completions"
    assert endpoint.model == "gpt-4o-mini"
    assert endpoint.headers["Authorization"] == "Bearer sk-1"
    assert endpoint.headers["OpenAI-Organization"] == "org-9"
    assert endpoint.reports_cost
    assert table({"OPENAI_API_KEY": "k"}).endpoint("openai/gpt-4o").url == "https://api.openai.com/v1/chat/completions"


def test_a_missing_key_is_an_auth_error_of_the_call() -> None:
    endpoints = table()  # built without complaint: only a call needs the key
    with pytest.raises(AuthError, match="OPENAI_API_KEY"):
        endpoints.endpoint("openai/gpt-4o")
    with pytest.raises(AuthError, match="AZURE_API_BASE"):
        endpoints.endpoint("azure/dep")
    with pytest.raises(AuthError, match="AZURE_OPENAI_API_KEY"):
        table({"AZURE_API_BASE": "https://r.openai.azure.com"}).endpoint("azure/dep")
    with pytest.raises(AuthError, match="MY_KEY"):
        table(overrides={"x/m": ModelOverrides(base_url="http://h/v1", api_key_env="MY_KEY")}).endpoint("x/m")


def test_azure_deployment_url_with_api_version_and_api_key_header() -> None:
    environ = {"AZURE_API_BASE": "https://res.openai.azure.com/", "AZURE_API_KEY": "az-key"}
    endpoint = table(environ).endpoint("azure/my gpt4o")
    assert endpoint.url == (
        "https://res.openai.azure.com/openai/deployments/my%20gpt4o/chat/completions"
        f"?api-version={AZURE_DEFAULT_API_VERSION}"
    )
    assert endpoint.headers["api-key"] == "az-key"
    assert "Authorization" not in endpoint.headers
    assert endpoint.model == "my gpt4o" and endpoint.provider == "azure" and endpoint.reports_cost


def test_azure_api_version_v1_and_entra_token() -> None:
    environ = {"AZURE_API_BASE": "https://res.openai.azure.com", "AZURE_API_VERSION": "v1", "AZURE_AD_TOKEN": "tok"}
    endpoint = table(environ).endpoint("azure/gpt-4o")
    assert endpoint.url == "https://res.openai.azure.com/openai/v1/chat/completions"
    assert endpoint.headers["Authorization"] == "Bearer tok"
    pinned = table({**environ, "AZURE_API_VERSION": "2024-10-21", "AZURE_OPENAI_API_KEY": "k"}).endpoint("azure/d")
    assert pinned.url.endswith("/openai/deployments/d/chat/completions?api-version=2024-10-21")
    assert pinned.headers["api-key"] == "k"


def test_api_openai_for_an_unknown_provider_without_base_url_is_refused_at_start() -> None:
    with pytest.raises(ConfigError, match="base_url"):
        table(overrides={"acme/model-1": ModelOverrides(api="openai")})
    table(base_url="http://sim/v1", overrides={"acme/model-1": ModelOverrides(api="openai")})  # served by the base URL


def test_the_key_is_never_printed() -> None:
    endpoint = table({"OPENAI_API_KEY": "sk-secret"}).endpoint("openai/gpt-4o")
    assert "sk-secret" not in repr(endpoint)


def test_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    endpoints = table({"OPENAI_API_KEY": "k"}, overrides={"l/m": ModelOverrides(base_url="http://127.0.0.1:9/v1")})
    assert endpoints.endpoint("openai/gpt-4o").proxy == "http://proxy.corp:3128"
    assert endpoints.endpoint("l/m").proxy is None


@pytest.mark.parametrize(
    "entry",
    [
        {"api": "vllm"},
        {"base_url": "gpu-box:8000/v1"},
        {"api_key_env": "sk-live-1234"},  # a key pasted where its variable's name belongs
        {"api": "litellm", "base_url": "http://h/v1"},
    ],
)
def test_ferry_yaml_refuses_invalid_path_settings(entry: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        ProjectConfig.model_validate({"models": {"m/x": entry}})
