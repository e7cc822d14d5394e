"""The consortium self-pickup card (联盟自取借书证).

A reader applies; staff of the reader's home library approve (the card gets a number and a
validity period, ``CardSettings.valid_days`` from the day of approval) or refuse; staff may
revoke an issued card. Only a reader holding a valid card may ask for ``pickup`` delivery
(collect in person at the lender); the lender's desk types or scans the number to see
whether the card is valid, whose it is, and that reader's requests waiting at that desk.

Card numbers are eleven digits: the year of issue, the card's row id in six digits and a
Luhn check digit, so a mistyped digit is caught before the ledger is asked.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.kernel.errors import Conflict, Forbidden, NotFound, ValidationFailed
from ill.core import optional_text, unit_of_work
from ill.models import CardStatus, PickupCard, Request, User
from ill.requests import ReaderMixin
from ill.values import Actor, RequestView, _AsDict, request_view

log = logging.getLogger(__name__)

# What a card is on a given day: its status, with "active" split by the validity period.
CardState = Literal["pending", "valid", "expired", "not_yet", "refused", "revoked"]
# What a number typed at the desk turned out to be, before any card was found.
CheckState = Literal["ok", "malformed", "unknown"]
_SEPARATORS = re.compile(r"[\s\-]")


@dataclass(frozen=True, slots=True)
class CardSettings:
    """The card's policy (app config ``CARD_VALID_DAYS``, ``CARD_REQUIRED_FOR_PICKUP``)."""

    valid_days: int = 365
    required_for_pickup: bool = True


@dataclass(frozen=True, slots=True)
class CardView(_AsDict):
    id: int
    number: str | None
    reader_id: int
    reader_name: str
    reader_login: str
    library: str
    library_name: str
    status: CardStatus
    state: CardState
    applied_at: datetime
    note: str | None
    decided_at: datetime | None
    valid_from: date | None
    valid_until: date | None
    reason: str | None

    @property
    def valid(self) -> bool:
        return self.state == "valid"


@dataclass(frozen=True, slots=True)
class CardCheck(_AsDict):
    """The lender's desk's answer to a typed or scanned number."""

    number: str
    result: CheckState
    card: CardView | None
    waiting: tuple[RequestView, ...]  # the holder's pickup requests ready at this desk
    on_loan: tuple[RequestView, ...]  # ... and the ones the holder has out from this desk

    @property
    def valid(self) -> bool:
        return self.card is not None and self.card.valid

    def as_dict(self) -> dict[str, Any]:
        return {"number": self.number, "result": self.result, "valid": self.valid,
                "card": self.card.as_dict() if self.card else None,
                "waiting": [r.row() for r in self.waiting],
                "on_loan": [r.row() for r in self.on_loan]}


def luhn_digit(digits: str) -> str:
    """The Luhn check digit of a string of digits."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str((10 - total % 10) % 10)


def card_number(year: int, card_id: int) -> str:
    body = f"{year:04d}{card_id:06d}"
    return body + luhn_digit(body)


def normalize_number(text: str) -> str | None:
    """The number as stored, from what was typed (spaces, dashes allowed); None when it
    cannot be a card number (wrong length, letters, a wrong check digit)."""
    digits = _SEPARATORS.sub("", text or "")
    if not re.fullmatch(r"\d{11,12}", digits):
        return None
    return digits if luhn_digit(digits[:-1]) == digits[-1] else None


class CardsMixin(ReaderMixin):
    card_settings: CardSettings = CardSettings()

    def configure_cards(self, settings: CardSettings) -> None:
        """Set once at start-up (the web app's config); a service holds no request state."""
        if settings.valid_days < 1:
            raise ValueError("CARD_VALID_DAYS must be at least 1")
        self.card_settings = settings

    # -- the reader
    @unit_of_work
    def my_card(self, session: Session, actor: Actor) -> CardView | None:
        """The reader's newest application or card (None: never applied)."""
        row = session.scalars(select(PickupCard).where(PickupCard.reader_id == actor.id)
                              .order_by(PickupCard.id.desc()).limit(1)).first()
        return self._card_view(session, row) if row else None

    @unit_of_work
    def apply_card(self, session: Session, actor: Actor, note: Any = None) -> CardView:
        """Apply to the home library; Conflict while a pending or valid card exists."""
        self.require_reader(actor)
        note = optional_text(note, "note", 200)
        reader = self._user(session, actor.id, lock=True)
        if reader.status != "active" or not reader.library:
            raise Forbidden("您的账号尚未通过审核或已停用")
        current = session.scalars(select(PickupCard).where(
            PickupCard.reader_id == actor.id, PickupCard.status.in_(("pending", "active")))
            .order_by(PickupCard.id.desc())).all()
        for row in current:
            state = self._state(row)
            if state == "pending":
                raise Conflict("您的联盟自取借书证申请正在等待本馆审核")
            if state in ("valid", "not_yet"):
                raise Conflict(f"您已持有有效的联盟自取借书证（{row.number}，"
                               f"有效期至 {row.valid_until}）")
        row = PickupCard(reader_id=actor.id, library=reader.library, status="pending",
                         applied_at=self.now(), note=note)
        session.add(row)
        session.flush()
        self._audit(session, actor, "card.apply", f"card:{row.id}")
        session.commit()
        return self._card_view(session, row)

    def _valid_card(self, session: Session, reader_id: int) -> PickupCard | None:
        today = self.today()
        return session.scalars(select(PickupCard).where(
            PickupCard.reader_id == reader_id, PickupCard.status == "active",
            PickupCard.valid_from <= today, PickupCard.valid_until >= today)).first()

    @unit_of_work
    def validate(self, session: Session, actor: Actor, data: Any) -> dict:
        """The request form's checks, and: pickup needs a valid card (all errors at once)."""
        errors: dict[str, str] = {}
        en: dict[str, str] = {}
        clean: dict = {}
        try:
            clean = super().validate(session, actor, data)
        except ValidationFailed as exc:
            errors, en = dict(exc.errors), dict(exc.errors_en)
        wants_pickup = isinstance(data.get("delivery"), str) and \
            data["delivery"].strip() == "pickup"
        if wants_pickup and "delivery" not in errors and self.card_settings.required_for_pickup \
                and self._valid_card(session, actor.id) is None:
            errors["delivery"] = ("到出借馆自取须持有效的联盟自取借书证，请先在“我的借书证”"
                                  "页申请，或选择快递到本馆")
            en["delivery"] = "pickup at the lender needs a valid consortium pickup card"
        if errors:
            raise ValidationFailed(errors, en)
        return clean

    # -- the home library's staff
    @unit_of_work
    def card_applications(self, session: Session, actor: Actor, *,
                          status: CardStatus = "pending") -> list[CardView]:
        """Cards of the staff member's library in ``status`` (admins: every library)."""
        self.require_staff(actor)
        query = select(PickupCard).where(PickupCard.status == status)
        if not actor.is_admin:
            query = query.where(PickupCard.library == actor.library)
        rows = session.scalars(query.order_by(PickupCard.id)).all()
        return [self._card_view(session, row) for row in rows]

    @unit_of_work
    def decide_card(self, session: Session, actor: Actor, card_id: int, *, approve: bool,
                    reason: Any = None) -> CardView:
        """Issue (number, validity from today) or refuse a pending application."""
        reason = optional_text(reason, "reason", 200)
        row = self._card_row(session, card_id)
        self.require_staff(actor, row.library)
        if row.status != "pending":
            raise Conflict(f"这份借书证申请已处理（{_STATUS_ZH[row.status]}）")
        today = self.today()
        row.decided_at, row.decided_by = self.now(), actor.id
        if approve:
            row.status = "active"
            row.number = card_number(today.year, row.id)
            row.valid_from = today
            row.valid_until = today + timedelta(days=self.card_settings.valid_days - 1)
            text = (f"您的联盟自取借书证已办理：卡号 {row.number}，有效期 {row.valid_from} 至 "
                    f"{row.valid_until}；可在申请时选择“到出借馆自取”")
        else:
            row.status, row.reason = "refused", reason
            text = "您的联盟自取借书证申请未获批准" + (f"：{reason}" if reason else "")
        self._tell(session, row.reader_id, text)
        self._audit(session, actor, "card." + ("issue" if approve else "refuse"),
                    f"card:{row.id}", {"reason": reason})
        session.commit()
        return self._card_view(session, row)

    @unit_of_work
    def revoke_card(self, session: Session, actor: Actor, card_id: int,
                    reason: Any = None) -> CardView:
        reason = optional_text(reason, "reason", 200)
        if not reason:
            raise ValidationFailed({"reason": "请说明注销原因"}, {"reason": "a reason is required"})
        row = self._card_row(session, card_id)
        self.require_staff(actor, row.library)
        if row.status != "active":
            raise Conflict(f"这张借书证不是有效状态（{_STATUS_ZH[row.status]}），不能注销")
        row.status, row.reason = "revoked", reason
        row.decided_at, row.decided_by = self.now(), actor.id
        self._tell(session, row.reader_id, f"您的联盟自取借书证 {row.number} 已被注销：{reason}")
        self._audit(session, actor, "card.revoke", f"card:{row.id}", {"reason": reason})
        session.commit()
        return self._card_view(session, row)

    # -- the lender's desk
    @unit_of_work
    def check_card(self, session: Session, actor: Actor, number: str) -> CardCheck:
        """What the desk needs to hand over a book: is the card valid, whose, what waits."""
        self.require_staff(actor)
        typed = (number or "").strip()[:40]
        found = normalize_number(typed)
        if found is None:
            return CardCheck(typed, "malformed", None, (), ())
        row = session.scalars(select(PickupCard).where(PickupCard.number == found)).first()
        if row is None:
            return CardCheck(found, "unknown", None, (), ())
        card = self._card_view(session, row)
        desk = actor.library
        query = (select(Request).where(Request.reader_id == row.reader_id,
                                       Request.delivery == "pickup")
                 .order_by(Request.id))
        if desk is not None:  # an admin sees every lender's
            query = query.where(Request.lender == desk)
        rows = session.scalars(query).all()
        ready = self.workflow.sources("checkout")
        out = self.workflow.sources("return")
        waiting = tuple(request_view(r, card.reader_name) for r in rows if r.status in ready)
        on_loan = tuple(request_view(r, card.reader_name) for r in rows if r.status in out)
        self._audit(session, actor, "card.check", f"card:{row.id}", {"state": card.state})
        session.commit()
        return CardCheck(found, "ok", card, waiting, on_loan)

    # -- shared
    def _card_row(self, session: Session, card_id: int) -> PickupCard:
        row = session.scalars(select(PickupCard).where(PickupCard.id == card_id)
                              .with_for_update()).first() \
            if isinstance(card_id, int) and 0 < card_id < 2**63 else None
        if row is None:
            raise NotFound(f"没有编号为 {card_id} 的借书证申请")
        return row

    def _state(self, row: PickupCard) -> CardState:
        if row.status != "active":
            return row.status  # pending, refused, revoked
        today = self.today()
        if row.valid_from and today < row.valid_from:
            return "not_yet"
        if row.valid_until and today > row.valid_until:
            return "expired"
        return "valid"

    def _card_view(self, session: Session, row: PickupCard) -> CardView:
        reader = session.get(User, row.reader_id)
        return CardView(row.id, row.number, row.reader_id, reader.name if reader else "",
                        reader.login if reader else "", row.library,
                        self.library_name(row.library), row.status, self._state(row),
                        row.applied_at, row.note, row.decided_at, row.valid_from,
                        row.valid_until, row.reason)


_STATUS_ZH: dict[str, str] = {"pending": "待审核", "active": "已办理", "refused": "未批准",
                              "revoked": "已注销"}
