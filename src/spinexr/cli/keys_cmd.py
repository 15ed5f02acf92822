"""``spinexr keys create NAME --role submit|read|admin`` / ``keys list`` / ``keys revoke NAME``.

Works on the service database (``--data-dir`` / ``$SPINEXR_DATABASE_URL`` as ``spinexr
serve``). ``create`` prints the key once; only its salted hash is stored.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spinexr.cli.serve_cmd import require_serve_extra
from spinexr.errors import ConfigError
from spinexr.service import Settings


DATA_DIR_HELP = "database folder (default $SPINEXR_DATA_DIR or ./spinexr-data)"


def add_parser(sub) -> None:
    p = sub.add_parser("keys", help="create, list and revoke API keys of the web service",
                       description="Manage API keys. Roles: submit (upload, read own results), "
                                   "read (read every result), admin (everything).")
    p.add_argument("--data-dir", type=Path, default=None, help=DATA_DIR_HELP)
    # --data-dir is accepted after the action too ("keys create NAME --data-dir DIR"); there
    # its default is "not given", so it never overrides one given before the action
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, help=DATA_DIR_HELP)
    keys = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = keys.add_parser("create", help="create a key and print it once", parents=[common])
    create.add_argument("name")
    create.add_argument("--role", required=True, choices=("submit", "read", "admin"))
    keys.add_parser("list", help="list keys (names, roles, dates; never the keys)",
                    parents=[common])
    revoke = keys.add_parser("revoke", help="revoke a key at once", parents=[common])
    revoke.add_argument("name")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    require_serve_extra()
    from spinexr.service.store import Store

    store = Store.open(Settings.from_env(data_dir=args.data_dir).db_url)
    try:
        return {"create": _create, "list": _list, "revoke": _revoke}[args.action](store, args)
    finally:
        store.close()


def _create(store, args) -> int:
    from spinexr.service.auth import create_key

    key = create_key(store, args.name, args.role)
    store.audit("cli", "key_create", "ok", subject=args.name)
    print(key)
    print(f"key {args.name!r} ({args.role}) created; it is shown only now, store it safely",
          file=sys.stderr)
    return 0


def _list(store, args) -> int:
    rows = store.keys()
    print(f"{'name':24s}  {'role':7s}  {'created':19s}  revoked")
    for k in rows:
        revoked = k.revoked.isoformat(sep=" ", timespec="seconds") if k.revoked else "-"
        print(f"{k.name:24s}  {k.role:7s}  {k.created.isoformat(sep=' ', timespec='seconds')}"
              f"  {revoked}")
    return 0


def _revoke(store, args) -> int:
    if not store.revoke_key(args.name):
        raise ConfigError(f"no active key called {args.name!r} ('spinexr keys list' shows them)",
                          "NAME")
    store.audit("cli", "key_revoke", "ok", subject=args.name)
    print(f"key {args.name!r} revoked")
    return 0
