"""API keys: `fy_<id>.<secret>`, of which only the sha256 of the secret is stored.

The id is public (it names the key in `ferry keys list` and logs); the secret has 256
bits of randomness, so one sha256 is as strong as a slow hash would be and costs
nothing per request. Comparison is constant-time, also when the id is unknown.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from app.api.store import ApiStore

PREFIX = "fy_"
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: the key's id, its tenant and whether it sees every tenant."""

    key_id: str
    tenant: str
    admin: bool = False

    def may_see(self, tenant: str) -> bool:
        return self.admin or tenant == self.tenant


@dataclass(frozen=True)
class NewKey:
    key_id: str
    tenant: str
    admin: bool
    secret: str

    @property
    def token(self) -> str:
        """What the client sends as `Authorization: Bearer …`; shown once, never stored."""
        return f"{PREFIX}{self.key_id}.{self.secret}"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_token(token: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed token, else None."""
    if not token.startswith(PREFIX):
        return None
    key_id, dot, secret = token[len(PREFIX) :].partition(".")
    if not (dot and key_id and secret):
        return None
    return key_id, secret


def create_key(store: ApiStore, tenant: str, *, admin: bool = False) -> NewKey:
    key = NewKey(key_id=secrets.token_hex(8), tenant=tenant, admin=admin, secret=secrets.token_urlsafe(32))
    store.add_key(key.key_id, tenant, hash_secret(key.secret), admin=admin)
    return key


def authenticate(store: ApiStore, token: str) -> Principal | None:
    """The principal of a live key, else None (unknown, malformed, wrong secret or revoked)."""
    parsed = parse_token(token)
    key_id, secret = parsed if parsed is not None else ("", "")
    row = store.key(key_id) if key_id else None
    expected = row.secret_sha256 if row is not None else _DUMMY_HASH
    matches = hmac.compare_digest(hash_secret(secret), expected)
    if row is None or not matches or row.revoked_at is not None:
        return None
    return Principal(key_id=row.key_id, tenant=row.tenant, admin=row.admin)
