"""Logging in and out, registering, and the reader's profile (HTML, session cookies).

Passwords are checked by the ILL service (scrypt hashes, throttled after repeated
failures); the session is renewed at login so a cookie planted before cannot ride along.
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from broker.kernel.errors import AuthenticationFailed, ValidationFailed
from ill.values import Actor
from web.i18n import translate as _
from web.ill_context import USER_KEY, current_actor, ill, service, status_of

bp = Blueprint("auth", __name__)

REGISTER_FIELDS = ("login", "name", "library", "card_number", "phone", "email")


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no open redirect to another host)."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(
            target).netloc:
        return target
    return url_for("pages.home")


def logged_in(view):
    """A view for logged-in people only: it gets the ``Actor`` as its first argument;
    anyone else is sent to the login page and brought back afterwards."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        actor = current_actor()
        if actor is None:
            flash(_("login_first"), "error")
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(actor, *args, **kwargs)
    return wrapper


@bp.route("/login", methods=["GET", "POST"])
def login():
    target = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("login.html", next=target)
    with ill().session() as s:
        try:
            actor = service().authenticate(s, request.form.get("login", ""),
                                           request.form.get("password", ""))
        except AuthenticationFailed as exc:
            return render_template("login.html", next=target, error=str(exc),
                                   login=request.form.get("login", "")), status_of(exc)
    token = session.get("csrf_token")
    session.clear()  # a fresh session at login
    if token:
        session["csrf_token"] = token
    session[USER_KEY] = actor.id
    flash(_("welcome", name=actor.name or actor.login), "info")
    # Sent here from a page: back to it. Otherwise each lands where their work is: staff
    # and the admin on the staff desk (工作台), readers on the home page.
    if target == url_for("pages.home") and actor.role in ("staff", "admin"):
        target = url_for("ill.staff_home")
    return redirect(target)


@bp.post("/logout")
def logout():
    session.pop(USER_KEY, None)
    return redirect(url_for("pages.home"))


@bp.route("/register", methods=["GET", "POST"])
def register():
    libraries = ill().service.consortium.libraries
    if request.method == "GET":
        return render_template("register.html", libraries=libraries, values={}, errors={})
    data = {key: request.form.get(key, "") for key in (*REGISTER_FIELDS, "password")}
    if data["password"] != request.form.get("password2", ""):
        errors = {"password2": _("passwords_differ")}
        return render_template("register.html", libraries=libraries, values=data,
                               errors=errors), 422
    with ill().session() as s:
        try:
            service().register(s, data)
        except ValidationFailed as exc:
            return render_template("register.html", libraries=libraries, values=data,
                                   errors=exc.errors), 422
    flash(_("registered"), "info")
    return redirect(url_for("auth.login"))


@bp.route("/profile", methods=["GET", "POST"])
@logged_in
def profile(actor: Actor):
    errors: dict[str, str] = {}
    with ill().session() as s:
        if request.method == "POST":
            try:
                # The fields first: a mistake in them must not leave the password changed
                # behind a page that says nothing was saved.
                service().update_profile(s, actor, {k: request.form.get(k, "")
                                                    for k in ("name", "phone", "email")})
                if request.form.get("new_password"):
                    service().change_password(s, actor, request.form.get("old_password", ""),
                                              request.form["new_password"])
                flash(_("saved"), "info")
                return redirect(url_for("auth.profile"))
            except ValidationFailed as exc:
                errors = exc.errors
        user = service().profile(s, actor)
    return render_template("profile.html", user=user, errors=errors), 422 if errors else 200
