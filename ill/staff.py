"""The staff side: actions on requests, undo, cancel and renewal decisions, the three
queues, pull slips, and the scheduled overdue sweep."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from broker.kernel.errors import Conflict, Forbidden, ValidationFailed
from ill import calendar
from ill.core import optional_text, unit_of_work
from ill.models import Event, Renewal, Request, User
from ill.transitions import TransitionsMixin
from ill.values import Actor, PullSlip, RenewalView, RequestView, renewal_view, request_view
from ill.workflow import RequestRole

# lending: requests to the library; borrowing: its readers' requests; attention: either,
# when something waits on staff.
Queue = Literal["lending", "borrowing", "attention"]
QUEUES: tuple[Queue, ...] = get_args(Queue)


@dataclass(frozen=True, slots=True)
class QueueItem:
    request: RequestView
    reasons: tuple[str, ...]  # why it needs attention (empty in the other queues)
    actions: tuple[str, ...]  # what the asking staff member may do now
    renewal_pending: bool = False  # the reader asked for more time: the lender decides

    def as_dict(self) -> dict:
        return {"request": self.request.as_dict(), "reasons": list(self.reasons),
                "actions": list(self.actions), "renewal_pending": self.renewal_pending}


class StaffMixin(TransitionsMixin):
    @unit_of_work
    def act(self, session: Session, actor: Actor, request_id: int, action: str, *,
            reason: str | None = None, batch: str | None = None,
            expected_version: int | None = None) -> RequestView:
        """Take a state-model action (accept, reject, ship, receive, checkout, return,
        ship_back, complete, mark_overdue, mark_lost, close, cancel) on a request.

        ``expected_version``: the version the acting page showed; if the request changed
        since, Conflict says what happened. Conflict when the state does not allow the
        action, Forbidden when the actor's library is neither side (or the wrong one)."""
        if action == "undo":
            return self.undo(session, actor, request_id)
        reason, batch = optional_text(reason, "reason"), optional_text(batch, "batch", 60)
        try:
            req, role = self._request(session, actor, request_id, lock=True)
            if role == "reader":
                raise Forbidden("读者只能取消或续借自己的申请")
            self._check_version(session, req, expected_version)
            self._apply(session, req, actor, role, action, reason=reason, batch=batch)
            session.commit()
        except Conflict as exc:
            session.rollback()
            raise Conflict(f"{exc}{self._last_step(session, request_id)}") from None
        except StaleDataError:
            session.rollback()
            raise Conflict(f"申请 {request_id} 刚被他人处理，请刷新后再试") from None
        except BaseException:
            session.rollback()
            raise
        return self._view(session, req)

    @unit_of_work
    def undo(self, session: Session, actor: Actor, request_id: int) -> RequestView:
        """Undo the request's last status change (taken by the actor's side)."""
        try:
            req, role = self._request(session, actor, request_id, lock=True)
            if role == "reader":
                raise Forbidden("读者不能撤销操作")
            self._undo(session, req, actor, role)
            session.commit()
        except StaleDataError:
            session.rollback()
            raise Conflict(f"申请 {request_id} 刚被他人处理，请刷新后再试") from None
        except BaseException:
            session.rollback()
            raise
        return self._view(session, req)

    @unit_of_work
    def decide_cancel(self, session: Session, actor: Actor, request_id: int, *,
                      approve: bool, reason: str | None = None) -> RequestView:
        """Grant (cancel the request) or decline a reader's cancel request."""
        reason = optional_text(reason, "reason", 200)
        req, role = self._request(session, actor, request_id, lock=True)
        if role == "reader":
            raise Forbidden("读者不能处理取消申请")
        if req.cancel_requested_at is None:
            session.rollback()
            raise Conflict(f"申请 {req.id} 没有待处理的取消申请")
        if approve:
            self._apply(session, req, actor, role, "cancel", reason=reason or req.cancel_reason)
        else:
            req.cancel_requested_at, req.updated = None, self.now()
            self._event(session, req, actor, role, "cancel_declined", req.status, req.status,
                        reason=reason)
            self._tell(session, req.reader_id, f"申请 {req.id}：取消申请未获同意"
                       + (f"（{reason}）" if reason else ""), req.id)
        session.commit()
        return self._view(session, req)

    @unit_of_work
    def decide_renewal(self, session: Session, actor: Actor, request_id: int, *,
                       approve: bool, reason: str | None = None) -> RenewalView:
        """The lender extends the loan by its loan_days (closures shift it) or refuses."""
        reason = optional_text(reason, "reason", 200)
        req, role = self._request(session, actor, request_id, lock=True)
        if role not in ("lender", "admin"):
            raise Forbidden("只有出借馆可以处理续借申请")
        renewal = session.scalars(select(Renewal).where(
            Renewal.request_id == req.id, Renewal.status == "pending")).first()
        if renewal is None:
            session.rollback()
            raise Conflict(f"申请 {req.id} 没有待处理的续借申请")
        renewal.decided_at, renewal.decided_by = self.now(), actor.id
        renewal.reason = reason or renewal.reason
        action = "renewal_approved" if approve else "renewal_denied"
        data: dict[str, Any] = {}
        if approve and req.status in self.workflow.groups.renewable and req.due is not None:
            lender = self.library(req.lender)
            start = max(req.due, self.today())
            new_due, shifted = calendar.due_date(session, start, lender.ill.loan_days if lender
                                                 else 28, [req.borrower, req.lender])
            data["before"] = {"due": req.due.isoformat(),
                              "due_shifted_from": req.due_shifted_from.isoformat()
                              if req.due_shifted_from else None}
            req.due, req.due_shifted_from = new_due, shifted
            renewal.status, renewal.new_due = "approved", new_due
            text = f"申请 {req.id}：续借成功，应还日期 {new_due}" + (
                f"（{shifted} 适逢闭馆，已顺延）" if shifted else "")
        else:
            renewal.status = "denied"
            text = f"申请 {req.id}：续借未获同意" + (f"（{reason}）" if reason else "")
        req.updated = self.now()
        self._event(session, req, actor, role, action, req.status, req.status, reason=reason,
                    data=data)
        self._tell(session, req.reader_id, text, req.id)
        session.commit()
        return renewal_view(renewal)

    # -- queues
    @unit_of_work
    def queue(self, session: Session, actor: Actor, which: str, *,
              library: str | None = None) -> list[QueueItem]:
        """``lending`` (requests to the library), ``borrowing`` (its readers' requests) or
        ``attention`` (aging, overdue, cancel and renewal requests), oldest first.
        Admins name the ``library``."""
        if which not in QUEUES:
            raise ValidationFailed({"queue": "队列须为 lending、borrowing 或 attention"},
                                   {"queue": "queue must be lending, borrowing or attention"})
        lib = library if actor.is_admin else actor.library
        self.require_staff(actor, lib if not actor.is_admin else None)
        if not lib:
            raise ValidationFailed({"library": "请指定图书馆"}, {"library": "library required"})
        query = (select(Request, User.name).join(User, User.id == Request.reader_id)
                 .where(Request.status.in_(list(self.workflow.active)))
                 .order_by(Request.created, Request.id))
        if which == "lending":
            query = query.where(Request.lender == lib)
        elif which == "borrowing":
            query = query.where(Request.borrower == lib)
        else:
            query = query.where((Request.lender == lib) | (Request.borrower == lib))
        pending = set(session.scalars(select(Renewal.request_id).where(
            Renewal.status == "pending")))
        items = []
        for req, name in session.execute(query):
            role: RequestRole = "admin" if actor.is_admin else (
                "lender" if req.lender == lib else "borrower")
            reasons = self._attention(req, pending) if which == "attention" else ()
            if which == "attention" and not reasons:
                continue
            items.append(QueueItem(request_view(req, name), tuple(reasons), tuple(
                self.workflow.allowed_actions(req.status, role, req.delivery)),
                req.id in pending))
        return items

    def _attention(self, req: Request, pending_renewals: set[int]) -> list[str]:
        reasons = []
        hours = self.settings.attention_hours.get(req.status)
        if hours is not None and self.now() - req.updated > timedelta(hours=hours):
            label = self.workflow.states[req.status].label
            reasons.append(f"“{label}”已超过 {hours} 小时")
        if req.due is not None and req.due < self.today() \
                and req.status in self.workflow.groups.due_running:
            reasons.append(f"已逾期 {(self.today() - req.due).days} 天")
        if req.cancel_requested_at is not None:
            reasons.append("读者申请取消")
        if req.id in pending_renewals:
            reasons.append("读者申请续借")
        return reasons

    @unit_of_work
    def pull_slips(self, session: Session, actor: Actor,
                   request_ids: list[int] | None = None) -> list[PullSlip]:
        """Slips for the shelves: the given requests, or every accepted one lent by us."""
        self.require_staff(actor)
        query = (select(Request, User).join(User, User.id == Request.reader_id)
                 .order_by(Request.call_number, Request.id))
        if request_ids:
            query = query.where(Request.id.in_(request_ids))
        else:
            query = query.where(Request.lender == actor.library,
                                Request.status.in_(list(self.workflow.groups.to_pull)))
        slips = []
        for req, reader in session.execute(query):
            if not actor.is_admin and req.lender != actor.library:
                raise Forbidden(f"申请 {req.id} 不是向本馆借书")
            slips.append(PullSlip(req.id, req.created, req.title, req.author, req.publisher,
                                  req.year, req.isbn, req.call_number, req.lender, req.borrower,
                                  self.library_name(req.borrower), reader.name,
                                  reader.card_number, req.delivery, req.note))
        if request_ids and len(slips) != len(set(request_ids)):
            raise Conflict("有的申请编号不存在")
        return slips

    @unit_of_work
    def sweep_overdue(self, session: Session) -> int:
        """Scheduled job: mark loans past their due date overdue (as the system)."""
        today, due_states = self.today(), self.workflow.sources("mark_overdue")
        ids = session.scalars(select(Request.id).where(
            Request.status.in_(list(due_states)), Request.due < today)).all()
        done = 0
        for request_id in ids:
            req = session.scalars(select(Request).where(Request.id == request_id)
                                  .with_for_update()).first()
            if req is None or req.status not in due_states:
                continue
            self._apply(session, req, None, "system", "mark_overdue")
            session.commit()
            done += 1
        return done

    def _last_step(self, session: Session, request_id: int) -> str:
        """"(last: <library> <when> <action>)": why the loser of a race lost."""
        last = session.scalars(select(Event).where(Event.request_id == request_id)
                               .order_by(Event.id.desc()).limit(1)).first()
        if last is None or last.action == "submit":
            return ""
        who = self.library_name(last.actor_library) if last.actor_library else (
            "读者" if last.actor_role == "reader" else "系统")
        when = last.at.astimezone(calendar.BEIJING).strftime("%m-%d %H:%M")
        return f"（最近一步：{who}于 {when} {self._label(last.action)}）"

    def _check_version(self, session: Session, req: Request, expected: int | None) -> None:
        if expected is None or expected == req.version:
            return
        last = session.scalars(select(Event).where(Event.request_id == req.id)
                               .order_by(Event.id.desc()).limit(1)).first()
        who = self.library_name(last.actor_library) if last and last.actor_library else "他人"
        label = self._label(last.action) if last else "处理"
        at = calendar.local_date(last.at) if last else ""
        raise Conflict(f"申请 {req.id} 已被{who}于 {at} {label}，现为"
                       f"“{self.workflow.states[req.status].label}”，请刷新后再试")

