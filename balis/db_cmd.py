"""``balis db upgrade`` / ``balis db current``: the ILL database's schema (CONTRACTS section 1).

The database is ``--database URL``, else ``$DATABASE_URL``, else the instance's SQLite file
(``ill.db.database_url``: the one ``balis serve`` opens). ``upgrade`` migrates to the newest
revision under the migration lock (``ill.db.upgrade``), so running it on several machines
at once, or while servers start, migrates once. Exit status 0, 1 when the database cannot
be reached or the upgrade fails: one line on stderr, the URL's password masked.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers, common: argparse.ArgumentParser) -> None:
    db = subparsers.add_parser(
        "db", parents=[common], help="the interlibrary-loan database's schema",
        description="Show or upgrade the schema of the ILL database (--database, else "
                    "$DATABASE_URL, else the instance's balis.sqlite3).")
    actions = db.add_subparsers(dest="db_action", metavar="ACTION", required=True)
    upgrade = actions.add_parser(
        "upgrade", parents=[common], help="migrate the database to this version's schema",
        description="Create or migrate the ILL database to this version's newest revision, "
                    "once: run it before a rollout. Safe while other processes start or "
                    "upgrade at the same time (they wait for one migration, then find the "
                    "schema current).",
        epilog="Example: DATABASE_URL=postgresql://balis@db/balis balis db upgrade")
    current = actions.add_parser(
        "current", parents=[common], help="print the database's revision",
        description="Print the ILL database's revision and whether it is this version's "
                    "newest (head), behind it, or empty. Changes nothing.")
    for action, handler in ((upgrade, run_upgrade), (current, run_current)):
        action.add_argument("--database", metavar="URL",
                            help="database URL (default: $DATABASE_URL, else "
                                 "sqlite:///instance/balis.sqlite3)")
        action.add_argument("--json", action="store_true", help="print one JSON object")
        action.set_defaults(handler=handler)


def run_current(args: argparse.Namespace) -> int:
    from ill.db import SchemaStatus, head_revision, schema_status

    def work(engine) -> tuple[str, dict]:
        status = (schema_status(engine) if engine is not None
                  else SchemaStatus(None, head_revision(), "empty"))
        return status.describe(), {"revision": status.current, "head": status.head,
                                   "state": status.state}

    return _run(args, work, create=False)


def run_upgrade(args: argparse.Namespace) -> int:
    from ill.db import upgrade

    def work(engine) -> tuple[str, dict]:
        done = upgrade(engine)
        return done.describe(), {"before": done.before, "after": done.after,
                                 "upgraded": done.changed}

    return _run(args, work, create=True)


def _run(args: argparse.Namespace, work, *, create: bool) -> int:
    """Open the database, ``work`` on it, print its answer; a failure is one line, exit 1.

    Without ``create`` a SQLite file that does not exist is not made (opening would make it
    and its folder): ``work`` gets None, an empty database."""
    from broker.kernel.errors import BalisError
    from ill.db import database_url, make_engine, shown_url

    url = database_url(args.database)
    engine = None
    try:
        if create or not _missing_sqlite_file(url):
            engine = make_engine(url)
        text, fields = work(engine)
    except (BalisError, OSError) as exc:  # OSError: a SQLite folder we cannot make
        print(f"balis db: {exc}", file=sys.stderr)
        return 1
    finally:
        if engine is not None:
            engine.dispose()
    if args.json:
        print(json.dumps({"database": shown_url(url), **fields}, ensure_ascii=False))
    else:
        print(text)
    return 0


def _missing_sqlite_file(url: str) -> bool:
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # make_engine says what is wrong with it
        return False
    return (parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:")
            and not Path(parsed.database).exists())
