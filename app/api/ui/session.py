"""The dashboard's session cookie: who logged in, signed so that nobody can make one up.

    ferry_ui = base64url(json{key_id, tenant, admin, csrf, exp}) "." base64url(hmac-sha256)

The cookie never holds the API key itself, only its id: every request checks that the
key is still live (`ferry keys revoke` ends its sessions at once) and takes tenant and
role from the key's row, not from the cookie. It is HttpOnly (no script reads it),
SameSite=Strict (no other site's page sends it) and Secure behind https. Each session
has its own CSRF token, which every state-changing form carries back.

The signing secret is `$FERRY_UI_SECRET` when set (several API instances behind one
address must share it), else random per process: a restart then logs everyone out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass

from app.api.keys import Principal
from app.api.store import ApiStore

COOKIE = "ferry_ui"
SECRET_ENV = "FERRY_UI_SECRET"
#: A session lasts a working day; logging in again is one paste of the key.
SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True)
class UiSession:
    """A logged-in browser: the key's principal and the token its forms must echo."""

    principal: Principal
    csrf: str

    @property
    def tenant_scope(self) -> str | None:
        """The tenant whose runs the pages show; None for an admin key (every tenant)."""
        return None if self.principal.admin else self.principal.tenant


class SessionSigner:
    def __init__(self, secret: bytes | None = None) -> None:
        configured = os.environ.get(SECRET_ENV, "")
        self._secret = secret or (configured.encode() if configured else secrets.token_bytes(32))

    def issue(self, principal: Principal, *, now: float | None = None) -> str:
        body = {
            "key_id": principal.key_id,
            "csrf": secrets.token_urlsafe(24),
            "exp": int((now if now is not None else time.time()) + SESSION_SECONDS),
        }
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}"

    def read(self, cookie: str | None, store: ApiStore, *, now: float | None = None) -> UiSession | None:
        """The session of a well-signed, unexpired cookie whose key is still live, else None."""
        if not cookie:
            return None
        payload, _, signature = cookie.partition(".")
        if not payload or not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            body = json.loads(_unb64(payload))
            key_id, csrf, expires = str(body["key_id"]), str(body["csrf"]), int(body["exp"])
        except (ValueError, KeyError, TypeError):
            return None
        if expires < (now if now is not None else time.time()):
            return None
        row = store.key(key_id)
        if row is None or row.revoked_at is not None:
            return None
        return UiSession(Principal(key_id=row.key_id, tenant=row.tenant, admin=row.admin), csrf)

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())


def csrf_matches(session: UiSession, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(session.csrf, submitted or "")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
