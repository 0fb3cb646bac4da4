"""`ferry keys create|list|revoke`: the API keys `ferry api` accepts, per tenant.

A key is printed once, at creation; the store keeps only the sha256 of its secret, in
the run-history database (`--database-url`, `$FERRY_DATABASE_URL`, else the SQLite file
under the Ferry home), which is where `ferry api` looks for it.
"""

from __future__ import annotations

import argparse
import sys

from app.cli.history import add_database_option, open_store
from app.cli.subparsers import Subparsers


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("keys", help="API keys of `ferry api`: create, list, revoke")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    create = actions.add_parser("create", help="create a key for a tenant and print it (shown only once)")
    create.add_argument("--tenant", required=True, help="the tenant whose runs the key submits and reads")
    create.add_argument("--admin", action="store_true", help="the key reads every tenant's runs")
    add_database_option(create)
    create.set_defaults(handler=_create)

    listing = actions.add_parser("list", help="list keys (ids, tenants, state; never the secrets)")
    add_database_option(listing)
    listing.set_defaults(handler=_list)

    revoke = actions.add_parser("revoke", help="revoke a key by its id: it is refused from then on")
    revoke.add_argument("key_id", metavar="ID")
    add_database_option(revoke)
    revoke.set_defaults(handler=_revoke)


def _create(args: argparse.Namespace) -> int:
    from app.api import ApiStore, create_key

    if not args.tenant.strip():
        print("ferry: error: --tenant must not be empty", file=sys.stderr)
        return 2
    history = open_store(args, create=True)
    try:
        key = create_key(ApiStore(history.engine), args.tenant.strip(), admin=args.admin)
    finally:
        history.close()
    print(key.token)
    role = " (admin)" if key.admin else ""
    print(f"ferry: key {key.key_id} for tenant {key.tenant!r}{role}; it is not shown again", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    from app.api import ApiStore

    history = open_store(args, create=True)
    try:
        rows = ApiStore(history.engine).keys()
    finally:
        history.close()
    if not rows:
        print("no API keys (create one: ferry keys create --tenant NAME)")
        return 0
    print(f"{'ID':<18} {'TENANT':<20} {'ROLE':<7} {'CREATED':<20} REVOKED")
    for row in rows:
        revoked = row.revoked_at.strftime("%Y-%m-%d %H:%M:%S") if row.revoked_at else "-"
        role = "admin" if row.admin else "tenant"
        print(f"{row.key_id:<18} {row.tenant:<20} {role:<7} {row.created_at:%Y-%m-%d %H:%M:%S}  {revoked}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from app.api import ApiStore

    history = open_store(args, create=True)
    try:
        revoked = ApiStore(history.engine).revoke_key(args.key_id)
    finally:
        history.close()
    if not revoked:
        print(f"ferry: error: no live API key {args.key_id!r} (ferry keys list shows them)", file=sys.stderr)
        return 2
    print(f"revoked {args.key_id}")
    return 0
