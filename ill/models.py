"""The ILL ledger's tables (SQLAlchemy 2 declarative).

One ``requests`` row per loan, shared by both sides: the borrowing and the lending library
read and change the same row, so their views cannot drift apart. Every change of its
``status`` appends an ``events`` row (who, when, from, to, reason); events are never
updated or deleted, so every status can be explained by replaying them. ``version`` is
SQLAlchemy's version counter: an UPDATE that did not see the newest row changes nothing
and fails instead of overwriting someone else's action.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Literal, get_args

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ill.workflow import Delivery, RequestRole

# The fixed words stored in the ledger's text columns (and shown as such in its JSON).
UserRole = Literal["reader", "staff", "admin"]
USER_ROLES: tuple[UserRole, ...] = get_args(UserRole)
# pending: registered, waiting for the home library's approval; disabled: refused or
# switched off; only active accounts log in.
UserStatus = Literal["pending", "active", "disabled"]
RenewalStatus = Literal["pending", "approved", "denied"]

# Stable constraint names, so migrations can refer to them on every database.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """An aware UTC datetime on every database (SQLite keeps no time zone of its own)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ILL ledger; use aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("library", "card_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[UserRole] = mapped_column(String(10))
    library: Mapped[str | None] = mapped_column(String(40), index=True)
    status: Mapped[UserStatus] = mapped_column(String(10), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    card_number: Mapped[str | None] = mapped_column(String(40))
    phone: Mapped[str | None] = mapped_column(String(30))
    email: Mapped[str | None] = mapped_column(String(200))
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Request(Base):
    __tablename__ = "requests"
    __table_args__ = (
        UniqueConstraint("reader_id", "idempotency_key"),
        Index("ix_requests_lender_status", "lender", "status"),
        Index("ix_requests_borrower_status", "borrower", "status"),
        Index("ix_requests_reader_status", "reader_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20))
    reader_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    borrower: Mapped[str] = mapped_column(String(40))  # the reader's home library
    lender: Mapped[str] = mapped_column(String(40))
    # What was asked for (CONTRACTS section 6), as the reader saw it.
    title: Mapped[str] = mapped_column(String(500))
    title_key: Mapped[str] = mapped_column(String(500), index=True)  # for duplicates, stats
    author: Mapped[str | None] = mapped_column(String(300))
    publisher: Mapped[str | None] = mapped_column(String(300))
    year: Mapped[int] = mapped_column(Integer)
    isbn: Mapped[str | None] = mapped_column(String(13), index=True)
    issn: Mapped[str | None] = mapped_column(String(9))
    call_number: Mapped[str] = mapped_column(String(100))
    material_type: Mapped[str | None] = mapped_column(String(40))
    delivery: Mapped[Delivery] = mapped_column(String(10))
    phone: Mapped[str | None] = mapped_column(String(30))
    note: Mapped[str | None] = mapped_column(String(50))
    record_id: Mapped[str | None] = mapped_column(String(200), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    # The loan's state beyond its status.
    due: Mapped[date | None] = mapped_column(Date)
    due_shifted_from: Mapped[date | None] = mapped_column(Date)  # closure rule moved it
    reason_code: Mapped[str | None] = mapped_column(String(40))  # ISO 18626 ReasonUnfilled
    reason_text: Mapped[str | None] = mapped_column(String(500))
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str | None] = mapped_column(String(200))
    batch: Mapped[str | None] = mapped_column(String(60))  # courier batch of the last trip

    # Read-only: SQLAlchemy copies it (a plain dict would be one shared mutable default).
    __mapper_args__ = MappingProxyType({"version_id_col": version})


class Event(Base):
    """Append-only: one row for every action on a request (status change or not)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: the system
    actor_role: Mapped[RequestRole] = mapped_column(String(10))
    actor_library: Mapped[str | None] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(30))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(500))
    data: Mapped[str | None] = mapped_column(Text)  # JSON: what else changed (due, batch)


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    text: Mapped[str] = mapped_column(String(500))
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Fine(Base):
    __tablename__ = "fines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    lender: Mapped[str] = mapped_column(String(40))
    days: Mapped[int] = mapped_column(Integer)
    rate: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"))
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # its action was undone


class Renewal(Base):
    __tablename__ = "renewals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[RenewalStatus] = mapped_column(String(10))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    old_due: Mapped[date | None] = mapped_column(Date)
    new_due: Mapped[date | None] = mapped_column(Date)
    reason: Mapped[str | None] = mapped_column(String(200))


class Closure(Base):
    """A closure (winter/summer break, public holiday): library None = the consortium."""

    __tablename__ = "closures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    library: Mapped[str | None] = mapped_column(String(40), index=True)
    start: Mapped[date] = mapped_column(Date)
    end: Mapped[date] = mapped_column(Date)  # inclusive
    name: Mapped[str] = mapped_column(String(100))
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Announcement(Base):
    __tablename__ = "announcements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    library: Mapped[str | None] = mapped_column(String(40))  # None: the whole consortium
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    expires: Mapped[date | None] = mapped_column(Date)


class LoginAttempt(Base):
    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_login_at", "login", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    login: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    ok: Mapped[bool] = mapped_column(Boolean)


class Audit(Base):
    """Staff and admin actions on anything (requests also have their events)."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(80))  # "request:12", "user:3", "closure:2"
    detail: Mapped[str | None] = mapped_column(Text)


# --- the consortium self-pickup card (联盟自取借书证) and e-mail (migration 0002) ----------

# pending: applied, waiting for the home library; refused: the home library said no;
# active: issued (valid between valid_from and valid_until); revoked: withdrawn early.
CardStatus = Literal["pending", "active", "refused", "revoked"]
# pending: waiting (or waiting again after a failed attempt); sending: claimed by a sender;
# sent; failed: given up (a permanent refusal or too many attempts); uncertain: a sender
# stopped between handing it to the server and marking it, so it is not sent again.
MailStatus = Literal["pending", "sending", "sent", "failed", "uncertain"]


class PickupCard(Base):
    """One application for the card; a reader holds at most one pending or active one."""

    __tablename__ = "pickup_cards"
    __table_args__ = (Index("ix_pickup_cards_library_status", "library", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str | None] = mapped_column(String(20), unique=True)  # set when issued
    reader_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    library: Mapped[str] = mapped_column(String(40))  # the reader's home library, issuing it
    status: Mapped[CardStatus] = mapped_column(String(10))
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(String(200))  # the reader's, with the application
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)  # inclusive
    reason: Mapped[str | None] = mapped_column(String(200))  # why refused or revoked


class MailOutbox(Base):
    """An e-mail to send, written in the transaction of what it tells about."""

    __tablename__ = "mail_outbox"
    __table_args__ = (Index("ix_mail_outbox_status_next_attempt", "status", "next_attempt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"))
    kind: Mapped[str] = mapped_column(String(20))  # status, reminder, overdue
    recipient: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(200), unique=True)  # the Message-ID header
    status: Mapped[MailStatus] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))


class LoanNotice(Base):
    """A due-date reminder or overdue notice generated for a request on a day: the unique
    key makes generating them again the same day (a second run, a second process) a no-op."""

    __tablename__ = "loan_notices"
    __table_args__ = (UniqueConstraint("request_id", "kind", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"))
    kind: Mapped[str] = mapped_column(String(10))  # reminder, overdue
    day: Mapped[date] = mapped_column(Date)  # the Beijing day it was generated for
    created: Mapped[datetime] = mapped_column(UTCDateTime)
