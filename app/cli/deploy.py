"""`ferry deploy`: publish the project as a new deployment and make it active, behind a gate.

From git by default: the tree at `--ref` (HEAD when omitted); a work tree with
uncommitted changes to deployed files is refused unless `--allow-dirty` (the deployment
then records that it was made from a dirty tree). The gate runs on exactly the files
being deployed: lint, then `ferry test` (unless `--skip-tests`). Exit 0 deployed and
active, 1 the gate failed (nothing published, the active deployment unchanged), 2 a
user error (dirty tree, unknown ref, too large, no broker). docs/deployments.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from app.cli.subparsers import Subparsers

if TYPE_CHECKING:
    from app.deploy.make import Candidate


def add_deploy_options(parser: argparse.ArgumentParser) -> None:
    """Where the deployments topic is (shared by deploy, deployments, activate, rollback)."""
    parser.add_argument("--broker", default=None, help="bootstrap servers (default: $FERRY_BROKER or the dev stack)")
    parser.add_argument(
        "--topic-prefix", default=os.environ.get("FERRY_TOPIC_PREFIX", ""), help="namespace of every topic"
    )
    parser.add_argument("--replication", type=int, default=None, help="replication of the deployments topic")


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "deploy",
        help="publish the project as a new active deployment (lint and tests first)",
        description="Publish the project (the git tree at --ref, HEAD by default) as a deployment on "
        "ferry.deployments and make it active; workers switch to it between runs. "
        "Exit 0 deployed, 1 the gate failed (nothing changed), 2 user error.",
    )
    parser.add_argument("--project", default=os.environ.get("FERRY_PROJECT", "."), help="project folder")
    parser.add_argument("--ref", default=None, help="git ref to deploy (default: HEAD)")
    parser.add_argument("--message", "-m", default=None, help="what this deployment is (default: the commit message)")
    parser.add_argument("--skip-tests", action="store_true", help="do not run `ferry test` (lint still runs)")
    parser.add_argument("--allow-dirty", action="store_true", help="deploy the files on disk, uncommitted changes too")
    parser.add_argument("--no-activate", action="store_true", help="publish only; `ferry activate` it later")
    add_deploy_options(parser)
    parser.set_defaults(handler=_deploy)


def _deploy(args: argparse.Namespace) -> int:
    from app.cli.broker import require_broker
    from app.deploy.gate import run_gate
    from app.deploy.make import build_candidate

    candidate = build_candidate(Path(args.project), ref=args.ref, message=args.message, allow_dirty=args.allow_dirty)
    bootstrap = require_broker(args.broker)  # before the gate: a missing broker is said at once
    print(f"ferry: deployment {candidate.version}: {_source(candidate)}", file=sys.stderr)
    for step in run_gate(candidate, skip_tests=args.skip_tests):
        mark = "ok" if step.ok else "FAILED"
        print(f"  {step.name}: {mark}", file=sys.stderr)
        for line in step.lines:
            print(f"    {line}", file=sys.stderr)
        if not step.ok:
            print(
                f"ferry: {step.name} failed: {candidate.version} not deployed; the active deployment is unchanged",
                file=sys.stderr,
            )
            return 1
    return asyncio.run(_publish(args, bootstrap, candidate))


def _source(candidate: Candidate) -> str:
    deployment = candidate.deployment
    parts = [f"{len(candidate.files)} files"]
    if deployment.git is not None:
        parts.append(f"commit {deployment.git.commit[:10]} ({deployment.git.ref})")
    if deployment.dirty:
        parts.append("with uncommitted changes")
    if deployment.message:
        parts.append(repr(deployment.message))
    return ", ".join(parts)


async def _publish(args: argparse.Namespace, bootstrap: str, candidate: Candidate) -> int:
    from app.deploy.log import DeploymentLog
    from app.streams.naming import TopicNames

    async with DeploymentLog(bootstrap, TopicNames(args.topic_prefix), args.replication) as deployments:
        book = await deployments.read()
        if candidate.version in book.deployments:
            print(f"ferry: {candidate.version} was deployed before (same files): not published again", file=sys.stderr)
        else:
            await deployments.publish(candidate.deployment)
        if args.no_activate:
            print(candidate.version)
            return 0
        if book.state.active == candidate.version and book.state.canary is None:
            print(f"ferry: {candidate.version} is already active", file=sys.stderr)
        else:
            await deployments.set_state(book.state.activate(candidate.version, reason="deploy"))
            was = f" (was {book.state.active})" if book.state.active else ""
            print(f"ferry: {candidate.version} active{was}", file=sys.stderr)
    print(candidate.version)
    return 0
