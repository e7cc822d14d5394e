"""What every part of the ILL service shares: settings, the clock, access checks, events,
and the unit of work.

``ServiceCore`` is the base of the mixins that make up ``ill.service.IllService``. Every
public method that takes an SQLAlchemy ``Session`` (and, where someone acts, an ``Actor``)
is marked ``@unit_of_work``: it commits its own work, so one call is one transaction, and
it raises only errors from broker.kernel.errors (ValidationFailed, Conflict, Forbidden,
NotFound, AuthenticationFailed).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.kernel.config import Consortium, Library
from broker.kernel.errors import Forbidden, NotFound, ValidationFailed
from ill import calendar
from ill.models import Audit, Event, Message, Request, User
from ill.values import Actor, RequestView, request_view
from ill.workflow import WORKFLOW, RequestRole, Workflow

_Service = TypeVar("_Service", bound="ServiceCore")
_Params = ParamSpec("_Params")
_Result = TypeVar("_Result")


def unit_of_work(method: Callable[Concatenate[_Service, Session, _Params], _Result]
                 ) -> Callable[Concatenate[_Service, Session, _Params], _Result]:
    """One call, one transaction: end whatever transaction the call left open, commit
    done or not.

    The method commits its own work; what remains (reads after the commit, or a failure's
    half-done changes) is rolled back, so no call leaves SQLite's write lock held or a
    PostgreSQL transaction idle while the caller renders its answer. Nothing is retried:
    the loser of a race gets the method's own Conflict. A marked method that calls another
    (``issue_token`` calls ``authenticate``) ends the transaction when the inner one
    returns, too: each is a unit of its own."""

    @functools.wraps(method)
    def call(self: _Service, session: Session, *args: _Params.args,
             **kwargs: _Params.kwargs) -> _Result:
        try:
            return method(self, session, *args, **kwargs)
        finally:
            if session.in_transaction():
                session.rollback()

    return call


def _attention_hours() -> dict[str, int]:
    return {name: state.attention_hours for name, state in WORKFLOW.states.items()
            if state.attention_hours is not None}


@dataclass(frozen=True, slots=True)
class IllSettings:
    """Consortium-wide ILL policy that is not per library (per-library: libraries.yaml)."""

    max_active: int = 10  # active requests per reader (the quota)
    max_renewals: int = 1
    login_failures: int = 5  # failed logins per account within login_window_minutes ...
    login_window_minutes: int = 15  # ... before further attempts are refused
    password_min_length: int = 8
    scrypt_n: int = 2**15
    # "Needs attention": a request waiting longer than this many hours in a state
    # (default: the states' attention_hours in states.yaml).
    attention_hours: Mapping[str, int] = field(default_factory=_attention_hours)


class ServiceCore:
    def __init__(self, consortium: Consortium, settings: IllSettings | None = None, *,
                 clock: Callable[[], datetime] = calendar.utc_now,
                 workflow: Workflow = WORKFLOW) -> None:
        self.consortium = consortium
        self.settings = settings or IllSettings()
        self.clock = clock
        self.workflow = workflow
        self._libraries = {lib.id: lib for lib in consortium.libraries}

    # -- time and places
    def now(self) -> datetime:
        moment = self.clock()
        if moment.tzinfo is None:
            raise ValueError("the ILL clock must return aware datetimes")
        return moment

    def today(self) -> date:
        return calendar.local_date(self.now())

    def library(self, library_id: str) -> Library | None:
        return self._libraries.get(library_id)

    def library_name(self, library_id: str | None) -> str:
        lib = self._libraries.get(library_id or "")
        return lib.name if lib else (library_id or "联盟")

    # -- loading with access checks
    def _user(self, session: Session, user_id: int, *, lock: bool = False) -> User:
        if not _storable_id(user_id):
            raise NotFound(f"没有编号为 {user_id} 的用户")
        query = select(User).where(User.id == user_id)
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        user = session.scalars(query).first()
        if user is None:
            raise NotFound(f"没有编号为 {user_id} 的用户")
        return user

    def _request(self, session: Session, actor: Actor, request_id: int, *,
                 lock: bool = False) -> tuple[Request, RequestRole]:
        """The request and the actor's role on it (reader/lender/borrower/admin).

        NotFound if it does not exist; Forbidden if the actor has nothing to do with it."""
        if not _storable_id(request_id):
            raise NotFound(f"没有编号为 {request_id} 的申请")
        query = select(Request).where(Request.id == request_id)
        if lock:
            # Two staff, or a reader and a lender, acting at once: the second waits here
            # and then sees the first one's result (PostgreSQL; SQLite locks at BEGIN).
            query = query.with_for_update().execution_options(populate_existing=True)
        req = session.scalars(query).first()
        if req is None:
            raise NotFound(f"没有编号为 {request_id} 的申请")
        return req, self.role_on(actor, req)

    def _view(self, session: Session, req: Request) -> RequestView:
        """The request as callers see it, with its reader's name."""
        return request_view(req, self._user(session, req.reader_id).name)

    def role_on(self, actor: Actor, req: Request) -> RequestRole:
        if actor.is_admin:
            return "admin"
        if actor.role == "reader" and req.reader_id == actor.id:
            return "reader"
        if actor.is_staff and actor.library == req.lender:
            return "lender"
        if actor.is_staff and actor.library == req.borrower:
            return "borrower"
        raise Forbidden(f"申请 {req.id} 不属于您或您的图书馆")

    @staticmethod
    def require_staff(actor: Actor, library: str | None = None) -> None:
        """Staff of ``library`` (any library when None), or an admin."""
        if actor.is_admin:
            return
        if not actor.is_staff or (library is not None and actor.library != library):
            raise Forbidden("只有本馆馆际互借工作人员可以执行此操作")

    @staticmethod
    def require_reader(actor: Actor) -> None:
        if actor.role != "reader":
            raise Forbidden("只有读者可以执行此操作")

    # -- the ledger's append-only records
    def _event(self, session: Session, req: Request, actor: Actor | None, role: RequestRole,
               action: str, from_status: str | None, to_status: str, *,
               reason: str | None = None, data: dict[str, Any] | None = None) -> Event:
        event = Event(request_id=req.id, at=self.now(), actor_id=actor.id if actor else None,
                      actor_role=role, actor_library=actor.library if actor else None,
                      action=action, from_status=from_status, to_status=to_status,
                      reason=reason, data=json.dumps(data, ensure_ascii=False, default=str)
                      if data else None)
        session.add(event)
        if actor is not None and role in ("lender", "borrower", "admin"):
            self._audit(session, actor, f"request.{action}", f"request:{req.id}",
                        {"from": from_status, "to": to_status, "reason": reason})
        return event

    def _tell(self, session: Session, user_id: int, text: str,
              request_id: int | None = None) -> None:
        session.add(Message(user_id=user_id, request_id=request_id, at=self.now(),
                            text=text[:500]))

    def _audit(self, session: Session, actor: Actor | None, action: str, target: str,
               detail: dict[str, Any] | None = None) -> None:
        session.add(Audit(at=self.now(), actor_id=actor.id if actor else None, action=action,
                          target=target, detail=json.dumps(detail, ensure_ascii=False,
                                                           default=str) if detail else None))


def _storable_id(value: int) -> bool:
    """Whether a database could hold this id: SQLite cannot even compare with an integer
    beyond 64 bits (OverflowError), so an id typed into an address is checked first."""
    return isinstance(value, int) and 0 < value < 2**63


def text_field(errors: dict[str, str], errors_en: dict[str, str], data: Mapping[str, Any],
               name: str, limit: int, *, required: str | None = None,
               required_en: str | None = None) -> str | None:
    """A trimmed text field; a missing required one or one too long is an error."""
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors[name] = required
            errors_en[name] = required_en or required
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        errors[name], errors_en[name] = "格式不正确", "must be text"
        return None
    text = str(value).strip()
    if len(text) > limit:
        errors[name] = f"不能超过 {limit} 个字"
        errors_en[name] = f"at most {limit} characters"
        return None
    return text


def raise_if(errors: dict[str, str], errors_en: dict[str, str]) -> None:
    if errors:
        raise ValidationFailed(errors, errors_en)


def optional_text(value: Any, field: str, limit: int = 500) -> str | None:
    """A free-text argument (a reason, a batch label) from a form or JSON: text or nothing."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationFailed({field: "格式不正确"}, {field: "must be text"})
    return value.strip()[:limit] or None
