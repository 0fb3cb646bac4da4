"""What the LLM sees of a tool: a JSON schema built from its signature and docstring."""

from __future__ import annotations

import re
from typing import Any, Optional

import pytest

from app.project import ToolSchemaError, function_parameters, openai_tool_schema


def _props(func: Any) -> dict[str, Any]:
    return function_parameters(func)[0]["properties"]


@pytest.mark.parametrize(
    ("annotation", "schema"),
    [
        (str, {"type": "string"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (list, {"type": "array"}),
        (dict, {"type": "object"}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (list[list[str]], {"type": "array", "items": {"type": "array", "items": {"type": "string"}}}),
        (dict[str, float], {"type": "object", "additionalProperties": {"type": "number"}}),
        (dict[str, Any], {"type": "object"}),
        (Optional[int], {"type": "integer"}),  # noqa: UP045 - the old spelling must keep working
        (int | None, {"type": "integer"}),
        (
            list[dict[str, bool]] | None,
            {"type": "array", "items": {"type": "object", "additionalProperties": {"type": "boolean"}}},
        ),
    ],
    ids=lambda v: repr(v),
)
def test_every_supported_annotation(annotation: Any, schema: dict[str, Any]) -> None:
    def tool(value):  # type: ignore[no-untyped-def]
        return value

    tool.__annotations__ = {"value": annotation}
    assert _props(tool) == {"value": schema}


def test_no_hint_is_a_string_and_no_default_is_required() -> None:
    def tool(a, b=1, *, c: int, d: str = "x"):  # type: ignore[no-untyped-def]
        return a

    params, takes_context = function_parameters(tool)
    assert params["properties"]["a"] == {"type": "string"}
    assert params["properties"]["b"] == {"type": "string"}
    assert params["required"] == ["a", "c"]
    assert takes_context is False


def test_context_is_hidden_from_the_llm_but_recorded() -> None:
    def tool(query: str, context: dict | None = None) -> str:
        return query

    params, takes_context = function_parameters(tool)
    assert list(params["properties"]) == ["query"]
    assert takes_context is True


def test_google_docstring_gives_the_descriptions() -> None:
    def lookup(customer_id: str, limit: int = 10) -> list:
        """Find a customer's recent orders.

        Only orders of the last year are searched.

        Args:
            customer_id: The CRM id of the customer,
                as shown in the ticket.
            limit (int): At most this many orders.

        Returns:
            The orders, newest first.
        """
        return []

    schema, description, _ = openai_tool_schema("lookup", lookup)
    assert schema == {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Find a customer's recent orders.\n\nOnly orders of the last year are searched.",
            "parameters": {
                "type": "object",
                "properties": {
                    "customer_id": {
                        "type": "string",
                        "description": "The CRM id of the customer, as shown in the ticket.",
                    },
                    "limit": {"type": "integer", "description": "At most this many orders."},
                },
                "required": ["customer_id"],
            },
        },
    }
    assert description.startswith("Find a customer's")


def _varargs(*values: int) -> None: ...
def _kwargs(**values: int) -> None: ...
def _posonly(a: int, /) -> None: ...
def _union(a: int | str) -> None: ...
def _tuple(a: tuple[int, int]) -> None: ...
def _int_keys(a: dict[int, str]) -> None: ...


@pytest.mark.parametrize(
    ("func", "reason"),
    [
        (_varargs, "parameter 'values' is *args"),
        (_kwargs, "parameter 'values' is **kwargs"),
        (_posonly, "parameter 'a' is positional-only"),
        (_union, "parameter 'a': unions other than Optional[X] / X | None are not supported"),
        (_tuple, "parameter 'a': type tuple[int, int] is not supported"),
        (_int_keys, "parameter 'a': dict keys must be str"),
    ],
)
def test_signatures_an_llm_cannot_call_are_refused(func: Any, reason: str) -> None:
    with pytest.raises(ToolSchemaError, match=re.escape(reason)):
        function_parameters(func)


def _many(*values: int, a: int | str, b: tuple[int], **rest: int) -> None: ...


def test_every_reason_a_signature_is_refused_is_given_at_once() -> None:
    with pytest.raises(ToolSchemaError) as caught:
        function_parameters(_many)
    assert caught.value.problems == (
        "parameter 'values' is *args; tools take named parameters only",
        "parameter 'a': unions other than Optional[X] / X | None are not supported",
        "parameter 'b': type tuple[int] is not supported",
        "parameter 'rest' is **kwargs; tools take named parameters only",
    )
