"""Staff and the consortium admin declare closures (寒暑假, public holidays) and post
announcements. Closures refuse new requests to a closed lender and move due dates past
them (ill.calendar); announcements reach the readers of a library, or everyone.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, flash, redirect, render_template, request, url_for

from broker.kernel.errors import BalisError
from web.i18n import translate as _
from web.ill_context import ill, refused, require_staff, service

bp = Blueprint("ill_admin", __name__, url_prefix="/ill/staff")


def _day(name: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(request.form.get(name, ""))
    except ValueError:
        return None


@bp.get("/calendar")
def calendar():
    actor = require_staff()
    with ill().session() as s:
        closures = service().closures(s, None if actor.is_admin else actor.library)
        notices = service().announcements(s, actor)
    names = {lib.id: lib.name for lib in service().consortium.libraries}
    return render_template("ill_calendar.html", closures=closures, notices=notices,
                           names=names, today=dt.date.today())


@bp.post("/closures")
def add_closure():
    actor = require_staff()
    library = request.form.get("library") or None
    with ill().session() as s:
        try:
            service().add_closure(s, actor, start=_day("start"), end=_day("end"),
                                  name=request.form.get("name", ""), library=library)
        except BalisError as exc:
            return refused(exc, url_for("ill_admin.calendar"))
    flash(_("closure_added"), "info")
    return redirect(url_for("ill_admin.calendar"))


@bp.post("/closures/<int:closure_id>/delete")
def remove_closure(closure_id: int):
    actor = require_staff()
    with ill().session() as s:
        try:
            service().remove_closure(s, actor, closure_id)
        except BalisError as exc:
            return refused(exc, url_for("ill_admin.calendar"))
    flash(_("closure_removed"), "info")
    return redirect(url_for("ill_admin.calendar"))


@bp.post("/announcements")
def post_announcement():
    actor = require_staff()
    with ill().session() as s:
        try:
            service().post_announcement(s, actor, title=request.form.get("title", ""),
                                        body=request.form.get("body", ""),
                                        expires=_day("expires"))
        except BalisError as exc:
            return refused(exc, url_for("ill_admin.calendar"))
    flash(_("announcement_posted"), "info")
    return redirect(url_for("ill_admin.calendar"))
