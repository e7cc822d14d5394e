"""``balis user add``: create an active ILL account for scripted setup (CONTRACTS section 1).

The database is ``--database URL``, else ``$DATABASE_URL``, else SQLite at
``instance/balis.sqlite3`` under the current directory; it is created or migrated first.
The password comes from a file (``-``: standard input) so it never shows in ``ps``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from broker.kernel.errors import UsageError

ROLES = ("reader", "staff", "admin")


def register(subparsers, common: argparse.ArgumentParser) -> None:
    user = subparsers.add_parser(
        "user", parents=[common], help="manage interlibrary-loan accounts",
        description="Manage interlibrary-loan accounts in the ILL database.")
    actions = user.add_subparsers(dest="user_action", metavar="ACTION", required=True)
    add = actions.add_parser(
        "add", parents=[common], help="create an active account",
        description="Create an active account. --library is a reader's home library or a "
                    "staff member's library (required for both). The database "
                    "(--database, else $DATABASE_URL, else instance/balis.sqlite3) is "
                    "created or migrated as needed.",
        epilog="Example: balis user add --login zhang --password-file pw.txt --role staff "
               "--library pku --name 张三")
    add.add_argument("--login", required=True, metavar="L")
    add.add_argument("--password-file", required=True, metavar="F",
                     help="file whose first line is the password ('-': standard input)")
    add.add_argument("--role", required=True, metavar="ROLE",
                     help="reader, staff or admin")
    add.add_argument("--library", metavar="ID", help="library id (see balis libraries)")
    add.add_argument("--name", metavar="N", help="the person's name (default: the login)")
    add.add_argument("--database", metavar="URL",
                     help="database URL (default: $DATABASE_URL, else "
                          "sqlite:///instance/balis.sqlite3)")
    add.set_defaults(handler=run_add)


def read_password(source: str) -> str:
    """The first line of ``source`` (a path, or - for stdin), without its line end."""
    try:
        if source == "-":
            text = sys.stdin.readline()
        else:
            with open(Path(source), encoding="utf-8") as f:
                text = f.readline()
    except FileNotFoundError:
        raise UsageError(f"{source}: no such password file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{source}: cannot read the password file: {exc}") from None
    password = text.rstrip("\r\n")
    if not password:
        raise UsageError(f"{source}: the password file is empty")
    return password


def run_add(args: argparse.Namespace) -> int:
    from balis.config_path import config_path
    from broker.kernel.config import load
    from broker.kernel.errors import ValidationFailed
    from ill.db import Database
    from ill.service import IllService

    if args.role not in ROLES:
        raise UsageError(f"--role must be reader, staff or admin, not {args.role!r}")
    if args.role in ("reader", "staff") and not args.library:
        raise UsageError(f"--library is required for a {args.role} account")
    password = read_password(args.password_file)
    consortium = load(config_path(args))
    if args.library and args.library not in {lib.id for lib in consortium.libraries}:
        raise UsageError(f"--library: no library {args.library!r} in "
                         f"{consortium.path or 'the configuration'} (see balis libraries)")
    db = Database(args.database)
    try:
        with db.session() as session:
            user = IllService(consortium).create_user(
                session, login=args.login, password=password, role=args.role,
                library=args.library, name=args.name or "")
    except ValidationFailed as exc:
        raise UsageError("; ".join(f"--{field.replace('_', '-')}: {message}"
                                   for field, message in exc.errors_en.items())) from None
    finally:
        db.dispose()
    where = f" at {user.library}" if user.library else ""
    print(f"created {user.role} account {user.login}{where} "
          f"in {_shown(db.url)}")
    return 0


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
