"""Ferry's HTTP API (`ferry api`): run submission and queries over the run history.

    create_app(settings, services)   the FastAPI app; nothing global
    ApiSettings                      body size, rate limit, wait and page caps
    ApiServices                      project, history store, API store, request sink
    ApiStore, create_key             API keys (hashed) and submissions, in the history database

The API never runs agents: it validates, authorises, produces the request and reads the
history (docs/api.md).
"""

from app.api.app import create_app
from app.api.keys import NewKey, Principal, create_key
from app.api.services import ApiServices, RequestSink
from app.api.settings import ApiSettings
from app.api.store import ApiStore

__all__ = [
    "ApiServices",
    "ApiSettings",
    "ApiStore",
    "NewKey",
    "Principal",
    "RequestSink",
    "create_app",
    "create_key",
]
