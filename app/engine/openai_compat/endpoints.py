"""Where a model string is sent on the direct path: URL, headers, the name in the body.

One table decides, for every model an agent names, whether the direct OpenAI-protocol
client serves it and how to reach it, from the same environment the litellm path reads:

1. `ferry.yaml` `models.<model>.api` says so explicitly (`openai` or `litellm`);
2. a `base_url` (the model's own in `ferry.yaml`, else `FERRY_LLM_BASE_URL`) sends the
   model there as `name` (its provider prefix stripped), with the key of
   `api_key_env` or `FERRY_LLM_API_KEY`: the simulator, vLLM, Ollama, a proxy;
3. `openai/…` goes to OpenAI (`OPENAI_API_KEY`, `OPENAI_BASE_URL`/`OPENAI_API_BASE`,
   `OPENAI_ORGANIZATION`), `azure/<deployment>` to Azure OpenAI (`AZURE_API_BASE`,
   `AZURE_API_VERSION`, `AZURE_OPENAI_API_KEY`/`AZURE_API_KEY` in an `api-key` header or
   `AZURE_AD_TOKEN` as a bearer token);
4. everything else goes to litellm, unless `api: openai` names a provider of the table
   below that speaks the protocol (Groq, DeepSeek, Mistral, OpenRouter, Gemini's
   OpenAI endpoint, …).

A real provider's call is priced by the client from the list prices; a call sent to a
`base_url` is not (the name it was sent under is an alias, see `model.py`).
"""

from __future__ import annotations

import os
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from app.contracts.errors import AuthError, ConfigError
from app.project.config import ModelOverrides

#: The API version litellm defaults to for Azure OpenAI (kept the same so both paths agree).
AZURE_DEFAULT_API_VERSION = "2025-02-01-preview"

#: Providers the direct path serves without being asked to in `ferry.yaml`.
DIRECT_BY_DEFAULT = frozenset({"openai", "azure"})


@dataclass(frozen=True, slots=True)
class Provider:
    """A provider speaking the OpenAI chat-completions protocol, as litellm configures it."""

    base_url: str | None  # None: the base URL must come from the environment
    base_url_env: tuple[str, ...] = ()
    key_env: tuple[str, ...] = ()
    key_required: bool = True


PROVIDERS: Mapping[str, Provider] = {
    "openai": Provider("https://api.openai.com/v1", ("OPENAI_BASE_URL", "OPENAI_API_BASE"), ("OPENAI_API_KEY",)),
    "groq": Provider("https://api.groq.com/openai/v1", ("GROQ_API_BASE",), ("GROQ_API_KEY",)),
    "deepseek": Provider("https://api.deepseek.com/v1", ("DEEPSEEK_API_BASE",), ("DEEPSEEK_API_KEY",)),
    "mistral": Provider("https://api.mistral.ai/v1", ("MISTRAL_API_BASE",), ("MISTRAL_API_KEY",)),
    "openrouter": Provider("https://openrouter.ai/api/v1", ("OPENROUTER_API_BASE",), ("OPENROUTER_API_KEY",)),
    "together_ai": Provider("https://api.together.xyz/v1", (), ("TOGETHERAI_API_KEY", "TOGETHER_API_KEY")),
    "fireworks_ai": Provider(
        "https://api.fireworks.ai/inference/v1", (), ("FIREWORKS_API_KEY", "FIREWORKS_AI_API_KEY")
    ),
    "xai": Provider("https://api.x.ai/v1", ("XAI_API_BASE",), ("XAI_API_KEY",)),
    "cerebras": Provider("https://api.cerebras.ai/v1", ("CEREBRAS_API_BASE",), ("CEREBRAS_API_KEY",)),
    "perplexity": Provider("https://api.perplexity.ai", (), ("PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY")),
    "gemini": Provider("https://generativelanguage.googleapis.com/v1beta/openai", (), ("GEMINI_API_KEY",)),
    "ollama": Provider("http://localhost:11434/v1", (), ("OLLAMA_API_KEY",), key_required=False),
    "hosted_vllm": Provider(None, ("HOSTED_VLLM_API_BASE",), ("HOSTED_VLLM_API_KEY",), key_required=False),
    "lm_studio": Provider(None, ("LM_STUDIO_API_BASE",), ("LM_STUDIO_API_KEY",), key_required=False),
}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """How one model string is called."""

    url: str  # the chat-completions URL, query included
    model: str  # the model name sent in the body
    headers: Mapping[str, str] = field(repr=False)  # carries the key: never printed
    provider: str  # `openai`, `azure`, … or `custom` for a base URL
    reports_cost: bool  # a real provider's call is priced; an alias's is not
    proxy: str | None = None  # from HTTPS_PROXY/HTTP_PROXY/NO_PROXY, decided once per endpoint


def provider_of(model: str) -> str:
    """The provider prefix of a model string (`openai/gpt-4o` → `openai`); `` without one."""
    prefix, slash, _ = model.partition("/")
    return prefix if slash else ""


def bare_name(model: str) -> str:
    return model.split("/", 1)[1] if "/" in model else model


class EndpointTable:
    """Which models the direct path serves, and where each one goes. Immutable.

    `environ` is read when an endpoint is first asked for (a key missing then is an
    `AuthError` of that call, as on the litellm path) and the answer is kept.
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str = "ferry-sim",
        overrides: Mapping[str, ModelOverrides] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/") if base_url else None
        self._api_key = api_key
        self._overrides = dict(overrides or {})
        self._environ = os.environ if environ is None else environ
        self._endpoints: dict[str, Endpoint] = {}
        for model, override in self._overrides.items():
            self._check(model, override)

    def path_of(self, model: str) -> Literal["openai", "litellm"]:
        """The path that calls `model`: `openai` (the direct client) or `litellm`."""
        override = self._overrides.get(model)
        if override is not None and override.api is not None:
            return override.api
        if (override is not None and override.base_url) or self._base_url:
            return "openai"
        return "openai" if provider_of(model) in DIRECT_BY_DEFAULT else "litellm"

    def endpoint(self, model: str) -> Endpoint:
        """The endpoint of a model the direct path serves; `AuthError` when a key or URL is missing."""
        found = self._endpoints.get(model)
        if found is None:
            found = self._endpoints[model] = self._resolve(model)
        return found

    def missing_settings(self, model: str) -> tuple[str, ...]:
        """The environment variables a direct-path model still needs (none when it can be called)."""
        try:
            self.endpoint(model)
        except AuthError:
            override = self._overrides.get(model)
            if override is not None and override.api_key_env:
                return (override.api_key_env,)
            provider = provider_of(model) or "openai"
            if provider == "azure":
                return tuple(n for n in ("AZURE_API_BASE", "AZURE_OPENAI_API_KEY") if not self._environ.get(n))
            spec = PROVIDERS[provider]
            if self._first(spec.base_url_env) is None and spec.base_url is None:
                return spec.base_url_env[:1]
            return spec.key_env[:1]
        return ()

    def _check(self, model: str, override: ModelOverrides) -> None:
        """A `ferry.yaml` entry the direct path could never serve is the user's setup error, said at start."""
        if override.api != "openai" or override.base_url or self._base_url:
            return
        provider = provider_of(model) or "openai"
        if provider != "azure" and provider not in PROVIDERS:
            known = ", ".join(sorted({*PROVIDERS, "azure"}))
            raise ConfigError(
                f"ferry.yaml: models.{model}: `api: openai` needs a `base_url` for provider {provider!r} "
                f"(known without one: {known})"
            )

    def _resolve(self, model: str) -> Endpoint:
        override = self._overrides.get(model)
        base_url = (override.base_url if override is not None else None) or self._base_url
        if base_url:
            key = self._env(override.api_key_env) if override is not None and override.api_key_env else self._api_key
            return self._endpoint(base_url, bare_name(model), key, provider="custom", reports_cost=False)
        provider = provider_of(model) or "openai"
        key_env = (override.api_key_env,) if override is not None and override.api_key_env else ()
        if provider == "azure":
            return self._azure(model, key_env)
        spec = PROVIDERS[provider]
        url = self._first(spec.base_url_env) or spec.base_url
        if url is None:
            raise AuthError(f"{model}: set {' or '.join(spec.base_url_env)} to the server's URL")
        names = key_env or spec.key_env
        provider_key = self._first(names)
        if provider_key is None and spec.key_required:
            raise AuthError(f"{model}: no API key, set {' or '.join(names)}")
        endpoint = self._endpoint(url, bare_name(model), provider_key, provider=provider, reports_cost=True)
        organization = self._first(("OPENAI_ORGANIZATION",)) if provider == "openai" else None
        if organization:
            return _with_header(endpoint, "OpenAI-Organization", organization)
        return endpoint

    def _azure(self, model: str, key_env: tuple[str, ...]) -> Endpoint:
        base = self._first(("AZURE_API_BASE",))
        if base is None:
            raise AuthError(f"{model}: set AZURE_API_BASE to the Azure OpenAI resource URL")
        deployment = bare_name(model)
        version = self._first(("AZURE_API_VERSION",)) or AZURE_DEFAULT_API_VERSION
        base = base.rstrip("/")
        if version in ("v1", "latest", "preview"):  # Azure's v1 API: OpenAI's paths, the deployment in the body
            url = f"{base}/openai/v1/chat/completions" + ("?api-version=preview" if version == "preview" else "")
        else:
            query = urllib.parse.urlencode({"api-version": version})
            url = f"{base}/openai/deployments/{urllib.parse.quote(deployment, safe='')}/chat/completions?{query}"
        key = self._first(key_env or ("AZURE_OPENAI_API_KEY", "AZURE_API_KEY"))
        token = self._first(("AZURE_AD_TOKEN",))
        if key is not None:
            headers = {"api-key": key}
        elif token is not None:
            headers = {"Authorization": f"Bearer {token}"}
        else:
            raise AuthError(f"{model}: no API key, set AZURE_OPENAI_API_KEY or AZURE_API_KEY (or AZURE_AD_TOKEN)")
        return Endpoint(
            url=url,
            model=deployment,
            headers={**headers, "Content-Type": "application/json"},
            provider="azure",
            reports_cost=True,
            proxy=_proxy_for(url),
        )

    def _endpoint(self, base_url: str, name: str, key: str | None, *, provider: str, reports_cost: bool) -> Endpoint:
        url = f"{base_url.rstrip('/')}/chat/completions"
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return Endpoint(
            url=url, model=name, headers=headers, provider=provider, reports_cost=reports_cost, proxy=_proxy_for(url)
        )

    def _env(self, name: str) -> str:
        value = self._environ.get(name)
        if not value:
            raise AuthError(f"no API key: the environment variable {name} (ferry.yaml api_key_env) is not set")
        return value

    def _first(self, names: tuple[str, ...]) -> str | None:
        return next((value for name in names if (value := self._environ.get(name))), None)


def _with_header(endpoint: Endpoint, name: str, value: str) -> Endpoint:
    return Endpoint(
        url=endpoint.url,
        model=endpoint.model,
        headers={**endpoint.headers, name: value},
        provider=endpoint.provider,
        reports_cost=endpoint.reports_cost,
        proxy=endpoint.proxy,
    )


def _proxy_for(url: str) -> str | None:
    """The proxy the environment names for `url` (as the `openai` SDK honours it), decided once."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)
