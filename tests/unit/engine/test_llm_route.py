from app.engine.llm import LiteLLMClient


def test_with_a_base_url_every_provider_goes_there_as_openai() -> None:
    client = LiteLLMClient(base_url="http://127.0.0.1:8/v1", api_key="k")
    assert client.route("gemini/gemini-2.5-flash") == {
        "model": "openai/gemini-2.5-flash",
        "api_base": "http://127.0.0.1:8/v1",
        "api_key": "k",
    }
    assert client.route("plain-name")["model"] == "openai/plain-name"


def test_without_a_base_url_the_model_string_is_untouched() -> None:
    client = LiteLLMClient(base_url=None, api_key="unused")
    assert client.route("gemini/gemini-2.5-flash") == {"model": "gemini/gemini-2.5-flash"}
