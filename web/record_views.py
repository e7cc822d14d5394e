"""浏览次数: how often readers opened a merged record's page, counted by us.

The counts live in a small SQLite file of their own in the instance folder
(``record_views.sqlite3``, or the app's ``RECORD_VIEWS_PATH``), not in the ILL ledger: a
view is not a loan, and the ledger's schema belongs to its migrations. A merged record has
no id of its own that lasts beyond one search (its id is one of its sources', whichever
answered first), so a view is counted under every source record's id and the merged
record shows the largest of its sources' counts: the same book found again, in another
search or with fewer libraries, keeps its count.

Several threads and processes (``balis serve --threads``, several servers on one instance
folder) count at once: each call opens its own connection, takes SQLite's write lock with
``BEGIN IMMEDIATE`` and waits for it (``timeout``) instead of failing; WAL keeps readers
from blocking the writer. A counter that cannot be written (a read-only or full disk) is
logged and the page shows no count: a view count never breaks a record page.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from flask import current_app

logger = logging.getLogger(__name__)

FILE_NAME = "record_views.sqlite3"
LOCK_WAIT = 5.0  # seconds a writer waits for another process's write lock
EXTENSION = "record_views"

_SCHEMA = "CREATE TABLE IF NOT EXISTS views (source TEXT PRIMARY KEY, count INTEGER NOT NULL)"
_created = threading.Lock()


class RecordViews:
    """View counts per source record id, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        # isolation_level None: we say where transactions begin (BEGIN IMMEDIATE).
        conn = sqlite3.connect(self.path, timeout=LOCK_WAIT, isolation_level=None)
        if not self._ready:
            with _created:
                if not self._ready:
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute(_SCHEMA)
                    self._ready = True
        return conn

    def count_view(self, sources: Iterable[str]) -> int | None:
        """Count one view of the record made of ``sources``; its count afterwards (the
        largest of its sources'), or None when the counter could not be written."""
        ids = sorted(set(sources))
        if not ids:
            return None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    "INSERT INTO views (source, count) VALUES (?, 1) "
                    "ON CONFLICT(source) DO UPDATE SET count = count + 1",
                    [(i,) for i in ids])
                marks = ",".join("?" * len(ids))
                row = conn.execute(f"SELECT MAX(count) FROM views WHERE source IN ({marks})",
                                   ids).fetchone()
                conn.execute("COMMIT")
            finally:
                conn.close()
        except (sqlite3.Error, OSError) as exc:
            logger.warning("record views: cannot count a view in %s: %s", self.path, exc)
            return None
        return int(row[0]) if row and row[0] is not None else None

    def views(self, sources: Iterable[str]) -> int:
        """The record's count without counting a view (0 when never seen or unreadable)."""
        ids = sorted(set(sources))
        if not ids or not self.path.exists():
            return 0
        try:
            conn = self._connect()
            try:
                marks = ",".join("?" * len(ids))
                row = conn.execute(f"SELECT MAX(count) FROM views WHERE source IN ({marks})",
                                   ids).fetchone()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            logger.warning("record views: cannot read %s: %s", self.path, exc)
            return 0
        return int(row[0]) if row and row[0] is not None else 0


def record_views() -> RecordViews:
    """The app's counter, made on first use (nothing is opened when the app is built)."""
    app = current_app
    found = app.extensions.get(EXTENSION)
    if found is None:
        path = Path(app.config.get("RECORD_VIEWS_PATH")
                    or Path(app.instance_path) / FILE_NAME)
        found = app.extensions.setdefault(EXTENSION, RecordViews(path))
    return found
