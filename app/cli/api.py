"""`ferry api [--host --port]`: the HTTP API on uvicorn (docs/api.md).

It loads the project (the agents it accepts runs for), opens the run-history store
(where it reads runs and keeps API keys) and produces requests to the broker with
acks=all. It never runs an agent: `ferry worker` does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING

from app.cli.history import add_database_option
from app.cli.subparsers import Subparsers
from app.cli.worker import configure_logging, resolve_broker

if TYPE_CHECKING:
    from app.api import ApiSettings
    from app.observability.history import HistoryStore
    from app.project.project import Project

DEFAULT_PORT = 8000


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("api", help="serve the HTTP API: submit runs, read results and traces")
    parser.add_argument("--host", default=os.environ.get("FERRY_API_HOST", "0.0.0.0"), help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("FERRY_API_PORT", DEFAULT_PORT)), help="port to listen on"
    )
    parser.add_argument("--max-body-bytes", type=int, default=None, help="larger request bodies get 413")
    parser.add_argument("--rate", type=float, default=None, help="requests per second per API key")
    parser.add_argument("--burst", type=int, default=None, help="requests one key may make at once")
    parser.add_argument("--project", default=os.environ.get("FERRY_PROJECT", "."), help="project folder")
    parser.add_argument("--broker", default=None, help="bootstrap servers (default: $FERRY_BROKER or the dev stack)")
    parser.add_argument(
        "--topic-prefix", default=os.environ.get("FERRY_TOPIC_PREFIX", ""), help="namespace of every topic"
    )
    add_database_option(parser)
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from app.api import ApiSettings
    from app.cli.history import open_store
    from app.project import load_project

    configure_logging()
    project = load_project(args.project)
    bootstrap = resolve_broker(args)
    overrides = {
        name: value
        for name, value in (
            ("max_body_bytes", args.max_body_bytes),
            ("rate_per_second", args.rate),
            ("rate_burst", args.burst),
        )
        if value is not None
    }
    settings = ApiSettings(**overrides)
    history = open_store(args, create=True)
    try:
        asyncio.run(_run(args, settings, project, history, bootstrap))
    finally:
        history.close()
    return 0


async def _run(
    args: argparse.Namespace, settings: ApiSettings, project: Project, history: HistoryStore, bootstrap: str
) -> None:
    """The producer is started before the server, so an unreachable broker is one line
    (exit 2) rather than uvicorn's startup traceback; the app's lifespan then reuses it."""
    import uvicorn

    from app.api import ApiServices, ApiStore, create_app
    from app.api.services import Broker
    from app.streams import ReplyInbox, Submitter, TopicNames
    from app.streams.approvals import Approvals

    names = TopicNames(args.topic_prefix)
    inbox = ReplyInbox(bootstrap, names, instance_name())
    approvals = Approvals(bootstrap, project, names)
    # No linger: a client waits on each request; concurrent ones still share a batch in flight.
    async with Submitter(bootstrap, project, names, linger_ms=0) as submitter:

        @asynccontextmanager
        async def already_open() -> AsyncIterator[Submitter]:
            yield submitter

        await inbox.start()
        await approvals.start()
        try:
            services = ApiServices(
                project=project,
                history=history,
                store=ApiStore(history.engine),
                open_sink=already_open,
                replies=inbox,
                approvals=approvals,
                broker=Broker(bootstrap, names),
            )
            config = uvicorn.Config(create_app(settings, services), host=args.host, port=args.port, log_level="info")
            await _server_class()(config).serve()
        finally:
            await approvals.stop()
            await inbox.stop()


def instance_name() -> str:
    """This API process's name among its peers: its reply topic is named after it."""
    host = re.sub(r"[^A-Za-z0-9_-]+", "-", socket.gethostname())[:40] or "api"
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, stopping on SIGTERM / SIGINT as the other long-running `ferry`
        commands do: a graceful shutdown, then exit 0 (uvicorn re-raises the signal)."""

        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._on_signal)
            try:
                yield
            finally:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)

        def _on_signal(self) -> None:
            if self.should_exit:
                self.force_exit = True  # a second signal: stop waiting for open connections
            self.should_exit = True

    return Server
