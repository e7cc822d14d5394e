"""What the ILL blueprints share: who is logged in, the database, the service, errors.

``init_app`` (called by ``web.create_app``, which then registers the blueprints that use
it) installs the ILL service and the templates' ILL globals. The blueprints:

- ``web.auth``: log in and out, register, profile (session cookies), API tokens;
- ``web.ill_pages``: the reader's request form, requests, timeline, messages, fines, and
  the staff's queues, actions, registrations, pull slips and statistics;
- ``web.ill_api``: the ILL JSON API of CONTRACTS section 6 (Bearer tokens);
- ``web.ill_admin``: closures and announcements.

The database is ``DATABASE_URL`` (app config or environment), else SQLite in the instance
folder; it is opened on first use (``balis serve``: at start) and its schema checked then:
migrated if behind, unless ``ILL_AUTO_MIGRATE`` is false (else $BALIS_AUTO_MIGRATE=0) and it
refuses. ``ILL_SETTINGS`` (an ``ill.core.IllSettings``)
and ``ILL_CLOCK`` (a function giving an aware datetime) in the app config replace the
consortium-wide ILL policy and the clock (tests: a cheap password hash, a clock they move).
Everything here is a thin call onto ``ill.service.IllService``; its errors map to HTTP
statuses in one place (``status_of``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from flask import Flask, abort, current_app, flash, g, redirect, request, session
from sqlalchemy.orm import Session

from broker.kernel.errors import (
    AuthenticationFailed,
    BalisError,
    Conflict,
    Forbidden,
    NotFound,
    Throttled,
    ValidationFailed,
)
from ill.calendar import BEIJING
from ill.db import Database, DatabaseUnavailable, SchemaError, auto_migrate, ensure_schema
from ill.service import IllService
from ill.values import Actor
from marc.model import MATERIAL_TYPES
from web.i18n import translate

logger = logging.getLogger(__name__)

USER_KEY = "user_id"  # the flask session key of the logged-in account
SWEEP_SECONDS = 3600  # how often loans past their due date are marked overdue


class IllWeb:
    """The ILL service and its database, shared by every request of the app."""

    def __init__(self, app: Flask, service: IllService) -> None:
        self.service = service
        self._url = (app.config.get("DATABASE_URL") or os.environ.get("DATABASE_URL")
                     or f"sqlite:///{Path(app.instance_path) / 'balis.sqlite3'}")
        self._auto_migrate = auto_migrate(app.config.get("ILL_AUTO_MIGRATE"))
        self._db: Database | None = None
        self._lock = threading.Lock()
        self._swept = -float(SWEEP_SECONDS)

    @property
    def db(self) -> Database:
        if self._db is None:
            with self._lock:
                if self._db is None:
                    self._db = self._open()
        return self._db

    def _open(self) -> Database:
        """The database, its schema checked once: behind or empty, migrated under the
        migration lock (so processes starting at once migrate once) unless
        ILL_AUTO_MIGRATE / $BALIS_AUTO_MIGRATE says not to; then, or when the database is
        newer than the code, SchemaError with the sentence an operator acts on."""
        database = Database(self._url, migrate_now=False)
        try:
            done = ensure_schema(database.engine, auto=self._auto_migrate)
        except BaseException:
            database.dispose()
            raise
        if done is not None and done.changed:
            logger.info("ILL database %s", done.describe())
        return database

    def check_at_start(self) -> None:
        """``balis serve``: open and check the database now. A schema that does not fit
        raises SchemaError, so the server refuses to start; an unreachable database does
        not stop it (catalogue search needs none): logins and ILL fail until it answers,
        it is opened and checked again on first use, and /api/health/ready reports it."""
        try:
            self.db  # noqa: B018 - opening is the point
        except DatabaseUnavailable as exc:
            logger.warning("%s; starting anyway: catalogue search works, logins and "
                           "interlibrary loan wait for the database", exc)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        try:
            database = self.db
        except (DatabaseUnavailable, SchemaError) as exc:
            # Expected while the database is down (or not migrated): one line in the log,
            # not a traceback per request, and the reader is told to come back (503).
            logger.warning("%s", exc)
            abort(503, description=translate("ill.db_unavailable"))
        with database.session() as s:
            yield s

    def sweep_if_due(self) -> None:
        """Mark loans past their due date overdue, at most once per SWEEP_SECONDS.

        Run from staff pages and the API's request lists, so queues and readers see the
        overdue state without a separate scheduler; a failure is logged, not shown."""
        now = time.monotonic()
        with self._lock:
            if now - self._swept < SWEEP_SECONDS:
                return
            self._swept = now
        try:
            with self.session() as s:
                marked = self.service.sweep_overdue(s)
            if marked:
                logger.info("marked %d loans overdue", marked)
        except Exception:
            logger.exception("the overdue sweep failed; it runs again in %d s", SWEEP_SECONDS)

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()


def ill() -> IllWeb:
    return current_app.extensions["ill"]


def service() -> IllService:
    return ill().service


def current_actor() -> Actor | None:
    """The logged-in account (cookie session or Bearer token), once per request."""
    if "actor" in g:
        return g.actor
    actor = None
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer ") and USER_KEY not in session:
        g.actor = None  # nobody logged in: the catalogue pages need no database
        return None
    with ill().session() as s:
        if header.startswith("Bearer "):
            with contextlib.suppress(AuthenticationFailed, NotFound):
                actor = service().token_actor(s, header[len("Bearer "):].strip())
        elif USER_KEY in session:
            try:
                actor = service().actor(s, session[USER_KEY])
            except (AuthenticationFailed, NotFound, Forbidden):
                session.pop(USER_KEY, None)  # disabled or deleted since: logged out
    g.actor = actor
    return actor


def status_of(exc: Exception) -> int:
    """The HTTP status of a service-layer error."""
    for kind, status in ((ValidationFailed, 422), (Throttled, 429),
                         (AuthenticationFailed, 401), (Forbidden, 403), (NotFound, 404),
                         (Conflict, 409)):
        if isinstance(exc, kind):
            return status
    return 500


def require_staff() -> Actor:
    """The logged-in staff member or admin; 403 for anyone else."""
    actor = current_actor()
    if actor is None or actor.role not in ("staff", "admin"):
        abort(403, description=translate("staff_only"))
    return actor


def refused(exc: BalisError, target: str):
    """A refused action: its reason as a flash message, back where the person was. A bug
    (not a deliberate refusal) is raised again, to be logged as one."""
    if status_of(exc) == 500:
        raise exc
    message = "; ".join(exc.errors.values()) if isinstance(exc, ValidationFailed) else str(exc)
    flash(message, "error")
    return redirect(target)


def home_contact() -> dict | None:
    """The ILL desk of the logged-in reader's (or staff member's) library."""
    actor = current_actor()
    if actor is None:
        return None
    contact = service().home_contact(actor)
    return contact if contact["library"] else None  # the admin has no library


def init_app(app: Flask) -> None:
    consortium = app.extensions["balis"].consortium
    clock = app.config.get("ILL_CLOCK")
    ill_service = IllService(consortium, app.config.get("ILL_SETTINGS"),
                             **({"clock": clock} if clock else {}))
    app.extensions["ill"] = ill_web = IllWeb(app, ill_service)
    app.extensions["balis"].on_close(ill_web.close)

    @app.template_filter("beijing")
    def beijing(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        """A stored (UTC) instant as the consortium's readers and staff read clocks."""
        return moment.astimezone(BEIJING).strftime(fmt) if moment else ""

    @app.context_processor
    def ill_globals() -> dict:
        return {"actor": current_actor(), "home_contact": home_contact(),
                "workflow": service().workflow, "material_types": MATERIAL_TYPES}


def demo_accounts(app: Flask) -> str:
    """Create the demo's accounts in the app's database; the lines ``balis demo`` prints."""
    from ill import demo

    web = app.extensions["ill"]
    created = demo.seed(web.db, app.extensions["balis"].consortium)
    return "Demo accounts (log in at /login):\n" + demo.credentials_text(created) + "\n\n"
