"""A throwaway PostgreSQL server from Debian's binaries (`initdb` + `postgres`), on loopback.

`initdb` and `postgres` refuse to run as root, so when Ferry runs as root the server runs
as the `postgres` system user that Debian's package creates, in a data dir it owns.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from app.devstack.errors import DevStackError
from app.devstack.ports import LOOPBACK, claim_port
from app.devstack.process import spawn, stop_process
from app.devstack.service import ServiceInfo, wait_until_ready
from app.devstack.toolchain import postgres_bin_dir

DATABASE = "ferry"
SUPERUSER = "ferry"


def _server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        raise DevStackError(
            "running as root and there is no `postgres` user to run PostgreSQL as",
            "apt-get install -y postgresql (it creates the user), or run as a normal user",
        ) from None
    return "postgres"


def _prepare_dir(path: Path, user: str | None) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if user is not None:
        shutil.chown(path, user, user)
        probe = subprocess.run(["test", "-w", str(path)], user=user, check=False)
        if probe.returncode != 0:
            raise DevStackError(
                f"user {user} cannot reach {path}",
                "choose a data dir whose parent folders others may enter (chmod o+x), e.g. under /tmp",
            )


def start_postgres(data_dir: Path, log_dir: Path, *, port: int | None = None, timeout: float = 60) -> ServiceInfo:
    bin_dir = postgres_bin_dir()
    user = _server_user()
    port = claim_port(port, "PostgreSQL", "--postgres-port")
    cluster = data_dir / "cluster"
    socket_dir = data_dir / "socket"
    _prepare_dir(data_dir, user)
    _prepare_dir(socket_dir, user)
    _prepare_dir(log_dir, user)
    if not (cluster / "PG_VERSION").exists():
        _initdb(bin_dir, cluster, user, log_dir)
    elif (cluster / "postmaster.pid").exists():
        _refuse_if_running(cluster)
    process = spawn(
        [
            str(bin_dir / "postgres"),
            "-D",
            str(cluster),
            "-p",
            str(port),
            "-h",
            LOOPBACK,
            "-k",
            str(socket_dir),
            "-c",
            "fsync=off",
            "-c",
            "max_connections=100",
        ],
        log_dir / "postgres.log",
        user=user,
    )
    wait_until_ready(
        "PostgreSQL",
        process.pid,
        log_dir / "postgres.log",
        lambda: _answers(bin_dir, port),
        timeout=timeout,
    )
    _create_database(bin_dir, port)
    _enable_pgvector(bin_dir, port)
    return ServiceInfo(
        name="postgres",
        address=f"postgresql://{SUPERUSER}@{LOOPBACK}:{port}/{DATABASE}",
        pid=process.pid,
        log_path=log_dir / "postgres.log",
        data_dir=data_dir,
    )


def _initdb(bin_dir: Path, cluster: Path, user: str | None, log_dir: Path) -> None:
    completed = subprocess.run(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(cluster),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        ],
        capture_output=True,
        text=True,
        user=user,
        group=user,
        check=False,
        cwd="/",
    )
    if completed.returncode != 0:
        (log_dir / "initdb.log").write_text(completed.stdout + completed.stderr)
        raise DevStackError(
            f"initdb failed in {cluster}: {completed.stderr.strip()[-300:]}",
            f"remove the stale data dir (rm -rf {cluster}) and start again",
        )


def _refuse_if_running(cluster: Path) -> None:
    first_line = (cluster / "postmaster.pid").read_text().splitlines()[:1]
    pid = int(first_line[0]) if first_line and first_line[0].isdigit() else 0
    if pid:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return  # stale pid file from a crash: postgres recovers by itself
        raise DevStackError(
            f"a PostgreSQL server (pid {pid}) already runs on {cluster}",
            "stop it first (ferry dev down), or choose another data dir",
        )


def _psql(bin_dir: Path, port: int, sql: str, database: str = "postgres") -> subprocess.CompletedProcess[str]:
    psql = shutil.which("psql") or str(bin_dir / "psql")
    return subprocess.run(
        [
            psql,
            "-h",
            LOOPBACK,
            "-p",
            str(port),
            "-U",
            SUPERUSER,
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-tAc",
            sql,
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PGCONNECT_TIMEOUT": "2"},
    )


def _answers(bin_dir: Path, port: int) -> bool:
    return _psql(bin_dir, port, "select 1").returncode == 0


def _create_database(bin_dir: Path, port: int) -> None:
    exists = _psql(bin_dir, port, f"select 1 from pg_database where datname = '{DATABASE}'")
    if exists.stdout.strip() != "1":
        created = _psql(bin_dir, port, f"create database {DATABASE}")
        if created.returncode != 0:
            raise DevStackError(
                f"could not create database {DATABASE}: {created.stderr.strip()}", "read the PostgreSQL log"
            )


def _enable_pgvector(bin_dir: Path, port: int) -> None:
    """pgvector in the database when this PostgreSQL has it (scripts/install-pgvector.sh), so
    the knowledge tools rank by embeddings in SQL. Not there, or failing: they rank in
    Python, which is no reason to refuse a dev stack."""
    _psql(
        bin_dir,
        port,
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') "
        "THEN CREATE EXTENSION IF NOT EXISTS vector; END IF; END $$",
        DATABASE,
    )


def query(address_port: int, sql: str) -> list[list[str]]:
    """Rows of a query as text, through psql: enough for tests and status checks."""
    completed = _psql(postgres_bin_dir(), address_port, sql, DATABASE)
    if completed.returncode != 0:
        raise DevStackError(f"query failed: {completed.stderr.strip()}", "check the SQL and the server log")
    return [line.split("|") for line in completed.stdout.splitlines() if line]


def stop_postgres(info: ServiceInfo) -> None:
    # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to leave.
    stop_process(info.pid, graceful_signal=signal.SIGINT, timeout=20)
