"""CSRF protection for every HTML form, and the headers every response carries.

A per-session token is put in each form (``{{ csrf_field() }}``) and checked on every
state-changing request to the HTML pages. The JSON API is exempt when the caller sends
``Authorization: Bearer`` (a token a browser never adds by itself); a browser script that
calls the API with the session cookie sends the token in ``X-CSRF-Token``.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Flask, Response, abort, request, session
from markupsafe import Markup, escape

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
EXEMPT_PREFIXES = ("/sru",)  # SRU clients POST forms as the protocol allows


def csrf_token() -> str:
    token = session.get(FIELD)
    if not token:
        token = session[FIELD] = secrets.token_urlsafe(32)
    return token


def csrf_field() -> Markup:
    return Markup(f'<input type="hidden" name="{FIELD}" value="{escape(csrf_token())}">')


def _checked() -> None:
    if request.method in SAFE_METHODS or request.path.startswith(EXEMPT_PREFIXES):
        return
    if request.path.startswith("/api/") and (
            request.headers.get("Authorization", "").startswith("Bearer ")
            or FIELD not in session):
        return  # a token-carrying client, or no cookie session to ride on
    sent = request.form.get(FIELD) or request.headers.get(HEADER) or ""
    expected = session.get(FIELD) or ""
    if not expected or not hmac.compare_digest(sent, expected):
        abort(400, description="The form has expired or did not come from this site "
                               "(CSRF check failed). Reload the page and try again.")


def init_app(app: Flask) -> None:
    app.before_request(_checked)
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
