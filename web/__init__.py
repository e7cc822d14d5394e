"""web/: the readers' front end and the JSON API, a thin Flask layer over the broker.

``create_app(config)`` builds an app (nothing is loaded at import). Settings, from
``config`` or the environment:

``BALIS_CONFIG``   the libraries file (default: $BALIS_CONFIG, else config/libraries.yaml)
``CONSORTIUM``     an already loaded ``broker.kernel.config.Consortium`` (tests, ``balis demo``)
``PORTAL_DIR``     the consortium's Markdown pages (default: instance/portal if it exists,
                   else ``portal/`` beside the libraries file, as config/portal/ is)
``SECRET_KEY``     signs session cookies (default: $BALIS_SECRET_KEY, else a key kept in
                   instance/secret_key, made on first start)
``INSTANCE_PATH``  this installation's folder (default: $BALIS_INSTANCE, else ./instance):
                   the ILL database (unless ``DATABASE_URL``), the secret key, portal pages
``SESSION_STORE``  ``"env"`` (default: Redis when $BALIS_REDIS_URL is set, else memory) or
                   ``"memory"``
``TRUSTED_PROXIES`` addresses or networks whose X-Forwarded-* headers are believed
                   (web/proxies.py); ``REDIS_URL``, ``HARVEST_QUEUE``: see web/ops.py
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from broker.kernel import config as config_module
from broker.kernel.config import Consortium
from broker.kernel.errors import BalisError
from broker.search.store import MemoryStore, store_from_env
from web.bridge import BrokerBridge
from web.searching import Searches

logger = logging.getLogger(__name__)


class _JsonProvider(DefaultJSONProvider):
    # Chinese titles as themselves, not \uXXXX escapes: the API's answers stay readable
    # (Flask 3 reads this attribute; its old JSON_AS_ASCII setting is gone).
    ensure_ascii = False


class Balis:
    """What the blueprints share, kept in ``app.extensions["balis"]``."""

    def __init__(self, consortium: Consortium, bridge: BrokerBridge, portal_dir: Path) -> None:
        self.consortium = consortium
        self.bridge = bridge
        self.searches = Searches(bridge)
        self.portal_dir = portal_dir
        self.union: Any = None  # broker.catalogues.union.UnionCatalogue, made on first SRU request
        self._closers: list[Callable[[], None]] = [bridge.close]
        self._reloaders: list[Callable[[], None]] = []

    def on_reload(self, reloader: Callable[[], None]) -> None:
        """Something else to renew after the libraries file is reloaded (the Z39.50 front
        door's union catalogue)."""
        self._reloaders.append(reloader)

    def reload(self, path: str | Path | None) -> bool:
        """Reload the libraries file at ``path`` (SIGHUP): on success the broker, the
        directory and the union catalogue take the new consortium (searches running keep
        what they began with); a file that does not validate is refused, each problem logged
        with its line, and the old consortium kept. Portal pages are read from disk on every
        request, so an edited page shows without this. ``path`` None (``balis demo``: its
        consortium is generated) reloads nothing. True when the new file was taken."""
        if path is None:
            logger.info("reload: the libraries are generated here, not reloaded; portal "
                        "pages are read on every request (nothing cached)")
            return False
        try:
            consortium = config_module.load(path)
        except BalisError as exc:
            for line in str(exc).splitlines():
                logger.error("reload refused: %s", line)
            logger.error("reload refused: still serving the %d libraries loaded before",
                         len(self.consortium.libraries))
            return False
        changes = self.bridge.reload(consortium)
        self.consortium = consortium
        self.union = None  # made again, over the new libraries, on the next SRU request
        for reloader in self._reloaders:
            try:
                reloader()
            except Exception:  # the rest of the reload stands
                logger.exception("renewing %r after the reload failed", reloader)
        logger.info("reloaded %s: %d libraries (%d searchable), changes: %s", Path(path).name,
                    len(consortium.libraries), sum(lib.searchable for lib in consortium.libraries),
                    changes.describe())
        return True

    def on_close(self, closer: Callable[[], None]) -> None:
        """Something else of the app's to release at ``close`` (the ILL database)."""
        self._closers.append(closer)

    def close(self) -> None:
        """Stop the broker's loop and release what was registered with ``on_close``."""
        for closer in self._closers:
            try:
                closer()
            except Exception:  # shutting down: the others are still released
                logger.exception("closing %r failed", closer)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_path=str((config or {}).get("INSTANCE_PATH")
                                            or config_module.instance_dir()))
    app.config.update(
        BALIS_CONFIG=os.environ.get("BALIS_CONFIG", "config/libraries.yaml"),
        SESSION_STORE="env",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=1 << 20,  # forms and JSON bodies are small
    )
    app.json = _JsonProvider(app)
    if config:
        app.config.update(config)
    consortium = app.config.get("CONSORTIUM") or config_module.load(app.config["BALIS_CONFIG"])
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = (os.environ.get("BALIS_SECRET_KEY")
                                    or _instance_secret(Path(app.instance_path)))

    store = app.config["SESSION_STORE"]
    factory = (lambda: store_from_env()) if store == "env" else (lambda: MemoryStore())
    bridge = BrokerBridge(consortium, factory)
    balis = Balis(consortium, bridge, _portal_dir(app, consortium))
    app.extensions["balis"] = balis
    atexit.register(bridge.close)

    from web import api, i18n, ops, pages, portal, security, union_sru

    # First: request ids, trusted proxies and HTTP metrics wrap everything after them.
    ops.init_app(app)
    i18n.init_app(app)
    security.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(portal.bp)
    app.register_blueprint(union_sru.bp)
    from web import auth, ill_admin, ill_api, ill_cards, ill_context, ill_pages

    # The ILL service first: the ILL blueprints' views use what it installs.
    ill_context.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(ill_pages.bp)
    app.register_blueprint(ill_api.bp)
    app.register_blueprint(ill_admin.bp)
    app.register_blueprint(ill_cards.bp)
    _error_pages(app)
    return app


def _error_pages(app: Flask) -> None:
    """Errors as JSON under /api/ (as always), elsewhere as a page of the site in the
    reader's language with a way back. Werkzeug's own English descriptions are replaced
    by ours; a description our code gave (the ILL service's, already in the reader's
    words) is shown. A 500 never shows its exception: Flask has logged it with its
    traceback before this handler runs."""
    from flask import jsonify, render_template, request
    from werkzeug.exceptions import HTTPException

    from web.i18n import catalogue
    from web.i18n import translate as _

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = exc.code or 500
        if request.path.startswith("/api/"):
            return jsonify(error=exc.description or exc.name), code
        own = exc.description if exc.description != type(exc).description else None
        known = f"err.page.{code}.title" in catalogue("zh")
        title = _(f"err.page.{code}.title") if known else _("err.page.other.title")
        text = own if own and code < 500 else (
            _(f"err.page.{code}.text") if known else _("err.page.other.text"))
        referrer = request.referrer or ""
        back = referrer if referrer.startswith(request.host_url) else None
        try:
            page = render_template("error.html", code=code, title=title, text=text, back=back)
        except Exception:  # the layout itself failed (its database is down...): plain words
            logger.exception("the error page for %s could not be drawn", code)
            page = f"<!doctype html><title>{code}</title><h1>{title}</h1><p><a href='/'>/</a>"
        return page, code


def _portal_dir(app: Flask, consortium: Consortium) -> Path:
    if app.config.get("PORTAL_DIR"):
        return Path(app.config["PORTAL_DIR"])
    candidates = [Path(app.instance_path) / "portal"]
    if consortium.path is not None:
        candidates.append(Path(consortium.path).resolve().parent / "portal")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[0]  # none yet: the portal is empty until the admin writes pages


def _instance_secret(instance: Path) -> str:
    """A per-installation key, kept so sessions survive restarts."""
    path = instance / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    key = secrets.token_hex(32)
    try:
        instance.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(key + "\n")
    except FileExistsError:
        return path.read_text().strip()
    except OSError as exc:  # a read-only install: sessions last as long as the process
        logger.warning("cannot keep a secret key in %s (%s); using a temporary one",
                       path, exc)
    return key


def get_balis() -> Balis:
    from flask import current_app

    return current_app.extensions["balis"]
