"""Where the run history lives and how its projector behaves.

The store is an embedded SQLite file under the Ferry home unless `FERRY_DATABASE_URL`
names another database, so a laptop needs nothing and a team points every worker and
every `ferry runs` at one PostgreSQL. The Ferry home is the dev stack's
(`$FERRY_HOME`, else `.ferry/dev` in the working directory): `ferry dev up`, the worker
and the history commands then agree without configuration.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from app.contracts.errors import ConfigError

DATABASE_URL_ENV = "FERRY_DATABASE_URL"
HOME_ENV = "FERRY_HOME"
SQLITE_FILE = "history.db"

# Plain PostgreSQL URLs (as libpq, JDBC users and the dev stack write them) mean psycopg 3,
# the driver Ferry installs; SQLAlchemy would otherwise pick psycopg2.
_POSTGRES_SCHEMES = {"postgres": "postgresql+psycopg", "postgresql": "postgresql+psycopg"}
_SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def history_group(app_id: str) -> str:
    """The projectors' consumer group beside the workers' own (`app_id`): workers of one
    app share history work as they share runs, and two apps keep apart."""
    return f"{app_id}.history"


def ferry_home(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    configured = env.get(HOME_ENV)
    return Path(configured) if configured else Path.cwd() / ".ferry" / "dev"


def database_url(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> URL:
    """The history database: `explicit`, else `$FERRY_DATABASE_URL`, else `<home>/history.db`."""
    env = os.environ if environ is None else environ
    text = explicit or env.get(DATABASE_URL_ENV)
    if not text:
        return make_url(f"sqlite:///{(ferry_home(env) / SQLITE_FILE).absolute()}")
    scheme, sep, rest = text.partition("://")
    if sep and scheme in _POSTGRES_SCHEMES:
        text = f"{_POSTGRES_SCHEMES[scheme]}://{rest}"
    try:
        url = make_url(text)
    except ArgumentError:
        raise ConfigError(
            f"{DATABASE_URL_ENV} is not a database URL: {_masked_text(text)!r} — fix: use "
            "postgresql://user:password@host:5432/db or sqlite:////absolute/path/history.db"
        ) from None
    if url.get_backend_name() not in _SUPPORTED_BACKENDS:
        raise ConfigError(
            f"the run history supports SQLite and PostgreSQL, not {url.get_backend_name()!r} — fix: "
            f"set {DATABASE_URL_ENV} to a postgresql:// URL, or unset it for the embedded SQLite file"
        )
    return url


def describe(url: URL) -> str:
    """The URL as it may be printed: never with its password."""
    return url.render_as_string(hide_password=True)


def _masked_text(text: str) -> str:
    scheme, sep, rest = text.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not (sep and at):
        return text
    user = credentials.partition(":")[0]
    return f"{scheme}://{user}:***@{host}"


class HistorySettings(BaseModel):
    """What an operator tunes for the projector; defaults keep history lag well under a second."""

    model_config = ConfigDict(frozen=True)

    database_url: str | None = Field(
        default=None, description=f"None: ${DATABASE_URL_ENV}, else SQLite under the Ferry home."
    )
    group_id: str = Field(default="ferry.history", description="Consumer group: projectors sharing it share the work.")
    retention_days: int = Field(default=30, ge=1, description="Runs and spans older than this are pruned.")
    batch_size: int = Field(default=2000, ge=1, description="Records written to the store in one transaction.")
    poll_ms: int = Field(
        default=5000,  # app.kafka.IDLE_POLL_MS, not imported: commands that only read history skip aiokafka
        ge=1,
        description="How long one poll waits for records. A record or a stop ends the wait at once, "
        "so this bounds only an idle projector's wake-ups.",
    )
    linger_ms: int = Field(
        default=250,
        ge=0,
        description="After the first records of a batch, how long more are gathered before it is stored: "
        "fewer, larger batches cost a worker less CPU per run (each batch is a transaction and an offset "
        "commit) for at most this much more history lag.",
    )
    fetch_max_wait_ms: int = Field(
        default=500,
        ge=0,
        description="aiokafka fetch wait (see PITFALLS): how long the broker holds a fetch of partitions "
        "with nothing new. History tolerates this lag; each fetch the wait saves is CPU the worker keeps.",
    )
    prune_interval_s: float = Field(default=3600.0, gt=0, description="Time between two retention passes.")
    retry_backoff_s: float = Field(default=1.0, gt=0, description="First wait after a failed write (doubles to 30 s).")
    connect_timeout_s: float = Field(default=10.0, gt=0, description="How long start waits for the broker.")
    stop_timeout_s: float = Field(default=15.0, gt=0, description="On stop: time the batch in hand gets to be stored.")

    def url(self) -> URL:
        return database_url(self.database_url)
