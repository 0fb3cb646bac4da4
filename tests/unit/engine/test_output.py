from app.engine.output import parse_json_answer, validate_answer

SCHEMA = {
    "type": "object",
    "properties": {"total": {"type": "number"}, "vendor": {"type": "string"}},
    "required": ["total", "vendor"],
}


def test_plain_and_fenced_json_are_accepted() -> None:
    assert parse_json_answer('{"a": 1}') == {"a": 1}
    assert parse_json_answer('Here you go:\n```json\n{"a": 2}\n```\nThanks') == {"a": 2}
    assert parse_json_answer('Result: {"a": 3} as asked') == {"a": 3}


def test_violation_names_the_path_and_reason() -> None:
    result = validate_answer('{"total": "12", "vendor": "ACME"}', SCHEMA)
    assert not result.ok
    assert "at total" in (result.error or "") and "number" in (result.error or "")


def test_missing_required_key_and_non_json() -> None:
    assert "vendor" in (validate_answer('{"total": 1}', SCHEMA).error or "")
    assert "not valid JSON" in (validate_answer("the total is 12", SCHEMA).error or "")
    assert validate_answer("", SCHEMA).error


def test_valid_answer_returns_the_value() -> None:
    result = validate_answer('```json\n{"total": 12.5, "vendor": "ACME"}\n```', SCHEMA)
    assert result.ok and result.value == {"total": 12.5, "vendor": "ACME"}
