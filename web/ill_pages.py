"""ILL pages: the reader's requests and the staff desk. Each view is a thin call onto
``ill.service.IllService``; its errors become a flash message or a form's field errors.
"""

from __future__ import annotations

import datetime as dt
import secrets

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)

from broker.kernel.errors import BalisError, ValidationFailed
from ill.reasons import REASONS_UNFILLED
from ill.service import statistics_rows, to_csv
from ill.staff import QUEUES
from ill.values import Actor
from web import get_balis
from web.auth import logged_in
from web.closures import closed_lenders
from web.i18n import in_lang
from web.i18n import translate as _
from web.ill_context import ill, refused, require_staff, service, status_of
from web.searching import SearchGone

bp = Blueprint("ill", __name__, url_prefix="/ill")


def _date_arg(name: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(request.args[name]) if request.args.get(name) else None
    except ValueError:
        flash(_("bad_date", name=name), "error")
        return None


# --- the reader ------------------------------------------------------------------------

@bp.route("/new", methods=["GET", "POST"])
@logged_in
def new_request(actor: Actor):
    if request.method == "GET":
        record = None
        record_id = request.args.get("record")
        if record_id:
            try:
                cluster, _session = get_balis().searches.record(record_id, request.args.get("s"))
                record = cluster.as_dict()
            except SearchGone:
                flash(_("gone"), "error")
        lender = request.args.get("lender")
        values = service().prefill(actor, record, lender=lender)
        chosen = _chosen_holding(record, lender, request.args.get("holding", ""))
        if chosen and chosen.get("call_number"):
            values["call_number"] = chosen["call_number"]  # the copy the reader clicked
        with ill().session() as s:
            profile = service().profile(s, actor)
        values["phone"] = values.get("phone") or profile.phone
        if not record and request.args.get("title"):
            values["title"] = request.args["title"][:500]  # the zero-hit page's query
        closed = closed_lenders().get(lender or "")
        if closed:  # said before the form is filled in; submitting it is refused anyway
            flash(_("res.closed_lender", name=_names().get(closed.library, closed.library),
                    d=closed.reopens.isoformat()), "error")
        return render_template("ill_request_form.html", values=values, errors={},
                               **_lenders(values.get("record_id")),
                               key=secrets.token_urlsafe(16))
    data = {key: request.form.get(key, "") for key in (
        "title", "author", "publisher", "year", "isbn", "issn", "call_number", "lender",
        "material_type", "delivery", "phone", "note", "record_id")}
    data = {key: value for key, value in data.items() if value != "" or key in (
        "title", "year", "call_number", "lender", "delivery")}
    with ill().session() as s:
        try:
            view = service().create_request(s, actor, data,
                                            idempotency_key=request.form.get("key") or None)
        except ValidationFailed as exc:
            return render_template("ill_request_form.html", values=data, errors=exc.errors,
                                   **_lenders(data.get("record_id")),
                                   key=request.form.get("key")), 422
        except BalisError as exc:
            return refused(exc, url_for("ill.my_requests"))
    flash(_("request_submitted", id=view.id), "info")
    return redirect(url_for("ill.request_detail", request_id=view.id))


@bp.get("/requests")
@logged_in
def my_requests(actor: Actor):
    status = request.args.get("status") or None
    ill().sweep_if_due()
    date_from, date_to = _date_arg("from"), _date_arg("to")
    with ill().session() as s:
        try:
            views = service().list_requests(s, actor, status=status, date_from=date_from,
                                            date_to=date_to)
        except ValidationFailed as exc:  # an unknown status in the address: show them all
            flash("; ".join(exc.errors.values()), "error")
            status = None
            views = service().list_requests(s, actor, date_from=date_from, date_to=date_to)
    states = service().workflow.states
    return render_template("ill_requests.html", requests=views, states=states,
                           terms={v.id: service().cancel_terms(v) for v in views},
                           status=status, date_from=request.args.get("from", ""),
                           date_to=request.args.get("to", ""), names=_names())


@bp.get("/requests/<int:request_id>")
@logged_in
def request_detail(actor: Actor, request_id: int):
    with ill().session() as s:
        try:
            timeline = service().timeline(s, actor, request_id)
        except BalisError as exc:
            abort(status_of(exc), description=str(exc))
    return render_template("ill_request.html", t=timeline, req=timeline.request,
                           terms=service().cancel_terms(timeline.request),
                           names=_names(), reasons=_reasons())


@bp.post("/requests/<int:request_id>/cancel")
@logged_in
def cancel(actor: Actor, request_id: int):
    target = url_for("ill.request_detail", request_id=request_id)
    if request.form.get("confirm") != "1":
        return _confirm(actor, request_id, "cancel", target)
    with ill().session() as s:
        try:
            outcome = service().cancel(s, actor, request_id,
                                       reason=request.form.get("reason") or None)
        except BalisError as exc:
            return refused(exc, target)
    flash(outcome.message, "info")
    return redirect(target)


@bp.post("/requests/<int:request_id>/renew")
@logged_in
def renew(actor: Actor, request_id: int):
    target = url_for("ill.request_detail", request_id=request_id)
    with ill().session() as s:
        try:
            service().request_renewal(s, actor, request_id,
                                      reason=request.form.get("reason") or None)
        except BalisError as exc:
            return refused(exc, target)
    flash(_("renewal_sent"), "info")
    return redirect(target)


@bp.get("/messages")
@logged_in
def messages(actor: Actor):
    with ill().session() as s:
        items = service().messages(s, actor)
        fines = service().fines(s, actor)
        news = service().announcements(s, actor)
        service().mark_read(s, actor)
    return render_template("ill_messages.html", items=items, fines=fines, news=news,
                           names=_names())


# --- staff -------------------------------------------------------------------------------

@bp.get("/staff")
def staff_home():
    actor = require_staff()
    which = request.args.get("queue", "lending")
    if which not in QUEUES:
        abort(404)
    library = request.args.get("library") if actor.is_admin else None
    ill().sweep_if_due()
    with ill().session() as s:
        try:
            # An admin first chooses whose desk to look at (the page offers the choice).
            items = [] if actor.is_admin and not library else service().queue(
                s, actor, which, library=library)
        except BalisError as exc:
            abort(status_of(exc), description=str(exc))
        pending = service().pending_registrations(s, actor)
    return render_template("ill_staff.html", which=which, items=items, queues=QUEUES,
                           pending=pending, names=_names(), reasons=_reasons(),
                           library=library)


@bp.post("/staff/requests/<int:request_id>/act")
def act(request_id: int):
    actor = require_staff()
    target = request.form.get("back") or url_for("ill.request_detail", request_id=request_id)
    if not _on_this_site(target):
        target = url_for("ill.staff_home")
    action = request.form.get("action", "")
    version = request.form.get("version")
    if _destructive(action) and request.form.get("confirm") != "1":
        return _confirm(actor, request_id, action, target)
    with ill().session() as s:
        try:
            if action == "undo":
                service().undo(s, actor, request_id)
            elif action in ("grant_cancel", "decline_cancel"):
                service().decide_cancel(s, actor, request_id, approve=action == "grant_cancel",
                                        reason=request.form.get("reason") or None)
            elif action in ("grant_renewal", "decline_renewal"):
                service().decide_renewal(s, actor, request_id,
                                         approve=action == "grant_renewal",
                                         reason=request.form.get("reason") or None)
            else:
                service().act(s, actor, request_id, action,
                              reason=request.form.get("reason") or None,
                              batch=request.form.get("batch") or None,
                              expected_version=_number(version))
        except BalisError as exc:
            return refused(exc, target)
    spec = service().workflow.actions.get(action)  # else undo, or a cancel/renewal decision
    flash(_("action_done", id=request_id,
            action=in_lang(spec.label, spec.label_en) if spec else _(action)), "info")
    return redirect(target)


@bp.post("/staff/registrations/<int:user_id>")
def decide_registration(user_id: int):
    actor = require_staff()
    with ill().session() as s:
        try:
            user = service().approve_registration(
                s, actor, user_id, approve=request.form.get("approve") == "1",
                reason=request.form.get("reason") or None)
        except BalisError as exc:
            return refused(exc, url_for("ill.staff_home"))
    flash(_("registration_" + ("approved" if user.status == "active" else "refused"),
            name=user.name), "info")
    return redirect(url_for("ill.staff_home"))


@bp.get("/staff/slips")
def slips():
    actor = require_staff()
    numbers = [_number(x) for x in request.args.getlist("id")]
    ids = [n for n in numbers if n is not None]
    if len(ids) != len(numbers):
        abort(404, description=_("not_found"))
    with ill().session() as s:
        try:
            items = service().pull_slips(s, actor, ids or None)
        except BalisError as exc:  # another library's request, or one that does not exist
            abort(status_of(exc), description=str(exc))
    return render_template("ill_slips.html", slips=items, names=_names())


@bp.get("/staff/stats")
def stats():
    actor = require_staff()
    today = service().today()  # the ILL's day (Beijing), not the server's
    start = _date_arg("from") or today.replace(month=1, day=1)
    end = _date_arg("to") or today
    # Staff see their library; the admin opens on the whole consortium (no library) and
    # may choose one.
    library = (request.args.get("library") or None) if actor.is_admin else (
        request.args.get("library") or actor.library)
    with ill().session() as s:
        try:
            figures = service().statistics(s, actor, library, start, end)
            subsidy = service().subsidy_report(s, actor, start, end) if actor.is_admin else []
            courier = service().courier_report(s, actor, start, end) if actor.is_admin else []
            monthly = service().monthly_volume(s, actor, start, end, library)
        except BalisError as exc:
            abort(status_of(exc), description=str(exc))
    wanted = request.args.get("format")
    if wanted in ("csv", "subsidy.csv", "courier.csv"):
        rows = {"csv": statistics_rows(figures), "subsidy.csv": subsidy,
                "courier.csv": courier}[wanted]
        name = f"ill-{wanted.replace('.csv', '') if wanted != 'csv' else 'statistics'}-" \
               f"{library or 'balis'}-{start}-{end}.csv"
        return Response(to_csv(rows), mimetype="text/csv", headers={
            "Content-Disposition": f'attachment; filename="{name}"'})
    return render_template("ill_stats.html", figures=figures, subsidy=subsidy,
                           courier=courier, chart=_chart(monthly, library), start=start,
                           end=end,
                           library=library, names=_names())


# --- helpers -----------------------------------------------------------------------------

def _lenders(record_id: str | None) -> dict:
    """The lenders the form offers: a direct request (no record) leaves out those that
    take requests only from their records (the National Library), and names them."""
    libraries = service().consortium.libraries
    offered = [lib for lib in libraries if record_id or lib.ill.direct_requests]
    return {"libraries": offered,
            "record_only": [] if record_id else [lib for lib in libraries
                                                 if not lib.ill.direct_requests]}


def _destructive(action: str) -> bool:
    """Actions that end a request (and granting a reader's cancel): asked to confirm."""
    spec = service().workflow.actions.get(action)
    return action == "grant_cancel" or (spec is not None and spec.destructive)


def _confirm(actor: Actor, request_id: int, action: str, back: str):
    """The confirmation page of a destructive action, for browsers without JavaScript
    (with it, the form's own dialog asked and sent ``confirm=1``): the request, what the
    action does, the reason field (labelled), and the way back."""
    with ill().session() as s:
        try:
            view = service().get_request(s, actor, request_id)
        except BalisError as exc:
            return refused(exc, back)
    terms = service().cancel_terms(view) if actor.role == "reader" else None
    spec = service().workflow.actions.get(action)
    kept = {key: request.form.get(key, "") for key in ("action", "version", "batch", "back")
            if request.form.get(key)}
    label = (_("grant_cancel") if action == "grant_cancel" else
             (_("cancel_request") if terms.mode == "self" else _("ill.ask_cancel")) if terms
             else in_lang(spec.label, spec.label_en) if spec else action)
    return render_template("ill_confirm.html", req=view, action=action, spec=spec,
                           label=label,
                           terms=terms, kept=kept, back=back, names=_names(),
                           reasons=_reasons(), reason=request.form.get("reason", ""),
                           form_action=request.path)


def _chosen_holding(record: dict | None, lender: str | None, index: str) -> dict | None:
    """The holding the record page's link named (its position among the record's
    holdings), if it is the lender's; else None (the lender's first copy is used)."""
    if not record or not index.isdecimal() or not index.isascii():
        return None
    holdings = record.get("holdings") or []
    position = int(index)
    if position < len(holdings) and holdings[position].get("library") == lender:
        return holdings[position]
    return None


def _number(text: str | None) -> int | None:
    """A whole number a database can hold, from a form or the address ("²" is a digit to
    str.isdigit, and 20 digits overflow SQLite), else None."""
    if not text or not text.isascii() or not text.isdigit() or len(text) > 18:
        return None
    return int(text)


def _on_this_site(target: str) -> bool:
    """A path here: "//host/..." and "/\\host" would send the browser to another site."""
    return target.startswith("/") and not target.startswith("//") and "\\" not in target


def _names() -> dict[str, str]:
    return {lib.id: lib.name for lib in service().consortium.libraries}


def _reasons() -> dict[str, tuple[str, str]]:
    return REASONS_UNFILLED


def _chart(monthly: dict, library: str | None) -> dict:
    """Monthly lending volume of the library the page is about (or the consortium's total),
    as numbers an inline SVG draws (no script): one row, the one the heading names."""
    series = [(row["library_name"], row["lent"]) for row in monthly["libraries"]
              if row["library"] == library] if library else [
                  (_("ill.whole_consortium"), monthly["total"])]
    peak = max((v for _, values in series for v in values), default=0) or 1
    return {"months": monthly["months"], "series": series, "peak": peak}
