"""API keys: stored only as a hash, compared in constant time, refused once revoked."""

from __future__ import annotations

import hashlib

from sqlalchemy import text

from app.api import ApiStore, create_key
from app.api.keys import authenticate, hash_secret, parse_token


def test_a_created_key_authenticates_as_its_tenant_and_only_its_hash_is_stored(history) -> None:
    store = ApiStore(history.engine)
    key = create_key(store, "acme")
    principal = authenticate(store, key.token)
    assert principal is not None and principal.tenant == "acme" and not principal.admin
    with history.engine.connect() as connection:
        stored = connection.execute(text("SELECT secret_sha256 FROM ferry_api_keys")).scalar_one()
        dump = "\n".join(str(row) for row in connection.execute(text("SELECT * FROM ferry_api_keys")))
    assert stored == hashlib.sha256(key.secret.encode()).hexdigest() == hash_secret(key.secret)
    assert key.secret not in dump


def test_wrong_secret_unknown_id_malformed_and_revoked_keys_are_refused(history) -> None:
    store = ApiStore(history.engine)
    key = create_key(store, "acme", admin=True)
    assert authenticate(store, key.token[:-1] + ("A" if key.token[-1] != "A" else "B")) is None
    assert authenticate(store, f"fy_0000000000000000.{key.secret}") is None
    for malformed in ("", "fy_", "fy_abc", key.secret, "Bearer " + key.token):
        assert authenticate(store, malformed) is None
    assert store.revoke_key(key.key_id) is True
    assert authenticate(store, key.token) is None
    assert store.revoke_key(key.key_id) is False


def test_parse_token_splits_id_and_secret() -> None:
    assert parse_token("fy_0123.s3cr-et_") == ("0123", "s3cr-et_")
    assert parse_token("xx_0123.secret") is None
