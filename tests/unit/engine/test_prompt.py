import json

from app.engine.prompt import render_system_prompt, user_message_text


def test_known_placeholders_replaced_unknown_and_json_braces_kept() -> None:
    template = 'Serve {tenant} in {lang}. Unknown: {nope}. JSON: {"a": 1}'
    assert render_system_prompt(template, {"tenant": "acme", "lang": "fr"}) == (
        'Serve acme in fr. Unknown: {nope}. JSON: {"a": 1}'
    )


def test_plain_message_is_text_objects_are_json() -> None:
    assert user_message_text({"message": "hello"}) == "hello"
    assert json.loads(user_message_text({"order": 7, "items": [1]})) == {"order": 7, "items": [1]}


def test_files_are_listed_by_name_and_mime_never_their_bytes() -> None:
    data = "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K"
    text = user_message_text(
        {"message": "extract", "files": [{"name": "inv.pdf", "mime_type": "application/pdf", "data": data}]}
    )
    assert text.startswith("extract")
    assert "inv.pdf (application/pdf)" in text
    assert data not in text and data[:12] not in text
