"""What the ILL service layer hands out: frozen values, never ORM rows.

Each has ``as_dict()`` giving its JSON form (dates as ISO 8601 text); ``RequestView.row()``
is the list row of CONTRACTS section 6 (``id``, ``created``, ``status``, ``due``,
``lender``, ``title``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from ill.models import (
    Event,
    Fine,
    Message,
    Renewal,
    RenewalStatus,
    Request,
    User,
    UserRole,
    UserStatus,
)
from ill.workflow import WORKFLOW, Delivery, RequestRole


def _json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple | list):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return value


class _AsDict:
    def as_dict(self) -> dict[str, Any]:
        return {f.name: _json(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Actor(_AsDict):
    """Who is acting: what every service call takes after the session."""

    id: int
    login: str
    role: UserRole
    library: str | None
    name: str

    @property
    def is_staff(self) -> bool:
        return self.role == "staff"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class UserView(_AsDict):
    id: int
    login: str
    role: UserRole
    library: str | None
    status: UserStatus
    name: str
    card_number: str | None
    phone: str | None
    email: str | None
    created: datetime


@dataclass(frozen=True, slots=True)
class RequestView(_AsDict):
    id: int
    version: int
    created: datetime
    updated: datetime
    status: str
    status_label: str
    iso18626: str
    terminal: bool
    next_step: str | None  # what happens next, for the reader
    reader_id: int
    reader_name: str
    borrower: str
    lender: str
    title: str
    author: str | None
    publisher: str | None
    year: int
    isbn: str | None
    issn: str | None
    call_number: str
    material_type: str | None
    delivery: Delivery
    phone: str | None
    note: str | None
    record_id: str | None
    due: date | None
    due_shifted_from: date | None
    reason_code: str | None
    reason_text: str | None
    cancel_requested: bool
    batch: str | None

    def row(self) -> dict[str, Any]:
        """The list row of CONTRACTS section 6."""
        return {"id": self.id, "created": self.created.isoformat(), "status": self.status,
                "due": self.due.isoformat() if self.due else None, "lender": self.lender,
                "title": self.title}


@dataclass(frozen=True, slots=True)
class EventView(_AsDict):
    id: int
    at: datetime
    action: str
    label: str
    from_status: str | None
    to_status: str
    actor_role: RequestRole
    actor_library: str | None
    actor_name: str | None
    reason: str | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Timeline(_AsDict):
    request: RequestView
    events: tuple[EventView, ...]
    next_step: str | None
    actions: tuple[str, ...]  # what the asking user may do now


@dataclass(frozen=True, slots=True)
class CancelOutcome(_AsDict):
    """``cancelled``: done; else ``cancel_requested``: staff will decide."""

    request: RequestView
    cancelled: bool
    cancel_requested: bool
    message: str


# How a reader may cancel a request now: ``self`` cancels it at once (within the lender's
# window), ``ask`` sends the lender's staff a cancel request they grant or decline (the
# window is over, or the lender has none, or it has acted), ``none``: too late to cancel.
CancelMode = Literal["self", "ask", "none"]


@dataclass(frozen=True, slots=True)
class CancelTerms(_AsDict):
    """What the reader's cancel button does, and until when it cancels outright."""

    mode: CancelMode
    until: datetime | None  # the end of the lender's cancel window, while it runs


@dataclass(frozen=True, slots=True)
class MessageView(_AsDict):
    id: int
    at: datetime
    request_id: int | None
    text: str
    read: bool


@dataclass(frozen=True, slots=True)
class FineView(_AsDict):
    id: int
    request_id: int
    title: str
    lender: str
    days: int
    rate: Decimal
    amount: Decimal
    created: datetime
    voided: bool


@dataclass(frozen=True, slots=True)
class AnnouncementView(_AsDict):
    id: int
    library: str | None
    title: str
    body: str
    created: datetime
    expires: date | None


@dataclass(frozen=True, slots=True)
class RenewalView(_AsDict):
    id: int
    request_id: int
    requested_at: datetime
    status: RenewalStatus
    old_due: date | None
    new_due: date | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class PullSlip(_AsDict):
    request_id: int
    created: datetime
    title: str
    author: str | None
    publisher: str | None
    year: int
    isbn: str | None
    call_number: str
    lender: str
    borrower: str
    borrower_name: str
    reader_name: str
    reader_card: str | None
    delivery: Delivery
    note: str | None


def user_view(user: User) -> UserView:
    return UserView(user.id, user.login, user.role, user.library, user.status, user.name,
                    user.card_number, user.phone, user.email, user.created)


def actor_of(user: User) -> Actor:
    return Actor(user.id, user.login, user.role, user.library, user.name)


def request_view(req: Request, reader_name: str = "") -> RequestView:
    state = WORKFLOW.states[req.status]
    return RequestView(
        req.id, req.version, req.created, req.updated, req.status, state.label, state.iso18626,
        state.terminal, state.next, req.reader_id, reader_name, req.borrower, req.lender,
        req.title, req.author, req.publisher, req.year, req.isbn, req.issn, req.call_number,
        req.material_type, req.delivery, req.phone, req.note, req.record_id, req.due,
        req.due_shifted_from, req.reason_code, req.reason_text,
        req.cancel_requested_at is not None, req.batch)


def event_view(event: Event, actor_name: str | None) -> EventView:
    label = (WORKFLOW.actions[event.action].label if event.action in WORKFLOW.actions
             else EVENT_LABELS.get(event.action, event.action))
    return EventView(event.id, event.at, event.action, label, event.from_status,
                     event.to_status, event.actor_role, event.actor_library, actor_name,
                     event.reason, json.loads(event.data) if event.data else {})


def message_view(message: Message) -> MessageView:
    return MessageView(message.id, message.at, message.request_id, message.text,
                       message.read_at is not None)


def fine_view(fine: Fine, title: str) -> FineView:
    return FineView(fine.id, fine.request_id, title, fine.lender, fine.days, fine.rate,
                    fine.amount, fine.created, fine.voided_at is not None)


def renewal_view(renewal: Renewal) -> RenewalView:
    return RenewalView(renewal.id, renewal.request_id, renewal.requested_at, renewal.status,
                       renewal.old_due, renewal.new_due, renewal.reason)


# Events that are not actions of the state model.
EVENT_LABELS = {
    "submit": "提交申请",
    "undo": "撤销上一步",
    "cancel_requested": "读者申请取消",
    "cancel_declined": "取消申请未获同意",
    "renewal_requested": "读者申请续借",
    "renewal_approved": "同意续借",
    "renewal_denied": "不同意续借",
}
