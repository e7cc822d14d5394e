"""What readers are told and what libraries declare: system messages, fines,
announcements, and closures (holidays)."""

from __future__ import annotations

from datetime import date
from typing import Any, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.orm import Session

from broker.kernel.errors import Forbidden, NotFound, ValidationFailed
from ill import calendar
from ill.core import ServiceCore, unit_of_work
from ill.models import Announcement, Closure, Fine, Message, Request
from ill.values import (
    Actor,
    AnnouncementView,
    FineView,
    MessageView,
    fine_view,
    message_view,
)


class NoticesMixin(ServiceCore):
    # -- system messages (one for every status change of a reader's request)
    @unit_of_work
    def messages(self, session: Session, actor: Actor, *, unread_only: bool = False,
                 limit: int = 200) -> list[MessageView]:
        query = select(Message).where(Message.user_id == actor.id)
        if unread_only:
            query = query.where(Message.read_at.is_(None))
        rows = session.scalars(query.order_by(Message.id.desc()).limit(limit))
        return [message_view(m) for m in rows]

    @unit_of_work
    def mark_read(self, session: Session, actor: Actor,
                  message_ids: list[int] | None = None) -> int:
        """Mark the actor's messages read (all when ``message_ids`` is None)."""
        stmt = update(Message).where(Message.user_id == actor.id, Message.read_at.is_(None))
        if message_ids is not None:
            stmt = stmt.where(Message.id.in_(message_ids))
        # An UPDATE's result is a CursorResult, which counts the rows (Result does not).
        result = cast(CursorResult[Any], session.execute(stmt.values(read_at=self.now())))
        count = result.rowcount
        session.commit()
        return count or 0

    # -- fines (overdue days x the lender's fine_per_day, charged when the book comes back)
    @unit_of_work
    def fines(self, session: Session, actor: Actor) -> list[FineView]:
        """A reader's own fines; staff: fines on their library's loans, either side."""
        query = select(Fine, Request.title).join(Request, Request.id == Fine.request_id)
        if actor.role == "reader":
            query = query.where(Fine.reader_id == actor.id)
        elif actor.is_staff:
            query = query.where((Request.lender == actor.library)
                                | (Request.borrower == actor.library))
        return [fine_view(f, title) for f, title in
                session.execute(query.order_by(Fine.id.desc()))]

    # -- announcements
    @unit_of_work
    def announcements(self, session: Session, actor: Actor | None = None, *,
                      library: str | None = None) -> list[AnnouncementView]:
        """Every unexpired announcement, the consortium's and every member's, newest first.

        A member's notice (a closure, a move) matters most to other members' readers, who
        borrow from it: BALIS's 公告信息 are public, each labelled with its library
        (``AnnouncementView.library``). ``actor`` is kept for callers that pass it; it no
        longer narrows what is seen. ``library`` narrows to that member's own notices."""
        today = self.today()
        query = select(Announcement).where(
            or_(Announcement.expires.is_(None), Announcement.expires >= today))
        if library is not None:
            query = query.where(Announcement.library == library)
        return [_announcement(a) for a in
                session.scalars(query.order_by(Announcement.created.desc(),
                                                   Announcement.id.desc()))]

    @unit_of_work
    def post_announcement(self, session: Session, actor: Actor, *, title: str, body: str,
                          library: str | None = None,
                          expires: date | None = None) -> AnnouncementView:
        """Staff post to their library's readers; admins to everyone (library None)."""
        if actor.is_staff:
            library = actor.library
        elif not actor.is_admin:
            raise Forbidden("只有工作人员可以发布公告")
        errors = {}
        if not (title or "").strip():
            errors["title"] = "请填写公告标题"
        if not (body or "").strip():
            errors["body"] = "请填写公告内容"
        if errors:
            raise ValidationFailed(errors, {k: f"{k} is required" for k in errors})
        row = Announcement(library=library, title=title.strip()[:200], body=body.strip(),
                           created=self.now(), created_by=actor.id, expires=expires)
        session.add(row)
        session.flush()
        self._audit(session, actor, "announcement.post", f"announcement:{row.id}")
        session.commit()
        return _announcement(row)

    # -- closures
    @unit_of_work
    def add_closure(self, session: Session, actor: Actor, *, start: date | None,
                    end: date | None, name: str,
                    library: str | None = None) -> calendar.ClosureView:
        """A closure of the actor's library (staff) or of any library or, with library
        None, of the whole consortium (admins). A missing date is a field error."""
        if actor.is_staff:
            if library not in (None, actor.library):
                raise Forbidden("只能为本馆登记闭馆")
            library = actor.library
        elif not actor.is_admin:
            raise Forbidden("只有工作人员可以登记闭馆")
        errors: dict[str, str] = {}
        if not isinstance(start, date) or not isinstance(end, date):
            errors["start"] = "请填写起止日期"
        elif end < start:
            errors["end"] = "结束日期不能早于开始日期"
        elif (end - start).days > 200:
            errors["end"] = "一次闭馆不能超过 200 天"
        if not (name or "").strip():
            errors["name"] = "请填写闭馆名称（如 寒假）"
        if library is not None and self.library(library) is None:
            errors["library"] = "没有这个成员馆"
        if errors or not isinstance(start, date) or not isinstance(end, date):
            raise ValidationFailed(errors, {k: f"invalid {k}" for k in errors})
        row = Closure(library=library, start=start, end=end, name=name.strip()[:100],
                      created=self.now(), created_by=actor.id)
        session.add(row)
        session.flush()
        self._audit(session, actor, "closure.add", f"closure:{row.id}",
                    {"library": library, "start": start, "end": end})
        session.commit()
        return calendar.view(row)

    @unit_of_work
    def closures(self, session: Session, library: str | None = None,
                 since: date | None = None) -> list[calendar.ClosureView]:
        """Closures of ``library`` and the consortium (all libraries when None)."""
        since = since or self.today()
        if library is not None:
            return calendar.closures_for(session, [library], since)
        rows = session.scalars(select(Closure).where(Closure.end >= since)
                               .order_by(Closure.start))
        return [calendar.view(c) for c in rows]

    @unit_of_work
    def remove_closure(self, session: Session, actor: Actor, closure_id: int) -> None:
        row = session.get(Closure, closure_id)
        if row is None:
            raise NotFound(f"没有编号为 {closure_id} 的闭馆安排")
        if not actor.is_admin and not (actor.is_staff and row.library == actor.library):
            raise Forbidden("只能删除本馆的闭馆安排")
        session.delete(row)
        self._audit(session, actor, "closure.remove", f"closure:{closure_id}")
        session.commit()

    @unit_of_work
    def lender_open(self, session: Session, library: str) -> dict:
        """Whether a lender takes requests today, and if not, when it reopens."""
        closed = calendar.reopening(session, library, self.today())
        if not closed:
            return {"open": True, "closure": None, "reopens": None}
        closure, back = closed
        return {"open": False, "closure": closure.name, "reopens": back}


def _announcement(a: Announcement) -> AnnouncementView:
    return AnnouncementView(a.id, a.library, a.title, a.body, a.created, a.expires)
