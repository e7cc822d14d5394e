"""Races, on both databases: two people acting on one request at the same moment, double
submissions, and 100 concurrent submissions. Threads start together at a barrier; each
has its own session, as two web requests would."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from ill_helpers import PASSWORD, form, walk
from sqlalchemy import func, select

from broker.kernel.errors import BalisError, Conflict
from ill.models import Event, Request

ROUNDS = 6


def race(db, *calls):
    """Run ``calls`` (each taking a session) at once; their results or BalisErrors."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        with db.session() as s:
            barrier.wait()
            try:
                return call(s)
            except BalisError as exc:
                return exc

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def events_of(db, request_id):
    with db.session() as s:
        return [e.action for e in s.scalars(select(Event).where(Event.request_id == request_id)
                                            .order_by(Event.id))]


def test_borrowers_cancel_and_lenders_ship_exactly_one_wins(db, svc, people):
    outcomes = Counter()
    for i in range(ROUNDS):
        with db.session() as s:
            req = svc.create_request(s, people.reader, form(title=f"书{i}"))
        walk(svc, db, people, req.id, [("pku", "accept")])
        cancel, ship = race(db, lambda s, r=req.id: svc.cancel(s, people.bupt, r),
                            lambda s, r=req.id: svc.act(s, people.pku, r, "ship"))
        winners = [x for x in (cancel, ship) if not isinstance(x, BaseException)]
        assert len(winners) == 1, (cancel, ship)
        loser = ship if winners[0] is cancel else cancel
        assert isinstance(loser, Conflict)
        with db.session() as s:
            final = svc.get_request(s, people.admin, req.id).status
        if winners[0] is cancel:
            assert final == "cancelled" and "已取消" in str(loser)
            assert events_of(db, req.id) == ["submit", "accept", "cancel"]
        else:
            assert final == "shipped" and "不能再取消" in str(loser)
            assert events_of(db, req.id) == ["submit", "accept", "ship"]
        outcomes[final] += 1
    assert sum(outcomes.values()) == ROUNDS


def test_readers_cancel_and_lenders_accept_never_both_take_effect(db, svc, people):
    for i in range(ROUNDS):
        with db.session() as s:
            req = svc.create_request(s, people.reader, form(title=f"书{i}"))
        cancel, accept = race(db, lambda s, r=req.id: svc.cancel(s, people.reader, r),
                              lambda s, r=req.id: svc.act(s, people.pku, r, "accept"))
        with db.session() as s:
            final = svc.get_request(s, people.admin, req.id)
        if isinstance(accept, Conflict):  # the reader was first: cancelled outright
            assert cancel.cancelled and final.status == "cancelled"
            assert "已取消" in str(accept)
        else:  # the lender was first: the cancel became a request to staff
            assert accept.status == "accepted" and cancel.cancel_requested
            assert final.status == "accepted" and final.cancel_requested
        assert events_of(db, req.id).count("cancel") + events_of(db, req.id).count(
            "accept") == 1


def test_two_staff_on_one_request_one_wins_and_the_other_is_told_who(db, svc, people):
    for i in range(ROUNDS):
        with db.session() as s:
            req = svc.create_request(s, people.reader, form(title=f"书{i}"))
        walk(svc, db, people, req.id, [("pku", "accept")])
        a, b = race(db, lambda s, r=req.id: svc.act(s, people.pku, r, "ship"),
                    lambda s, r=req.id: svc.act(s, people.pku2, r, "ship"))
        results = [a, b]
        assert sum(isinstance(x, Conflict) for x in results) == 1, results
        loser = next(x for x in results if isinstance(x, Conflict))
        assert "最近一步：北京大学图书馆于" in str(loser) and "寄出" in str(loser)
        assert events_of(db, req.id) == ["submit", "accept", "ship"]


def test_two_staff_accept_and_reject_at_once(db, svc, people):
    for i in range(ROUNDS):
        with db.session() as s:
            req = svc.create_request(s, people.reader, form(title=f"书{i}"))
        a, b = race(db, lambda s, r=req.id: svc.act(s, people.pku, r, "accept"),
                    lambda s, r=req.id: svc.act(s, people.pku2, r, "reject",
                                                reason="NotHeld"))
        if isinstance(b, Conflict):
            assert a.status == "accepted"
        else:  # a reject after an accept is allowed (accepted -> unfilled), so
            # either the accept lost, or both happened one after the other
            assert b.status == "unfilled"
        with db.session() as s:
            final = svc.get_request(s, people.admin, req.id).status
        actions = events_of(db, req.id)
        assert final == ("unfilled" if "reject" in actions else "accepted")
        assert actions[0] == "submit" and len(actions) == len(set(actions))


def test_a_double_submitted_form_makes_one_request(db, svc, people):
    results = race(db, *[lambda s: svc.create_request(s, people.reader, form(),
                                                      idempotency_key="form-123")] * 4)
    assert len({r.id for r in results}) == 1
    # Without a key, the duplicate check catches it: one request, the rest told why.
    results = race(db, *[lambda s: svc.create_request(s, people.reader2, form())] * 3)
    made = [r for r in results if not isinstance(r, BaseException)]
    assert len(made) == 1
    assert all(isinstance(r, Conflict) and f"编号 {made[0].id}" in str(r)
               for r in results if r is not made[0])
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Request)) == 2


def test_100_concurrent_submissions_lose_and_duplicate_nothing(db, svc, people):
    readers = []
    with db.session() as s:
        for i in range(20):
            svc.create_user(s, login=f"load{i}", password=PASSWORD, role="reader",
                            library="bupt", name=f"读者{i}")
            readers.append(svc.authenticate(s, f"load{i}", PASSWORD))
    calls = [lambda s, r=reader, n=n: svc.create_request(s, r, form(title=f"{r.login}-{n}"))
             for reader in readers for n in range(5)]
    results = race(db, *calls)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert len({r.id for r in results}) == 100
    with db.session() as s:
        rows = s.execute(select(Request.reader_id, Request.title)).all()
        assert len(rows) == 100 and len(set(rows)) == 100
        per_reader = Counter(reader_id for reader_id, _t in rows)
        assert set(per_reader.values()) == {5}
        submits = s.scalar(select(func.count()).select_from(Event)
                           .where(Event.action == "submit"))
        assert submits == 100


@pytest.mark.parametrize("attempts", [12])
def test_a_readers_concurrent_submissions_respect_the_quota(db, svc, people, attempts):
    calls = [lambda s, n=n: svc.create_request(s, people.reader, form(title=f"书{n}"))
             for n in range(attempts)]
    results = race(db, *calls)
    made = [r for r in results if not isinstance(r, BaseException)]
    assert len(made) == 10
    assert all(isinstance(r, Conflict) and "达到上限 10 笔" in str(r)
               for r in results if isinstance(r, BaseException))
