"""Taking a state-model action on a request, and undoing the last one.

Everything a transition changes besides the status (due date, reason, courier batch, a
pending cancel request) is recorded in its event's ``before``, so an undo can put it all
back; fines the action charged are voided, not deleted.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from broker.kernel.errors import Conflict, Forbidden, ValidationFailed
from broker.search import metrics
from ill import calendar
from ill.core import ServiceCore
from ill.models import Event, Fine, Request
from ill.reasons import parse_reason, reason_label
from ill.values import EVENT_LABELS, Actor
from ill.workflow import RequestRole

# Fields a transition may change and an undo restores (with how to read them back).
_RESTORABLE: dict[str, type] = {
    "due": date, "due_shifted_from": date, "reason_code": str, "reason_text": str,
    "cancel_requested_at": datetime, "cancel_reason": str, "batch": str,
}


class TransitionsMixin(ServiceCore):
    def _apply(self, session: Session, req: Request, actor: Actor | None, role: RequestRole,
               action: str, *, reason: str | None = None, batch: str | None = None) -> Event:
        """Move ``req`` by ``action`` as ``role``; the caller holds its lock and commits."""
        t = self.workflow.transition(req.status, action, role, req.delivery)
        if t.reason_required and not (reason and reason.strip()):
            raise ValidationFailed({"reason": "请说明原因"}, {"reason": "a reason is required"})
        before = {name: getattr(req, name) for name in _RESTORABLE}
        old_status, today = req.status, self.today()
        lender = self.library(req.lender)
        notes: list[str] = []
        if t.sets_due:
            days = lender.ill.loan_days if lender else 28
            req.due, req.due_shifted_from = calendar.due_date(
                session, today, days, [req.borrower, req.lender])
            if req.due_shifted_from:
                notes.append(f"应还日期 {req.due_shifted_from} 适逢闭馆，顺延至 {req.due}")
        if action == "reject":
            req.reason_code, req.reason_text = parse_reason(reason)
        elif reason and t.reason_required:
            req.reason_text = reason.strip()[:500]
        if action in ("ship", "ship_back"):
            source, target = ((req.lender, req.borrower) if action == "ship"
                              else (req.borrower, req.lender))
            req.batch = (batch or f"{today:%Y%m%d}-{source}-{target}")[:60]
        if req.cancel_requested_at is not None and action != "cancel" \
                and t.to not in self.workflow.sources("cancel"):
            # The book moved on (or the request ended) before anyone granted the cancel;
            # while it can still be cancelled (accepted), the cancel request waits.
            notes.append("您的取消申请未能办理：" + self.workflow.states[t.to].label)
            req.cancel_requested_at, req.cancel_reason = None, None
        if action == "cancel":
            req.cancel_requested_at = None
        req.status, req.updated = t.to, self.now()
        changed = {k: _dump(v) for k, v in before.items() if getattr(req, k) != v}
        data: dict[str, Any] = {"before": changed} if changed else {}
        if action in ("ship", "ship_back"):
            data["batch"] = req.batch
        event = self._event(session, req, actor, role, action, old_status, t.to,
                            reason=reason, data=data)
        if t.charges_fine and req.due is not None and today > req.due:
            session.flush()
            fine = self._charge(session, req, (today - req.due).days, event)
            notes.append(f"逾期 {fine.days} 天，罚款 {fine.amount} 元")
        self._tell_status(session, req, notes)
        metrics.ill_action(action)  # counted when applied; a failed commit is rare
        return event

    def _charge(self, session: Session, req: Request, days: int, event: Event) -> Fine:
        lender = self.library(req.lender)
        rate = Decimal(str(lender.ill.fine_per_day if lender else 0.1))
        amount = (rate * days).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        fine = Fine(request_id=req.id, reader_id=req.reader_id, lender=req.lender, days=days,
                    rate=rate, amount=amount, created=self.now(), event_id=event.id)
        session.add(fine)
        return fine

    def _tell_status(self, session: Session, req: Request, notes: list[str]) -> None:
        state = self.workflow.states[req.status]
        text = f"申请 {req.id}《{req.title[:40]}》：{state.label}"
        if req.status in self.workflow.unfilled:
            text += f"（{req.reason_text or reason_label(req.reason_code)}）"
        if req.due and req.status in self.workflow.groups.tells_due:
            text += f"，应还日期 {req.due}"
        if notes:
            text += "。" + "；".join(notes)
        if state.next:
            text += f"。{state.next}"
        self._tell(session, req.reader_id, text, req.id)

    def _undo(self, session: Session, req: Request, actor: Actor,
              role: RequestRole) -> Event:
        last = session.scalars(select(Event).where(Event.request_id == req.id)
                               .order_by(Event.id.desc()).limit(1)).first()
        if last is not None and last.action == "undo":
            raise Conflict(f"申请 {req.id} 的上一步已被撤销，不能再撤销")
        if last is None or last.from_status is None or last.from_status == last.to_status:
            raise Conflict(f"申请 {req.id} 的上一步不是状态变更，无法撤销")
        if last.to_status != req.status:
            raise Conflict(f"申请 {req.id} 的状态已变化，无法撤销")
        allowed = self.workflow.undo_roles.get(last.actor_role, frozenset())
        if role not in allowed or (role in ("lender", "borrower")
                                   and last.actor_library != actor.library):
            raise Forbidden("只能撤销本馆（或系统）执行的上一步操作")
        data = self._event_data(last)
        for name, value in (data.get("before") or {}).items():
            if name in _RESTORABLE:
                setattr(req, name, _load(value, _RESTORABLE[name]))
        session.execute(update(Fine).where(Fine.event_id == last.id, Fine.voided_at.is_(None))
                        .values(voided_at=self.now()))
        old = req.status
        req.status, req.updated = last.from_status, self.now()
        event = self._event(session, req, actor, role, "undo", old, req.status,
                            data={"undid": last.id})
        self._tell_status(session, req, [f"工作人员撤销了“{self._label(last.action)}”"])
        return event

    def _label(self, action: str) -> str:
        spec = self.workflow.actions.get(action)
        return spec.label if spec else EVENT_LABELS.get(action, action)

    @staticmethod
    def _event_data(event: Event) -> dict[str, Any]:
        return json.loads(event.data) if event.data else {}


def _dump(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value


def _load(value: Any, kind: type) -> Any:
    if value is None:
        return None
    if kind is date:
        return date.fromisoformat(value)
    if kind is datetime:
        return datetime.fromisoformat(value)
    return value
