"""The reader's side: the request form (prefill, validation), submitting, my requests,
cancelling, renewing, and what the ledger says about a title.

Validation follows CONTRACTS section 6: ``ValidationFailed.errors`` is ``{field: message}``
(Chinese; ``errors_en`` in English). A refusal that is not about one field (a duplicate,
the quota) is a ``Conflict`` whose message says why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from broker.kernel.errors import Conflict, Forbidden, ValidationFailed
from broker.search.merge import fold
from ill import calendar
from ill.core import optional_text, raise_if, text_field, unit_of_work
from ill.models import Event, Renewal, Request, User
from ill.transitions import TransitionsMixin
from ill.values import (
    Actor,
    CancelOutcome,
    CancelTerms,
    RenewalView,
    RequestView,
    Timeline,
    event_view,
    renewal_view,
    request_view,
)
from ill.workflow import DELIVERIES
from marc.normalization.text import isbn13, issn

REQUEST_FIELDS = ("title", "author", "publisher", "year", "isbn", "issn", "call_number",
                  "lender", "material_type", "delivery", "phone", "note", "record_id")
_YEAR = re.compile(r"^\s*(\d{4})\s*年?\s*$")


def title_key(title: str) -> str:
    """Title for comparison, as the merge compares them (紅樓夢 is 红楼梦)."""
    return fold(title)[:500]


class ReaderMixin(TransitionsMixin):
    # -- the form
    def prefill(self, actor: Actor, record: Mapping[str, Any] | None = None,
                lender: str | None = None) -> dict[str, Any]:
        """Form values from a merged record (CONTRACTS sections 4/5) and the chosen lender's
        holding, with the reader's name and phone added by the caller's profile."""
        out: dict[str, Any] = dict.fromkeys(REQUEST_FIELDS)
        out["delivery"] = "courier"
        if record:
            authors = record.get("authors") or []
            out.update(title=record.get("title"), author="；".join(authors) or
                       record.get("responsibility"), publisher=record.get("publisher"),
                       year=record.get("year"), isbn=(record.get("isbns") or [None])[0],
                       issn=(record.get("issns") or [None])[0],
                       material_type=record.get("material_type"), record_id=record.get("id"))
            holdings = [h for h in record.get("holdings") or [] if h.get("library") == lender]
            numbers = record.get("call_numbers") or [None]
            out["call_number"] = (holdings[0].get("call_number") if holdings else None) \
                or numbers[0]
        if lender:
            out["lender"] = lender
        out["name"] = actor.name
        return out

    @unit_of_work
    def validate(self, session: Session, actor: Actor, data: Mapping[str, Any]) -> dict:
        """The cleaned fields, or ValidationFailed with every problem at once."""
        errors: dict[str, str] = {}
        en: dict[str, str] = {}
        out: dict[str, Any] = {}
        out["title"] = text_field(errors, en, data, "title", 500, required="请填写题名",
                                  required_en="title is required")
        out["author"] = text_field(errors, en, data, "author", 300)
        out["publisher"] = text_field(errors, en, data, "publisher", 300)
        out["year"] = self._year(data.get("year"), errors, en)
        out["isbn"], out["issn"] = self._identifiers(data, errors, en)
        out["call_number"] = text_field(errors, en, data, "call_number", 100,
                                        required="请填写索书号",
                                        required_en="call number is required")
        out["material_type"] = text_field(errors, en, data, "material_type", 40)
        out["record_id"] = text_field(errors, en, data, "record_id", 200)
        out["phone"] = text_field(errors, en, data, "phone", 30)
        note = data.get("note")
        if isinstance(note, str) and len(note.strip()) > 50:
            errors["note"] = f"备注不能超过 50 个字（现有 {len(note.strip())} 个）"
            en["note"] = "note: at most 50 characters"
        else:
            out["note"] = text_field(errors, en, data, "note", 50)
        delivery = data.get("delivery")
        delivery = delivery.strip() if isinstance(delivery, str) else delivery
        if delivery in (None, ""):
            errors["delivery"], en["delivery"] = "请选择取书方式", "delivery is required"
        elif not isinstance(delivery, str) or delivery not in DELIVERIES:  # [] is unhashable
            errors["delivery"] = "取书方式须为快递到本馆（courier）或到出借馆自取（pickup）"
            en["delivery"] = "delivery must be courier or pickup"
        out["delivery"] = delivery
        out["lender"] = self._lender(session, actor, data.get("lender"), errors, en,
                                     direct=not out["record_id"])
        raise_if(errors, en)
        return out

    def _year(self, value: Any, errors: dict, en: dict) -> int | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            errors["year"], en["year"] = "请填写出版年", "year is required"
            return None
        match = _YEAR.match(str(value)) if not isinstance(value, bool) else None
        year = int(match.group(1)) if match else None
        if year is None or not 1000 <= year <= self.today().year + 1:
            errors["year"] = "出版年须为四位数字的年份，如 2008"
            en["year"] = "year must be a four-digit year such as 2008"
        return year

    @staticmethod
    def _identifiers(data: Mapping[str, Any], errors: dict, en: dict) -> tuple:
        raw_isbn = text_field(errors, en, data, "isbn", 30)
        raw_issn = text_field(errors, en, data, "issn", 30)
        found_isbn = isbn13(raw_isbn) if raw_isbn else None
        found_issn = issn(raw_issn) if raw_issn else None
        if raw_isbn and not found_isbn:
            found_issn = found_issn or issn(raw_isbn)  # an ISSN typed into the ISBN box
            if not found_issn:
                errors["isbn"], en["isbn"] = "ISBN 无效（请核对位数和校验位）", "not a valid ISBN"
        if raw_issn and not found_issn:
            errors["issn"], en["issn"] = "ISSN 无效", "not a valid ISSN"
        return found_isbn, found_issn

    def _lender(self, session: Session, actor: Actor, value: Any, errors: dict,
                en: dict, *, direct: bool = False) -> str | None:
        """The lender's id, or its problem in ``errors``; ``direct``: the request was typed
        in without a record (the direct request form), which some lenders refuse."""
        value = value.strip() if isinstance(value, str) else value
        if not value:
            errors["lender"], en["lender"] = "请选择出借馆", "lender is required"
            return None
        lib = self.library(value) if isinstance(value, str) else None
        if lib is None:
            errors["lender"], en["lender"] = "没有这个成员馆", f"no member library {value!r}"
            return None
        if lib.id == actor.library:
            errors["lender"] = "不能向本馆申请馆际互借，请直接在本馆借阅"
            en["lender"] = "the lender is your own library"
        elif not lib.ill.lends:
            errors["lender"] = f"{lib.name}不提供馆际互借外借服务"
            en["lender"] = f"{lib.id} does not lend through ILL"
        elif direct and not lib.ill.direct_requests:
            errors["lender"] = (f"{lib.name}不受理直接申请，请检索该馆馆藏，"
                                "从书目记录页面申请馆际互借")
            en["lender"] = (f"{lib.id} takes no direct requests: find the book in its "
                            "catalogue and request it from the record")
        else:
            closed = calendar.reopening(session, lib.id, self.today())
            if closed:
                closure, back = closed
                errors["lender"] = f"{lib.name}闭馆中（{closure.name}），{back:%Y年%m月%d日}起受理"
                en["lender"] = f"{lib.id} is closed ({closure.name}) until {back}"
        return lib.id

    # -- submitting
    @unit_of_work
    def create_request(self, session: Session, actor: Actor, data: Mapping[str, Any], *,
                       idempotency_key: str | None = None) -> RequestView:
        """Submit a request. A repeated ``idempotency_key`` returns the first request."""
        self.require_reader(actor)
        clean = self.validate(session, actor, data)
        # One reader's submissions queue here, so the duplicate and quota checks below see
        # every earlier one (PostgreSQL row lock; SQLite's BEGIN IMMEDIATE already did).
        reader = self._user(session, actor.id, lock=True)
        if reader.status != "active":
            raise Forbidden("您的账号尚未通过审核或已停用")
        key = (idempotency_key or "").strip()[:64] or None
        if key:
            earlier = session.scalars(select(Request).where(
                Request.reader_id == actor.id, Request.idempotency_key == key)).first()
            if earlier is not None:
                session.rollback()
                return request_view(earlier, reader.name)
        active = list(self.workflow.active)
        tkey = title_key(clean["title"])
        dup = session.scalars(select(Request).where(
            Request.reader_id == actor.id, Request.status.in_(active),
            Request.title_key == tkey, Request.year == clean["year"])).first()
        if dup is not None:
            session.rollback()
            raise Conflict(f"您已有这本书的在办申请（编号 {dup.id}，"
                           f"出借馆 {self.library_name(dup.lender)}），请勿重复提交")
        count = session.scalar(select(func.count()).select_from(Request).where(
            Request.reader_id == actor.id, Request.status.in_(active))) or 0
        if count >= self.settings.max_active:
            session.rollback()
            raise Conflict(f"您已有 {count} 笔在办申请，达到上限 {self.settings.max_active} 笔；"
                           "请待已有申请完成后再提交")
        now = self.now()
        req = Request(created=now, updated=now, status=self.workflow.initial,
                      reader_id=actor.id, borrower=reader.library, title_key=tkey,
                      idempotency_key=key, **{k: v for k, v in clean.items()})
        req.phone = req.phone or reader.phone
        session.add(req)
        session.flush()
        self._event(session, req, actor, "reader", "submit", None, req.status)
        self._tell_status(session, req, [])
        session.commit()
        return request_view(req, reader.name)

    # -- reading
    @unit_of_work
    def list_requests(self, session: Session, actor: Actor, *, date_from: date | None = None,
                      date_to: date | None = None, status: str | Iterable[str] | None = None,
                      side: str | None = None, limit: int = 1000) -> list[RequestView]:
        """The actor's requests (staff: their library's; ``side`` lending/borrowing),
        newest first; dates are Beijing days of submission, both ends included."""
        query = select(Request, User.name).join(User, User.id == Request.reader_id)
        if actor.role == "reader":
            query = query.where(Request.reader_id == actor.id)
        elif actor.is_staff:
            sides = {"lending": [Request.lender == actor.library],
                     "borrowing": [Request.borrower == actor.library]}.get(
                side or "", [Request.lender == actor.library, Request.borrower == actor.library])
            query = query.where(sides[0] if len(sides) == 1 else sides[0] | sides[1])
        elif side and actor.library:
            query = query.where((Request.lender if side == "lending" else Request.borrower)
                                == actor.library)
        if date_from:
            query = query.where(Request.created >= _start_of(date_from))
        if date_to:
            query = query.where(Request.created < _start_of(date_to + timedelta(days=1)))
        if status:
            wanted = [status] if isinstance(status, str) else list(status)
            unknown = [s for s in wanted if s not in self.workflow.states]
            if unknown:
                raise ValidationFailed({"status": f"没有“{unknown[0]}”这个状态"},
                                       {"status": f"unknown status {unknown[0]!r}"})
            query = query.where(Request.status.in_(wanted))
        query = query.order_by(Request.created.desc(), Request.id.desc()).limit(limit)
        return [request_view(req, name) for req, name in session.execute(query)]

    @unit_of_work
    def get_request(self, session: Session, actor: Actor, request_id: int) -> RequestView:
        req, _role = self._request(session, actor, request_id)
        return self._view(session, req)

    @unit_of_work
    def timeline(self, session: Session, actor: Actor, request_id: int) -> Timeline:
        """The request, every event on it (oldest first), and what comes next."""
        req, role = self._request(session, actor, request_id)
        rows = session.execute(select(Event, User.name).outerjoin(User, User.id == Event.actor_id)
                               .where(Event.request_id == req.id).order_by(Event.id))
        events = tuple(event_view(e, name) for e, name in rows)
        view = self._view(session, req)
        actions = tuple(self.workflow.allowed_actions(req.status, role, req.delivery))
        return Timeline(view, events, view.next_step, actions)

    # -- cancelling and renewing
    @unit_of_work
    def cancel(self, session: Session, actor: Actor, request_id: int,
               reason: str | None = None) -> CancelOutcome:
        """Readers cancel within the lender's window before the lender acts; later the
        cancel becomes a request to staff. Staff cancel outright. Conflict once shipped."""
        reason = optional_text(reason, "reason", 200)
        req, role = self._request(session, actor, request_id, lock=True)
        if req.status not in self.workflow.sources("cancel"):
            session.rollback()
            raise Conflict(f"申请 {req.id} 已{self.workflow.states[req.status].label}，不能再取消")
        if role != "reader":
            self._apply(session, req, actor, role, "cancel", reason=reason)
            session.commit()
            return CancelOutcome(self._view(session, req), True, False, "申请已取消")
        lender = self.library(req.lender)
        window = lender.ill.cancel_window_minutes if lender else 0
        # The state model says when a reader may cancel at all (before the lender acts);
        # the lender's window, how long after submitting.
        by_reader = "cancel" in self.workflow.allowed_actions(req.status, "reader",
                                                              req.delivery)
        if by_reader and window > 0 and self.now() - req.created <= timedelta(minutes=window):
            self._apply(session, req, actor, "reader", "cancel", reason=reason)
            session.commit()
            return CancelOutcome(self._view(session, req), True, False, "申请已取消")
        why = ("出借馆已受理" if not by_reader else
               "已超过可自行取消的时限" if window > 0 else
               f"{self.library_name(req.lender)}的申请不能自行取消")
        if req.cancel_requested_at is None:
            req.cancel_requested_at, req.cancel_reason = self.now(), (reason or "")[:200] or None
            req.updated = self.now()
            self._event(session, req, actor, "reader", "cancel_requested", req.status,
                        req.status, reason=reason)
            self._tell(session, req.reader_id, f"申请 {req.id}：{why}，已转为取消申请，"
                       "等待馆际互借工作人员处理", req.id)
            session.commit()
        else:
            session.rollback()
        return CancelOutcome(self._view(session, req), False, True,
                             f"{why}，已转为取消申请，等待工作人员处理")

    def cancel_terms(self, view: RequestView) -> CancelTerms:
        """What ``cancel`` would do for the request's reader now, by the same rules: the
        pages show it as a deadline and name the button after it."""
        if view.status not in self.workflow.sources("cancel"):
            return CancelTerms("none", None)
        lender = self.library(view.lender)
        window = lender.ill.cancel_window_minutes if lender else 0
        by_reader = "cancel" in self.workflow.allowed_actions(view.status, "reader",
                                                              view.delivery)
        until = view.created + timedelta(minutes=window) if by_reader and window > 0 else None
        if until is not None and self.now() <= until:
            return CancelTerms("self", until)
        return CancelTerms("ask", None)

    @unit_of_work
    def request_renewal(self, session: Session, actor: Actor, request_id: int,
                        reason: str | None = None) -> RenewalView:
        """A reader asks the lender for more time while the book is with them."""
        reason = optional_text(reason, "reason", 200)
        req, role = self._request(session, actor, request_id, lock=True)
        if role != "reader":
            raise Forbidden("只有借书的读者本人可以申请续借")
        if req.status not in self.workflow.groups.renewable:
            raise Conflict(f"申请 {req.id} 当前为“{self.workflow.states[req.status].label}”，"
                           "不能续借")
        renewals = session.scalars(select(Renewal).where(Renewal.request_id == req.id)).all()
        if any(r.status == "pending" for r in renewals):
            raise Conflict("已有续借申请等待出借馆处理")
        if sum(r.status == "approved" for r in renewals) >= self.settings.max_renewals:
            raise Conflict(f"每笔借阅最多续借 {self.settings.max_renewals} 次")
        renewal = Renewal(request_id=req.id, requested_at=self.now(), status="pending",
                          old_due=req.due, reason=(reason or "")[:200] or None)
        session.add(renewal)
        req.updated = self.now()
        self._event(session, req, actor, "reader", "renewal_requested", req.status, req.status,
                    reason=reason)
        session.commit()
        return renewal_view(renewal)

    # -- the ledger about a title (the record page's 借阅关系图)
    @unit_of_work
    def title_ledger(self, session: Session, *, record_ids: Iterable[str] = (),
                     isbns: Iterable[str] = ()) -> dict[str, Any]:
        """How often a title was requested, filled, and between which libraries."""
        ids, numbers = list(record_ids), [n for n in (isbn13(i) for i in isbns) if n]
        if not ids and not numbers:
            return {"requested": 0, "filled": 0, "pairs": []}
        matches = [Request.record_id.in_(ids)] if ids else []
        if numbers:
            matches.append(Request.isbn.in_(numbers))
        filled = self.workflow.groups.supplied
        rows = session.execute(select(Request.lender, Request.borrower, Request.status)
                               .where(or_(*matches))).all()
        pairs: dict[tuple[str, str], int] = {}
        for lender, borrower, _status in rows:
            pairs[(lender, borrower)] = pairs.get((lender, borrower), 0) + 1
        return {"requested": len(rows), "filled": sum(s in filled for *_, s in rows),
                "pairs": [{"lender": lend, "borrower": borrow, "count": n,
                           "lender_name": self.library_name(lend),
                           "borrower_name": self.library_name(borrow)}
                          for (lend, borrow), n in sorted(pairs.items(),
                                                          key=lambda kv: (-kv[1], kv[0]))]}


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=calendar.BEIJING)
