"""``openshelf backend``: run the backend, or manage staff accounts.

    openshelf backend --site site.yaml [--host H] [--port P]
    openshelf backend --site site.yaml create-user --username NAME --role security|technician|admin

``create-user`` reads the password from stdin when it is not a terminal (one
line), otherwise it prompts twice without echo.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from backend.db.models import StaffRole


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", type=Path, required=True, help="the site file (site.yaml)")
    parser.add_argument("--host", help="listen address (default: backend.host from the site file)")
    parser.add_argument("--port", type=int, help="listen port (default: backend.port; 0 picks a free one)")
    parser.set_defaults(func=_run)
    actions = parser.add_subparsers(dest="backend_action", metavar="ACTION")
    create = actions.add_parser("create-user", help="add a staff account (password from stdin or a prompt)")
    create.add_argument("--username", required=True)
    create.add_argument("--role", required=True, choices=[role.value for role in StaffRole])
    create.set_defaults(func=_create_user)


def _run(args: argparse.Namespace) -> int:
    from backend.main import run_backend  # imported late: the CLI must start fast for --help

    return run_backend(args.site, host=args.host, port=args.port)


def _create_user(args: argparse.Namespace) -> int:
    from backend.config import load_backend_config
    from backend.db.engine import DatabaseError, make_engine, session_factory, upgrade_database
    from backend.users import UserError, create_user
    from openshelf.config import ConfigError

    password = _read_password()
    if password is None:
        return 2
    try:
        config = load_backend_config(args.site)
        engine = make_engine(config.database_url.get_secret_value())
        try:
            upgrade_database(engine)
            with session_factory(engine)() as session:
                create_user(session, args.username, password, args.role)
                session.commit()
        finally:
            engine.dispose()
    except (ConfigError, DatabaseError, UserError) as exc:
        print(f"openshelf backend create-user: {exc}", file=sys.stderr)
        return 1
    print(f"created {args.role} account {args.username}")
    return 0


def _read_password() -> str | None:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        print("openshelf backend create-user: the passwords differ", file=sys.stderr)
        return None
    return first
