"""The direct client's wire format and prices: what is sent, what is read back, what a call costs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.engine.model import LLMRequest, ToolCall
from app.engine.openai_compat.wire import MalformedCompletion, is_reasoning_model, parse_completion, request_body
from app.engine.price_map import ListPrice, list_price, litellm_price_file, read_price_entry

ROOT = Path(__file__).resolve().parents[3]
USER = [{"role": "user", "content": "hi"}]


def test_only_what_is_set_is_sent() -> None:
    assert request_body(LLMRequest(model="openai/gpt-4o", messages=USER), "gpt-4o") == {
        "model": "gpt-4o",
        "messages": USER,
    }


def test_every_option_is_sent_under_its_openai_name() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    schema = {"type": "json_object"}
    body = request_body(
        LLMRequest(
            model="m",
            messages=USER,
            tools=tools,
            tool_choice="required",
            temperature=0.2,
            max_tokens=100,
            response_format=schema,
        ),
        "m",
    )
    assert body == {
        "model": "m",
        "messages": USER,
        "tools": tools,
        "tool_choice": "required",
        "temperature": 0.2,
        "max_tokens": 100,
        "response_format": schema,
    }


def test_a_tool_choice_without_tools_is_not_sent() -> None:
    """OpenAI refuses `tool_choice` when no tools are given; litellm drops it too."""
    assert "tool_choice" not in request_body(LLMRequest(model="m", messages=USER, tools=[], tool_choice="auto"), "m")


@pytest.mark.parametrize("name", ["o1", "o3-mini", "o4-mini", "gpt-5", "gpt-5-mini", "azure/gpt-5.1"])
def test_reasoning_models_take_max_completion_tokens_and_no_temperature(name: str) -> None:
    assert is_reasoning_model(name)
    body = request_body(LLMRequest(model=name, messages=USER, temperature=0.3, max_tokens=64), name)
    assert body["max_completion_tokens"] == 64
    assert "max_tokens" not in body and "temperature" not in body
    assert request_body(LLMRequest(model=name, messages=USER, temperature=1), name)["temperature"] == 1


@pytest.mark.parametrize("name", ["gpt-4o", "gpt-5-chat-latest", "omni-moderation", "llama-3.1-8b", "sim-model"])
def test_other_models_keep_their_options(name: str) -> None:
    assert not is_reasoning_model(name)
    body = request_body(LLMRequest(model=name, messages=USER, temperature=0.3, max_tokens=64), name)
    assert (body["temperature"], body["max_tokens"]) == (0.3, 64)


def completion(message: dict[str, object], **extra: object) -> dict[str, object]:
    return {
        "id": "c1",
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
        **extra,
    }


def test_a_text_answer() -> None:
    parsed = parse_completion(completion({"role": "assistant", "content": "hello"}), "azure/my-deployment")
    response = parsed.response
    assert (response.model, response.text, response.finish_reason) == ("azure/my-deployment", "hello", "stop")
    assert (response.usage.prompt_tokens, response.usage.completion_tokens, response.usage.cost_usd) == (12, 5, None)
    assert parsed.answered_by == "gpt-4o-2024-08-06"


def test_tool_calls_as_sent_and_as_some_servers_send_them() -> None:
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}},
            {"type": "function", "function": {"name": "mul", "arguments": {"b": 2}}},  # no id, arguments as an object
        ],
    }
    response = parse_completion(completion(message), "m").response
    assert response.text is None
    assert response.tool_calls == (
        ToolCall(id="call_a", name="add", arguments='{"a": 1}'),
        ToolCall(id="call_1", name="mul", arguments='{"b": 2}'),
    )
    assert response.assistant_message()["tool_calls"][1]["function"]["arguments"] == '{"b": 2}'


def test_content_as_a_list_of_parts() -> None:
    parts = [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "four"}, {"type": "text", "text": "!"}]
    assert parse_completion(completion({"role": "assistant", "content": parts}), "m").response.text == "four!"


def test_missing_usage_is_zero_and_cached_tokens_are_read() -> None:
    data = completion({"role": "assistant", "content": "x"})
    del data["usage"]
    assert parse_completion(data, "m").response.usage.total_tokens == 0
    data["usage"] = {"prompt_tokens": 100, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 80}}
    assert parse_completion(data, "m").cached_prompt_tokens == 80


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"choices": []},
        {"choices": [{"index": 0}]},
        {"choices": [{"message": {"tool_calls": [{"id": "x"}]}}]},
        {"id": "chatcmpl-broken"},
    ],
)
def test_a_body_that_is_not_a_completion_is_refused(data: object) -> None:
    with pytest.raises(MalformedCompletion):
        parse_completion(data, "m")


PRICES = {
    "gpt-4o-mini": ListPrice(1e-6, 4e-6, 5e-7, "openai"),
    "azure/gpt-4o": ListPrice(2e-6, 8e-6, None, "azure"),
    "llama3-8b": ListPrice(1e-7, 1e-7, None, "groq"),
}


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("openai/gpt-4o-mini", "gpt-4o-mini"),  # listed without the prefix, same provider
        ("azure/gpt-4o", "azure/gpt-4o"),
        ("azure/gpt-4o-mini", None),  # another provider's entry is not this one's price
        ("openai/llama3-8b", None),
        ("openai/sim-model", None),
    ],
)
def test_list_price_lookup(model: str, expected: str | None) -> None:
    assert list_price(model, PRICES) == (PRICES[expected] if expected else None)


def test_cached_prompt_tokens_cost_the_cache_price() -> None:
    price = PRICES["gpt-4o-mini"]
    assert price.cost(100, 10) == pytest.approx(100 * 1e-6 + 10 * 4e-6)
    assert price.cost(100, 10, cached_prompt_tokens=80) == pytest.approx(20 * 1e-6 + 80 * 5e-7 + 10 * 4e-6)
    assert PRICES["azure/gpt-4o"].cost(100, 0, cached_prompt_tokens=80) == pytest.approx(100 * 2e-6)  # no cache price


def test_litellms_price_file_is_read_without_importing_litellm(tmp_path: Path) -> None:
    assert litellm_price_file() is not None, "litellm is a dependency: its price file must be found"
    probe = (
        "import sys; from app.engine.price_map import list_price; "
        "print(list_price('openai/gpt-4o-mini') is not None, 'litellm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["True", "False"]
    mini = tmp_path / "prices.json"
    mini.write_text(
        json.dumps(
            {
                "sample_spec": {"input_cost_per_token": "see docs"},
                "m1": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "litellm_provider": "openai"},
                "m2": {"input_cost_per_token": 1e-6, "mode": "embedding"},
                "m3": {"regions": {"m1": {"input_cost_per_token": 9.0}}, "alias_of": "m1"},
            },
            indent=4,
        )
    )
    assert read_price_entry(mini, "m1") == ListPrice(1e-6, 2e-6, None, "openai")
    assert [read_price_entry(mini, name) for name in ("sample_spec", "m2", "m3", "m4")] == [None] * 4


def test_an_entry_is_found_however_it_is_indented(tmp_path: Path) -> None:
    """litellm's file writes one entry per line at four spaces, with an exception or two."""
    odd = tmp_path / "prices.json"
    odd.write_text(
        '{\n    "a": {\n        "input_cost_per_token": 1e-06,\n        "output_cost_per_token": 2e-06\n    },\n'
        '"b": {"input_cost_per_token": 3e-06, "output_cost_per_token": 4e-06, "litellm_provider": "x"},\n'
        '    "c": {"input_cost_per_token": 5e-06, "output_cost_per_token": 6e-06},\n'
        '    "d": {\n        "input_cost_per_token": 7e-06,\n        "output_cost_per_token": 8e-06\n    }\n}'
    )
    assert read_price_entry(odd, "a") == ListPrice(1e-6, 2e-6, None, "")
    assert read_price_entry(odd, "b") == ListPrice(3e-6, 4e-6, None, "x")  # at column 0
    assert read_price_entry(odd, "c") == ListPrice(5e-6, 6e-6, None, "")  # on one line: not closed at four spaces
    assert read_price_entry(odd, "d") == ListPrice(7e-6, 8e-6, None, "")


def test_entries_read_alone_price_as_the_whole_of_litellms_file() -> None:
    path = litellm_price_file()
    assert path is not None
    whole = json.loads(path.read_bytes())
    names = [*list(whole)[::25], "claude-haiku-5-5"]  # a sample, and one entry written at column 0
    for name in names:
        entry = whole.get(name)
        prompt, completion = (entry or {}).get("input_cost_per_token"), (entry or {}).get("output_cost_per_token")
        priced = isinstance(prompt, int | float) and isinstance(completion, int | float)
        found = read_price_entry(path, name)
        assert (found is not None) == priced, name
        if found is not None:
            assert (found.input_cost_per_token, found.output_cost_per_token) == (prompt, completion), name
            assert found.provider == (entry.get("litellm_provider") or ""), name
