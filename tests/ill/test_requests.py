"""A request's life for the reader and both libraries: access, lists, timeline, cancel
window, renewals, fines, undo, due dates and closures, messages."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from ill_helpers import form, walk

from broker.kernel.errors import Conflict, Forbidden, NotFound, ValidationFailed
from ill.service import IllService, IllSettings


def test_each_side_sees_only_its_own(db, svc, people):
    with db.session() as s:
        req = svc.create_request(s, people.reader, form())
        for actor in (people.reader, people.pku, people.bupt, people.admin):
            assert svc.get_request(s, actor, req.id).id == req.id
        for actor in (people.reader2, people.reader_pku, people.nlc, people.cnu):
            with pytest.raises(Forbidden):
                svc.get_request(s, actor, req.id)
            with pytest.raises(Forbidden):
                svc.timeline(s, actor, req.id)
            with pytest.raises(Forbidden):
                svc.cancel(s, actor, req.id)
        with pytest.raises(Forbidden):
            svc.act(s, people.nlc, req.id, "accept")
        with pytest.raises(Forbidden):  # a reader is never staff of their own request
            svc.act(s, people.reader, req.id, "accept")
        with pytest.raises(NotFound):
            svc.get_request(s, people.admin, 999999)
        assert [r.id for r in svc.list_requests(s, people.reader2)] == []
        assert [r.id for r in svc.list_requests(s, people.nlc)] == []
        assert [r.id for r in svc.list_requests(s, people.pku, side="lending")] == [req.id]
        assert svc.list_requests(s, people.pku, side="borrowing") == []
        assert [r.id for r in svc.list_requests(s, people.bupt, side="borrowing")] == [req.id]


def test_my_requests_filter_by_date_and_status(db, svc, people, clock):
    with db.session() as s:
        first = svc.create_request(s, people.reader, form(title="一"))
        clock.advance(days=2)  # 2025-03-05
        second = svc.create_request(s, people.reader, form(title="二"))
        clock.advance(hours=14)  # 2025-03-06 00:00 Beijing: a new day there, not in UTC
        third = svc.create_request(s, people.reader, form(title="三"))
        svc.act(s, people.pku, second.id, "accept")
        mine = svc.list_requests(s, people.reader)
        assert [r.id for r in mine] == [third.id, second.id, first.id]
        assert set(mine[0].row()) == {"id", "created", "status", "due", "lender", "title"}
        days = svc.list_requests(s, people.reader, date_from=date(2025, 3, 4),
                                 date_to=date(2025, 3, 5))
        assert [r.id for r in days] == [second.id]
        assert [r.id for r in svc.list_requests(s, people.reader, date_from=date(2025, 3, 6))
                ] == [third.id]
        assert [r.id for r in svc.list_requests(s, people.reader, status="accepted")] == [
            second.id]
        with pytest.raises(ValidationFailed):
            svc.list_requests(s, people.reader, status="sleeping")


def test_a_courier_loan_from_start_to_end_is_explained_by_its_events(db, svc, people, clock):
    with db.session() as s:
        req = svc.create_request(s, people.reader, form())
    steps = [("pku", "accept"), ("pku", "ship"), ("bupt", "receive"), ("bupt", "checkout"),
             ("bupt", "return"), ("bupt", "ship_back"), ("pku", "complete")]
    with db.session() as s:
        timeline = svc.timeline(s, people.reader, req.id)
        assert timeline.next_step == "等待出借馆受理" and timeline.actions == ("cancel",)
    walk(svc, db, people, req.id, steps)
    with db.session() as s:
        timeline = svc.timeline(s, people.reader, req.id)
        events = timeline.events
        assert [e.action for e in events] == ["submit"] + [a for _w, a in steps]
        status = None
        for e in events:  # replaying the log gives the status, and it never skips a step
            assert e.from_status == status
            status = e.to_status
        assert status == timeline.request.status == "completed"
        assert events[2].actor_library == "pku" and events[2].actor_name == "s-pku-name"
        assert timeline.request.due == date(2025, 3, 31)  # shipped 03-03 + 28 days
        messages = svc.messages(s, people.reader)
        assert len(messages) == len(events)  # one for every status change
        assert "应还日期 2025-03-31" in [m.text for m in messages][-3]


def test_a_pickup_loan_happens_at_the_lenders_desk(db, svc, people):
    with db.session() as s:
        # Pick-up needs the consortium self-pickup card (ill/cards.py, issue 14).
        card = svc.apply_card(s, people.reader)
        svc.decide_card(s, people.bupt, card.id, approve=True)
        req = svc.create_request(s, people.reader, form(delivery="pickup", lender="cnu"))
    walk(svc, db, people, req.id, [("cnu", "accept"), ("cnu", "checkout")])
    with db.session() as s:
        assert svc.get_request(s, people.reader, req.id).due == date(2025, 3, 17)  # 14 days
        with pytest.raises(Conflict):
            svc.act(s, people.cnu, req.id, "ship")
        with pytest.raises(Forbidden):
            svc.act(s, people.bupt, req.id, "return")
    walk(svc, db, people, req.id, [("cnu", "return"), ("cnu", "complete")])


def test_reader_cancels_within_the_lenders_window_before_it_acts(db, svc, people, clock):
    with db.session() as s:
        early = svc.create_request(s, people.reader, form(title="一"))
        late = svc.create_request(s, people.reader, form(title="二"))
        acted = svc.create_request(s, people.reader, form(title="三"))
        svc.act(s, people.pku, acted.id, "accept")
        clock.advance(minutes=59)
        outcome = svc.cancel(s, people.reader, early.id)
        assert outcome.cancelled and outcome.request.status == "cancelled"
        outcome = svc.cancel(s, people.reader, acted.id)
        assert not outcome.cancelled and outcome.cancel_requested
        assert outcome.request.status == "accepted" and "出借馆已受理" in outcome.message
        clock.advance(minutes=2)  # 61 minutes after submission
        outcome = svc.cancel(s, people.reader, late.id)
        assert (outcome.cancelled, outcome.cancel_requested) == (False, True)
        assert "已超过可自行取消的时限" in outcome.message
        again = svc.cancel(s, people.reader, late.id)  # a double click changes nothing
        assert again.cancel_requested
        events = [e.action for e in svc.timeline(s, people.reader, late.id).events]
        assert events == ["submit", "cancel_requested"]
        # The lender's attention queue shows both cancel requests.
        attention = svc.queue(s, people.pku, "attention")
        assert {i.request.id for i in attention if "读者申请取消" in i.reasons} == {
            acted.id, late.id}
        svc.decide_cancel(s, people.pku, late.id, approve=True)
        svc.decide_cancel(s, people.pku, acted.id, approve=False, reason="已寄出")
        assert svc.get_request(s, people.reader, late.id).status == "cancelled"
        kept = svc.get_request(s, people.reader, acted.id)
        assert kept.status == "accepted" and not kept.cancel_requested
        with pytest.raises(Conflict, match="没有待处理的取消申请"):
            svc.decide_cancel(s, people.pku, acted.id, approve=True)
        svc.act(s, people.pku, acted.id, "ship")
        with pytest.raises(Conflict, match="不能再取消"):
            svc.cancel(s, people.reader, acted.id)


def test_nlc_requests_are_never_cancelled_by_the_reader(db, svc, people):
    with db.session() as s:
        req = svc.create_request(s, people.reader, form(lender="nlc", record_id="nlc:1"))
        outcome = svc.cancel(s, people.reader, req.id)  # at once: still not allowed
        assert not outcome.cancelled and outcome.cancel_requested
        assert "国家图书馆的申请不能自行取消" in outcome.message
        assert svc.cancel(s, people.nlc, req.id).cancelled  # the lender's staff can


def test_the_real_directory_gives_nlc_no_cancel_window():
    from broker.kernel.config import load

    assert load("config/libraries.yaml").library("nlc").ill.cancel_window_minutes == 0


def test_overdue_return_charges_the_lenders_rate_and_undo_voids_it(db, svc, people, clock):
    with db.session() as s:
        req = svc.create_request(s, people.reader, form(lender="cnu"))  # 0.5 yuan a day
    walk(svc, db, people, req.id, [("cnu", "accept"), ("cnu", "ship"), ("bupt", "receive"),
                                   ("bupt", "checkout")])
    clock.advance(days=20)  # due 03-17, today 03-23
    with db.session() as s:
        assert svc.sweep_overdue(s) == 1
        assert svc.get_request(s, people.reader, req.id).status == "overdue"
        assert svc.sweep_overdue(s) == 0
        svc.act(s, people.bupt, req.id, "return")
        [fine] = svc.fines(s, people.reader)
        assert (fine.days, fine.rate, fine.amount) == (6, Decimal("0.50"), Decimal("3.00"))
        assert [f.id for f in svc.fines(s, people.cnu)] == [fine.id]
        assert svc.fines(s, people.reader2) == []
        with pytest.raises(Forbidden):  # the lender did not take that step
            svc.undo(s, people.cnu, req.id)
        assert svc.undo(s, people.bupt, req.id).status == "overdue"
        assert svc.fines(s, people.reader)[0].voided
        with pytest.raises(Conflict, match="已被撤销"):
            svc.undo(s, people.bupt, req.id)


def test_undo_puts_back_the_due_date_and_the_batch(db, svc, people):
    with db.session() as s:
        req = svc.create_request(s, people.reader, form())
    walk(svc, db, people, req.id, [("pku", "accept")])
    with db.session() as s:
        shipped = svc.act(s, people.pku, req.id, "ship", batch="2025-03-03 上午")
        assert (shipped.due, shipped.batch) == (date(2025, 3, 31), "2025-03-03 上午")
        with pytest.raises(Forbidden):
            svc.undo(s, people.bupt, req.id)
        back = svc.undo(s, people.pku2, req.id)  # any staff member of the acting library
        assert (back.status, back.due, back.batch) == ("accepted", None, None)
        assert svc.timeline(s, people.reader, req.id).events[-1].data == {"undid": 3}


def test_due_dates_move_out_of_either_librarys_closure(db, svc, people, clock):
    with db.session() as s:
        # Due 03-31 falls in the borrower's closure; the day after, in the lender's.
        svc.add_closure(s, people.bupt, start=date(2025, 3, 29), end=date(2025, 3, 31),
                        name="清明调休")
        svc.add_closure(s, people.pku, start=date(2025, 4, 1), end=date(2025, 4, 2),
                        name="盘点")
        svc.add_closure(s, people.nlc, start=date(2025, 4, 3), end=date(2025, 4, 9),
                        name="与本次借阅无关")
        req = svc.create_request(s, people.reader, form())
        svc.act(s, people.pku, req.id, "accept")
        view = svc.act(s, people.pku, req.id, "ship")
        assert (view.due, view.due_shifted_from) == (date(2025, 4, 3), date(2025, 3, 31))
        assert "应还日期 2025-03-31 适逢闭馆，顺延至 2025-04-03" in svc.messages(
            s, people.reader)[0].text
        with pytest.raises(Forbidden):
            svc.add_closure(s, people.pku, start=date(2025, 5, 1), end=date(2025, 5, 5),
                            name="五一", library="bupt")
        with pytest.raises(ValidationFailed):
            svc.add_closure(s, people.pku, start=date(2025, 5, 5), end=date(2025, 5, 1),
                            name="倒着")
        assert [c.name for c in svc.closures(s, "pku")] == ["盘点"]


def test_renewal_extends_by_the_lenders_loan_days(db, svc, people, clock):
    with db.session() as s:
        req = svc.create_request(s, people.reader, form())
    with db.session() as s, pytest.raises(Conflict, match="不能续借"):
        svc.request_renewal(s, people.reader, req.id)
    walk(svc, db, people, req.id, [("pku", "accept"), ("pku", "ship"), ("bupt", "receive"),
                                   ("bupt", "checkout")])
    with db.session() as s:
        with pytest.raises(Forbidden):
            svc.request_renewal(s, people.bupt, req.id)
        renewal = svc.request_renewal(s, people.reader, req.id)
        assert renewal.status == "pending" and renewal.old_due == date(2025, 3, 31)
        with pytest.raises(Conflict, match="等待出借馆处理"):
            svc.request_renewal(s, people.reader, req.id)
        assert any("读者申请续借" in i.reasons for i in svc.queue(s, people.pku, "attention"))
        with pytest.raises(Forbidden):
            svc.decide_renewal(s, people.bupt, req.id, approve=True)
        decided = svc.decide_renewal(s, people.pku, req.id, approve=True)
        assert decided.new_due == date(2025, 4, 28)
        assert svc.get_request(s, people.reader, req.id).due == date(2025, 4, 28)
        with pytest.raises(Conflict, match="最多续借 1 次"):
            svc.request_renewal(s, people.reader, req.id)


def test_queues_and_pull_slips(db, svc, people, clock):
    with db.session() as s:
        a = svc.create_request(s, people.reader, form(title="甲", call_number="B2"))
        b = svc.create_request(s, people.reader, form(title="乙", call_number="A1"))
        c = svc.create_request(s, people.reader_pku, form(title="丙", lender="bupt"))
        svc.act(s, people.pku, a.id, "accept")
        svc.act(s, people.pku, b.id, "accept")
        lending = svc.queue(s, people.pku, "lending")
        assert [i.request.id for i in lending] == [a.id, b.id]
        assert "ship" in lending[0].actions and "receive" not in lending[0].actions
        assert [i.request.id for i in svc.queue(s, people.pku, "borrowing")] == [c.id]
        assert svc.queue(s, people.pku, "attention") == []
        clock.advance(hours=73)  # accepted for longer than 72 hours
        attention = svc.queue(s, people.pku, "attention")
        assert [i.request.id for i in attention] == [a.id, b.id, c.id]
        assert attention[0].reasons == ("“已受理”已超过 72 小时",)
        assert attention[2].reasons == ("“已提交”已超过 48 小时",)
        slips = svc.pull_slips(s, people.pku)
        assert [(p.request_id, p.call_number) for p in slips] == [(b.id, "A1"), (a.id, "B2")]
        assert slips[0].reader_name == "wang-name" and slips[0].borrower_name.startswith("北京邮电")
        with pytest.raises(Forbidden):
            svc.pull_slips(s, people.bupt, [a.id])
        with pytest.raises(Forbidden):
            svc.queue(s, people.reader, "lending")
        with pytest.raises(ValidationFailed):
            svc.queue(s, people.pku, "everything")
        assert [i.request.id for i in svc.queue(s, people.admin, "lending", library="pku")] \
            == [a.id, b.id]


def test_the_ledger_tells_how_often_a_title_went_where(db, svc, people):
    with db.session() as s:
        one = svc.create_request(s, people.reader, form(record_id="pku:1"))
        svc.create_request(s, people.reader2, form(isbn="7-02-006587-2"))
        svc.create_request(s, people.reader_pku, form(lender="nlc", isbn=None,
                                                      record_id="pku:1"))
        svc.create_request(s, people.reader_pku, form(title="别的书", isbn=None, lender="nlc",
                                                      record_id="nlc:2"))
        svc.act(s, people.pku, one.id, "accept")
        svc.act(s, people.pku, one.id, "ship")
        ledger = svc.title_ledger(s, record_ids=["pku:1"], isbns=["9787020065875"])
        assert ledger["requested"] == 3 and ledger["filled"] == 1
        assert [(p["lender"], p["borrower"], p["count"]) for p in ledger["pairs"]] == [
            ("pku", "bupt", 2), ("nlc", "pku", 1)]
        assert svc.title_ledger(s) == {"requested": 0, "filled": 0, "pairs": []}


def test_messages_announcements_and_the_home_contact(db, svc, people):
    with db.session() as s:
        svc.create_request(s, people.reader, form())
        assert len(svc.messages(s, people.reader, unread_only=True)) == 1
        assert svc.mark_read(s, people.reader) == 1
        assert svc.messages(s, people.reader, unread_only=True) == []
        svc.post_announcement(s, people.admin, title="寒假安排", body="1月15日起暂停")
        svc.post_announcement(s, people.pku, title="北大通知", body="书库搬迁",
                              expires=date(2025, 3, 2))  # already expired
        svc.post_announcement(s, people.bupt, title="北邮通知", body="新开自取点",
                              library="pku")  # staff always post to their own library
        assert [a.title for a in svc.announcements(s, people.reader)] == ["北邮通知", "寒假安排"]
        # A member's notice is public (issue 14): another member's reader and a visitor
        # see it too, labelled with its library.
        assert [a.title for a in svc.announcements(s, people.reader_pku)] == [
            "北邮通知", "寒假安排"]
        assert [a.title for a in svc.announcements(s)] == ["北邮通知", "寒假安排"]
        assert [a.library for a in svc.announcements(s)] == ["bupt", None]
        assert [a.title for a in svc.announcements(s, library="bupt")] == ["北邮通知"]
        with pytest.raises(Forbidden):
            svc.post_announcement(s, people.reader, title="x", body="y")
    assert svc.home_contact(people.reader) == {"library": "北京邮电大学图书馆", "name": "张三",
                                               "phone": "010-62282123",
                                               "email": "ill@bupt.edu.cn"}


def test_expected_version_tells_a_stale_page(db, svc, people):
    with db.session() as s:
        req = svc.create_request(s, people.reader, form())
        seen = svc.get_request(s, people.pku, req.id).version
        svc.act(s, people.pku2, req.id, "accept")
        with pytest.raises(Conflict, match="已被北京大学图书馆于 2025-03-03 受理"):
            svc.act(s, people.pku, req.id, "reject", reason="NotOnShelf",
                    expected_version=seen)
        view = svc.act(s, people.pku, req.id, "reject", reason="NotOnShelf")
        assert (view.reason_code, view.reason_text) == ("NotOnShelf", "架上无书（在借或错架）")


def test_the_clock_must_be_aware(consortium):
    from datetime import datetime

    svc = IllService(consortium, IllSettings(), clock=lambda: datetime(2025, 1, 1))
    with pytest.raises(ValueError):
        svc.now()


def test_no_call_leaves_a_transaction_open(db, svc, people):
    """A page may render long after asking: SQLite's write lock must be free by then."""
    with db.session() as s:
        req = svc.create_request(s, people.reader, form())
        assert not s.in_transaction()
        svc.get_request(s, people.pku, req.id)
        assert not s.in_transaction()
        svc.act(s, people.pku, req.id, "accept")
        assert not s.in_transaction()
        with pytest.raises(Conflict):
            svc.act(s, people.pku, req.id, "accept")
        assert not s.in_transaction()
        svc.queue(s, people.pku, "lending")
        assert not s.in_transaction()
