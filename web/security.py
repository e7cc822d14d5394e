"""CSRF protection for every HTML form, and the headers every response carries.

A per-session token is put in each form (``{{ csrf_field() }}``) and checked on every
state-changing request to the HTML pages. The JSON API is exempt when the caller sends
``Authorization: Bearer`` (a token a browser never adds by itself); a browser script that
calls the API with the session cookie sends the token in ``X-CSRF-Token``.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from urllib.parse import urlsplit

from flask import Flask, Response, abort, current_app, render_template, request, session, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer
from markupsafe import Markup, escape

logger = logging.getLogger(__name__)

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
EXEMPT_PREFIXES = ("/sru",)  # SRU clients POST forms as the protocol allows
KEPT_FOR = 3600  # seconds a form kept across an expired session can come back after login
KEPT_SALT = "balis-kept-form"


def csrf_token() -> str:
    token = session.get(FIELD)
    if not token:
        token = session[FIELD] = secrets.token_urlsafe(32)
    return token


def csrf_field() -> Markup:
    return Markup(f'<input type="hidden" name="{FIELD}" value="{escape(csrf_token())}">')


def _checked() -> tuple[str, int] | None:
    if request.method in SAFE_METHODS or request.path.startswith(EXEMPT_PREFIXES):
        return None
    if request.path.startswith("/api/") and (
            request.headers.get("Authorization", "").startswith("Bearer ")
            or FIELD not in session):
        return None  # a token-carrying client, or no cookie session to ride on
    sent = request.form.get(FIELD) or request.headers.get(HEADER) or ""
    expected = session.get(FIELD) or ""
    if not expected or not hmac.compare_digest(sent, expected):
        if request.path.startswith("/api/"):
            abort(400, description="The form has expired or did not come from this site "
                                   "(CSRF check failed). Reload the page and try again.")
        return _expired_form()
    return None


# --- an expired form keeps what was typed ----------------------------------------------------
# The session ran out (or the reader logged out in another tab) while a form was being
# filled in. Its values come back in a new form with a fresh token, never submitted by
# themselves: the reader sees them and submits again. Logged out, the values ride through
# the login page inside a signed link (login starts a new session, so the session cannot
# carry them) and come back filled at /form/resume. Passwords are never kept.

def _kept_values() -> list[tuple[str, str]]:
    return [(name, value) for name, values in request.form.lists()
            if name != FIELD and "password" not in name.lower() for value in values]


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt=KEPT_SALT)


def _logged_in() -> bool:
    from web.ill_context import USER_KEY

    return USER_KEY in session


def _local(path: object) -> bool:
    return (isinstance(path, str) and path.startswith("/") and not path.startswith("//")
            and not urlsplit(path).netloc)


def _expired_form(action: str | None = None, values: list[tuple[str, str]] | None = None,
                  status: int = 400):
    action = action or request.full_path.rstrip("?")
    values = _kept_values() if values is None else values
    resume = url_for("form_resume", data=_serializer().dumps({"action": action,
                                                                "values": values}))
    logger.info("a form to %s came without a valid CSRF token; its values are offered back",
                action)
    names = {lib.id: lib.name for lib in current_app.extensions["balis"].consortium.libraries}
    return render_template("form_expired.html", action=action, values=values, names=names,
                           logged_in=_logged_in(),
                           login_url=url_for("auth.login", next=resume)), status


def form_resume():
    """After logging in again: the kept form, filled, to submit once more."""
    try:
        kept = _serializer().loads(request.args.get("data", ""), max_age=KEPT_FOR)
        action, values = kept["action"], [(str(n), str(v)) for n, v in kept["values"]]
    except (BadSignature, KeyError, TypeError, ValueError):
        return render_template("form_expired.html", action=None, values=[], lost=True, names={},
                               logged_in=_logged_in(), login_url=url_for("auth.login")), 400
    if not _local(action):
        abort(400)
    return _expired_form(action, values, status=200)


def init_app(app: Flask) -> None:
    app.before_request(_checked)
    app.add_url_rule("/form/resume", "form_resume", form_resume)
    app.jinja_env.globals["csrf_field"] = csrf_field
    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if response.mimetype == "text/html":
            # Scripts and styles only from this site: catalogue data can never run as code.
            response.headers.setdefault(
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                "base-uri 'self'; frame-ancestors 'none'")
        return response
