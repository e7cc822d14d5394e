"""The consortium self-pickup card (联盟自取借书证) on the web, and e-mail's start-up.

Pages: the reader's card (apply, status, a printable card), the home library's card desk
(applications to approve or refuse, issued cards to revoke) and the lender's check (type or
scan a number: valid or not, whose, what waits for that reader at this desk). JSON API under
``/api/ill/card`` and ``/api/ill/cards`` (web/openapi.yaml). Each view is a thin call onto
``ill.service.IllService`` (ill/cards.py).

Registering the blueprint also reads the deployment's card and e-mail settings from the app
config (``CARD_VALID_DAYS``, ``CARD_REQUIRED_FOR_PICKUP``, ``SMTP_*`` or ``BALIS_SMTP_*``;
see ill/mail.py) and, with SMTP configured and ``MAIL_SENDER`` not false, starts the
background sender that generates reminders and delivers the outbox every
``MAIL_INTERVAL`` seconds (default 60).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from markupsafe import Markup

from broker.kernel.errors import BalisError, ValidationFailed
from ill.cards import CardSettings
from ill.mail import MailSettings
from ill.mail_sender import BackgroundSender, MailSender
from ill.values import Actor
from web.auth import logged_in
from web.i18n import translate as _
from web.ill_context import current_actor, ill, refused, require_staff, service, status_of

log = logging.getLogger(__name__)

bp = Blueprint("ill_cards", __name__)


@bp.record_once
def _configure(state: BlueprintSetupState) -> None:
    app = state.app
    svc = app.extensions["ill"].service
    svc.configure_cards(CardSettings(
        valid_days=int(app.config.get("CARD_VALID_DAYS", 365)),
        required_for_pickup=bool(app.config.get("CARD_REQUIRED_FOR_PICKUP", True))))
    settings = MailSettings.from_config(app.config)
    svc.configure_mail(settings)
    if settings is None:
        log.info("e-mail is off (no SMTP_HOST / BALIS_SMTP_HOST): site messages only")
        return
    log.info("e-mail through %s:%d from %s", settings.host, settings.port, settings.sender)
    if not app.config.get("MAIL_SENDER", True):
        return  # another process (balis mail) delivers
    web = app.extensions["ill"]
    clock = app.config.get("ILL_CLOCK")
    background = BackgroundSender(
        lambda: MailSender(web.db, settings, **({"clock": clock} if clock else {})),
        svc.queue_loan_notices, float(app.config.get("MAIL_INTERVAL", 60)))
    background.start()
    app.extensions["balis"].on_close(background.stop)


@bp.errorhandler(BalisError)
def _error(exc: BalisError):
    status = status_of(exc)
    if status == 500:
        raise exc
    if not request.path.startswith("/api/"):
        abort(status, description=str(exc))
    if isinstance(exc, ValidationFailed):
        return jsonify(errors=exc.errors_en if request.args.get("lang") == "en"
                       else exc.errors), 422
    return jsonify(error=str(exc)), status


# --- the reader ------------------------------------------------------------------------

@bp.route("/ill/card", methods=["GET", "POST"])
@logged_in
def my_card(actor: Actor):
    if request.method == "POST":
        with ill().session() as s:
            try:
                service().apply_card(s, actor, request.form.get("note") or None)
            except BalisError as exc:
                return refused(exc, url_for("ill_cards.my_card"))
        flash(_("card.applied"), "info")
        return redirect(url_for("ill_cards.my_card"))
    with ill().session() as s:
        card = service().my_card(s, actor)
    return render_template("card_mine.html", card=card,
                           valid_days=service().card_settings.valid_days)


@bp.get("/ill/card/print")
@logged_in
def print_card(actor: Actor):
    with ill().session() as s:
        card = service().my_card(s, actor)
    if card is None or card.number is None or card.status != "active":
        flash(_("card.none_to_print"), "error")
        return redirect(url_for("ill_cards.my_card"))
    return render_template("card_print.html", card=card, barcode=code39_svg(card.number))


# --- the home library's card desk and the lender's check --------------------------------

@bp.get("/ill/staff/cards")
def card_desk():
    actor = require_staff()
    number = (request.args.get("number") or "").strip()
    with ill().session() as s:
        pending = service().card_applications(s, actor)
        issued = service().card_applications(s, actor, status="active")
        check = service().check_card(s, actor, number) if number else None
    return render_template("card_desk.html", pending=pending, issued=issued, check=check,
                           number=number)


@bp.post("/ill/staff/cards/<int:card_id>")
def decide(card_id: int):
    actor = require_staff()
    what = request.form.get("action", "")
    reason = request.form.get("reason") or None
    with ill().session() as s:
        try:
            if what == "revoke":
                card = service().revoke_card(s, actor, card_id, reason)
            elif what in ("approve", "refuse"):
                card = service().decide_card(s, actor, card_id, approve=what == "approve",
                                             reason=reason)
            else:
                abort(400)
        except BalisError as exc:
            return refused(exc, url_for("ill_cards.card_desk"))
    flash(_("card.done_" + what, name=card.reader_name, number=card.number or ""), "info")
    return redirect(url_for("ill_cards.card_desk"))


# --- JSON API -----------------------------------------------------------------------------

def _api_actor() -> Actor:
    actor = current_actor()
    if actor is None:
        response = jsonify(error="log in first: POST /api/tokens, then send "
                                 "Authorization: Bearer TOKEN")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="balis"'
        abort(response)
    return actor


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if body is None and not request.data:
        return {}
    if not isinstance(body, dict):
        raise ValidationFailed({"body": "请求体须为 JSON 对象"},
                               {"body": "the body must be a JSON object"})
    return body


@bp.get("/api/ill/card")
def api_my_card():
    actor = _api_actor()
    with ill().session() as s:
        card = service().my_card(s, actor)
    return jsonify(card=card.as_dict() if card else None)


@bp.post("/api/ill/card")
def api_apply():
    actor = _api_actor()
    with ill().session() as s:
        card = service().apply_card(s, actor, _body().get("note"))
    return jsonify(card.as_dict()), 201


@bp.get("/api/ill/cards")
def api_cards():
    actor = _api_actor()
    status = request.args.get("status", "pending")
    if status not in ("pending", "active", "refused", "revoked"):
        raise ValidationFailed({"status": "状态须为 pending、active、refused 或 revoked"},
                               {"status": "status must be pending, active, refused or revoked"})
    with ill().session() as s:
        cards = service().card_applications(s, actor, status=status)  # type: ignore[arg-type]
    return jsonify(cards=[c.as_dict() for c in cards])


@bp.post("/api/ill/cards/<int:card_id>/decision")
def api_decide(card_id: int):
    actor = _api_actor()
    body = _body()
    what = body.get("action")
    if what not in ("approve", "refuse", "revoke"):
        raise ValidationFailed({"action": "操作须为 approve、refuse 或 revoke"},
                               {"action": "action must be approve, refuse or revoke"})
    with ill().session() as s:
        if what == "revoke":
            card = service().revoke_card(s, actor, card_id, body.get("reason"))
        else:
            card = service().decide_card(s, actor, card_id, approve=what == "approve",
                                         reason=body.get("reason"))
    return jsonify(card.as_dict())


@bp.get("/api/ill/cards/check")
def api_check():
    actor = _api_actor()
    with ill().session() as s:
        check = service().check_card(s, actor, request.args.get("number", ""))
    return jsonify(check.as_dict())


# --- the printed card's bars ----------------------------------------------------------------

# Code 39 (digits and the start/stop "*"): n narrow, w wide; bar and space alternate,
# starting with a bar. A desk's ordinary scanner reads it back as the card number.
_CODE39 = {"0": "nnnwwnwnn", "1": "wnnwnnnnw", "2": "nnwwnnnnw", "3": "wnwwnnnnn",
           "4": "nnnwwnnnw", "5": "wnnwwnnnn", "6": "nnwwwnnnn", "7": "nnnwnnwnw",
           "8": "wnnwnnwnn", "9": "nnwwnnwnn", "*": "nwnnwnwnn"}


def code39_svg(number: str, height: int = 48) -> Markup:
    """The number as a Code 39 barcode in inline SVG (no script, no image file)."""
    x, bars = 10, []  # 10 modules of quiet zone each side
    for char in f"*{number}*":
        for index, element in enumerate(_CODE39[char]):
            size = 3 if element == "w" else 1
            if index % 2 == 0:
                bars.append(f'<rect x="{x}" y="0" width="{size}" height="{height}"/>')
            x += size
        x += 1  # the narrow gap between characters
    width = x + 9
    return Markup(f'<svg class="card-barcode" xmlns="http://www.w3.org/2000/svg" '
                  f'viewBox="0 0 {width} {height}" width="{width * 2}" height="{height}" '
                  f'role="img" aria-label="{number}">{"".join(bars)}</svg>')
