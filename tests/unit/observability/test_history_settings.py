"""Which database the history uses, and what may be printed about it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.contracts.errors import ConfigError
from app.kafka import IDLE_POLL_MS
from app.observability.history import database_url
from app.observability.history.settings import describe, history_group

ROOT = Path(__file__).resolve().parents[3]


def test_default_is_sqlite_under_the_ferry_home(tmp_path: Path) -> None:
    url = database_url(environ={"FERRY_HOME": str(tmp_path)})
    assert url.get_backend_name() == "sqlite" and url.database == str(tmp_path / "history.db")


def test_without_a_home_the_dev_stack_folder_of_the_working_directory_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert database_url(environ={}).database == str(tmp_path / ".ferry" / "dev" / "history.db")


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_plain_postgres_urls_use_psycopg_3(scheme: str) -> None:
    url = database_url(environ={"FERRY_DATABASE_URL": f"{scheme}://ferry:pw@db:5432/ferry"})
    assert url.drivername == "postgresql+psycopg" and url.host == "db" and url.database == "ferry"


def test_an_explicit_url_wins_over_the_environment(tmp_path: Path) -> None:
    url = database_url(f"sqlite:///{tmp_path}/x.db", environ={"FERRY_DATABASE_URL": "postgresql://h/db"})
    assert url.database == f"{tmp_path}/x.db"


def test_a_password_is_never_printed() -> None:
    url = database_url(environ={"FERRY_DATABASE_URL": "postgresql://ferry:hunter2-secret@db/ferry"})
    assert "hunter2-secret" not in describe(url) and "db/ferry" in describe(url)


@pytest.mark.parametrize(
    ("text", "message"),
    [("mysql://u:pw@h/db", "SQLite and PostgreSQL"), ("not a url at all", "not a database URL")],
)
def test_unsupported_or_broken_urls_are_config_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        database_url(environ={"FERRY_DATABASE_URL": text})
    assert "pw@" not in str(caught.value)


def test_projectors_of_one_app_share_a_group_beside_the_workers() -> None:
    assert history_group("ferry") == "ferry.history"


def test_the_projector_polls_as_long_as_every_other_long_poll_loop_without_importing_aiokafka() -> None:
    # The settings spell the value out: commands that only read the history never load aiokafka.
    code = "import sys, app.observability.history.settings as s; print(s.HistorySettings().poll_ms, 'aiokafka' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.split()
    assert out == [str(IDLE_POLL_MS), "False"]
