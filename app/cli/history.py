"""`ferry history project|prune|status`: the run-history store outside a worker.

`ferry worker` runs the projector by default; `ferry history project` runs it alone
(a dedicated history process, or a rebuild: a new `--group` reads the topics from the
start into an empty store). The helpers here are shared by `ferry runs`, `ferry trace`
and `ferry usage`, and `add_history_options` / `projector_from_args` are what
`ferry worker` calls to run the projector beside its agents.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import TYPE_CHECKING

from app.cli.broker import broker_address
from app.cli.history_format import positive_int
from app.cli.subparsers import Subparsers

if TYPE_CHECKING:
    from app.observability.history import HistoryStore
    from app.observability.history.projector import HistoryProjector, HistoryTopics


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("history", help="the run-history store: run its projector, prune it, locate it")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    project = actions.add_parser(
        "project", help="consume runs.results and runs.traces into the history store until stopped"
    )
    project.add_argument("--broker", default=None, help="bootstrap servers (default: $FERRY_BROKER or the dev stack)")
    project.add_argument(
        "--topic-prefix", default=os.environ.get("FERRY_TOPIC_PREFIX", ""), help="namespace of every topic"
    )
    project.add_argument(
        "--app-id",
        default=os.environ.get("FERRY_APP_ID", "ferry"),
        help="the workers' app id; the projectors' consumer group is <app-id>.history",
    )
    project.add_argument("--group", default=None, help="consumer group (default: <app-id>.history)")
    project.add_argument("--project", default=os.environ.get("FERRY_PROJECT", "."), help="project folder (ferry.yaml)")
    project.add_argument(
        "--retention-days", type=positive_int, default=None, help="override ferry.yaml history.retention_days"
    )
    add_database_option(project)
    project.set_defaults(handler=_project)

    prune = actions.add_parser("prune", help="delete runs and spans older than the retention now")
    prune.add_argument("--project", default=os.environ.get("FERRY_PROJECT", "."), help="project folder (ferry.yaml)")
    prune.add_argument(
        "--retention-days", type=positive_int, default=None, help="override ferry.yaml history.retention_days"
    )
    add_database_option(prune)
    prune.set_defaults(handler=_prune)

    status = actions.add_parser("status", help="where the history store is and how much it holds")
    add_database_option(status)
    status.set_defaults(handler=_status)


# -- shared by the history commands ------------------------------------------------------


def add_database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        default=None,
        help="history database (default: $FERRY_DATABASE_URL, else history.db in $FERRY_HOME or .ferry/dev)",
    )


def open_store(args: argparse.Namespace, *, create: bool = False) -> HistoryStore:
    """The store the command reads. A missing SQLite file, a bad URL or an unreachable
    database raise `ConfigError`: one line, exit 2."""
    from app.observability.history import HistoryStore

    return HistoryStore.open(args.database_url, create=create)


# -- for `ferry worker` -----------------------------------------------------------------


def add_history_options(parser: argparse.ArgumentParser) -> None:
    """`--no-history` and `--database-url` for a command that runs the projector."""
    parser.add_argument("--no-history", action="store_true", help="do not record runs in the history store")
    add_database_option(parser)


def projector_from_args(
    args: argparse.Namespace, bootstrap: str, topics: HistoryTopics, app_id: str, retention_days: int
) -> HistoryProjector | None:
    """The projector `ferry worker` starts beside its agents, None with `--no-history`."""
    if getattr(args, "no_history", False):
        return None
    from app.observability.history import HistorySettings
    from app.observability.history.projector import HistoryProjector
    from app.observability.history.settings import history_group

    settings = HistorySettings(
        database_url=getattr(args, "database_url", None),
        group_id=history_group(app_id),
        retention_days=retention_days,
    )
    return HistoryProjector(bootstrap, topics, settings)


# -- the sub-commands ---------------------------------------------------------------------


def _retention(args: argparse.Namespace) -> int:
    """`--retention-days`, else ferry.yaml's `history.retention_days` (ferry.yaml alone is read)."""
    from pathlib import Path

    from app.project.files import ProjectFiles
    from app.project.problems import Problems, ProjectError
    from app.project.project_parts import load_config

    if args.retention_days is not None:
        return int(args.retention_days)
    problems = Problems()
    config = load_config(ProjectFiles(Path(args.project), problems), problems)
    if problems.has_errors:
        raise ProjectError(problems.sorted())
    return config.history.retention_days


def _project(args: argparse.Namespace) -> int:
    from app.cli.worker import configure_logging
    from app.contracts.errors import ConfigError

    configure_logging()
    bootstrap = broker_address(args.broker)
    if bootstrap is None:
        raise ConfigError(
            "no Kafka broker configured (none given, FERRY_BROKER unset, no dev stack running)"
            " — fix: pass --broker HOST:PORT, set FERRY_BROKER, or run `ferry dev up`"
        )
    return asyncio.run(_run_projector(args, bootstrap, _retention(args)))


async def _run_projector(args: argparse.Namespace, bootstrap: str, retention_days: int) -> int:
    from app.observability.history import HistorySettings
    from app.observability.history.projector import HistoryProjector
    from app.observability.history.settings import history_group
    from app.streams.naming import TopicNames

    settings = HistorySettings(
        database_url=args.database_url,
        group_id=args.group or history_group(args.app_id),
        retention_days=retention_days,
    )
    projector = HistoryProjector(bootstrap, TopicNames(args.topic_prefix), settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await projector.start()
    try:
        store = projector.store.describe() if projector.store else "?"
        print(
            f"ferry: history projector (group {settings.group_id}, retention {retention_days} d) "
            f"consuming {projector.results_topic}, {projector.traces_topic} on {bootstrap} into {store}",
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()
    finally:
        await projector.stop()
    stats = projector.stats
    print(f"ferry: history projector stopped: {stats.runs} results and {stats.spans} spans stored", file=sys.stderr)
    return 0


def _prune(args: argparse.Namespace) -> int:
    from app.contracts.runs import utc_now
    from app.observability.history.retention import retention_cutoff

    days = _retention(args)
    store = open_store(args)
    try:
        report = store.prune(retention_cutoff(utc_now(), days))
    finally:
        store.close()
    print(f"pruned {report.runs} runs and {report.spans} spans older than {days} days")
    return 0


def _status(args: argparse.Namespace) -> int:
    from app.observability.history.migrate import current_revision

    store = open_store(args)
    try:
        runs, spans = store.counts()
        with store.engine.connect() as connection:
            revision = current_revision(connection)
        print(f"store     {store.describe()}")
        print(f"schema    revision {revision}")
        print(f"runs      {runs:,}")
        print(f"spans     {spans:,}")
    finally:
        store.close()
    return 0
