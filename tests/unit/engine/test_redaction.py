from app.observability.redaction import REDACTED, Redactor


def test_env_secret_values_are_redacted_inside_text() -> None:
    redactor = Redactor.from_environment(
        {"OPENAI_API_KEY": "sk-live-abcdef123456", "DB_PASSWORD": "hunter2-long", "HOME": "/root/home-dir"}
    )
    text = redactor.text("called with sk-live-abcdef123456 and hunter2-long from /root/home-dir")
    assert "abcdef123456" not in text and "hunter2-long" not in text
    assert "/root/home-dir" in text  # not a secret: its name says nothing secret


def test_secret_keys_and_credential_shapes() -> None:
    redactor = Redactor()
    attrs = redactor.mapping(
        {
            "api_key": "anything",
            "headers": {"Authorization": "Bearer abc.def.ghi", "Accept": "json"},
            "llm.prompt_tokens": 12,
            "error.message": "401 for Authorization: Bearer zzzzzzzzzz",
        }
    )
    assert attrs["api_key"] == REDACTED
    assert attrs["headers"] == {"Authorization": REDACTED, "Accept": "json"}
    assert attrs["llm.prompt_tokens"] == 12
    assert "zzzzzzzzzz" not in attrs["error.message"]


def test_keys_are_judged_alike_the_first_time_and_after_many_others() -> None:
    """Which keys name secrets is remembered (a bounded memo): the answer never changes."""
    redactor = Redactor()
    for _round in range(2):
        assert redactor.mapping({"api_key": "x", "tokens": 3}) == {"api_key": REDACTED, "tokens": 3}
    many = {f"field_{i}": "v" for i in range(10_000)} | {"password": "p", "client_secret": "s"}
    redacted = redactor.mapping(many)
    assert redacted["password"] == redacted["client_secret"] == REDACTED and redacted["field_9999"] == "v"
    assert redactor.mapping({"session_token": "t"}) == {"session_token": REDACTED}
