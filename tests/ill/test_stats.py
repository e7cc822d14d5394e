"""Statistics against numbers worked out by hand from a scripted month of loans."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from ill_helpers import START, form

from broker.kernel.errors import Forbidden, ValidationFailed
from ill.service import statistics_rows, to_csv
from ill.stats import percentile

MARCH = (date(2025, 3, 1), date(2025, 3, 31))
APRIL = (date(2025, 4, 1), date(2025, 4, 30))


@pytest.fixture
def month(db, svc, people, clock):
    """The script (hours after Monday 2025-03-03 10:00 Beijing):

    R1 bupt<-pku courier: accept 1, ship 2 (due 03-31), receive 26, checkout 27,
       returned 04-05 (5 days late), shipped back 04-05.
    R2 bupt<-pku: rejected NotOnShelf at 3.     R4 bupt<-pku: rejected, free text, at 3.
    R7 bupt<-pku: accept 1, ship 2, ship undone, cancelled by pku.
    R5 bupt<-nlc courier: accept+ship 4 (due 03-24), receive 74, checkout 75, never back.
    R3 pku<-cnu pick-up: accept 48, checkout 50 (due 03-19), returned 03-10, complete.
    R6 bupt<-pku, 04-07: accept+ship.
    """
    def at(hours: float) -> None:
        clock.now = START + timedelta(hours=hours)

    ids = {}
    with db.session() as s:
        at(0)
        # R3's pick-up needs the consortium self-pickup card (ill/cards.py, issue 14).
        card = svc.apply_card(s, people.reader_pku)
        svc.decide_card(s, people.pku, card.id, approve=True)
        for name, who, overrides in (
                ("R1", people.reader, {}), ("R2", people.reader2, {"title": "二"}),
                ("R4", people.reader, {"title": "四"}), ("R7", people.reader2, {"title": "七"}),
                ("R5", people.reader, {"title": "五", "lender": "nlc", "record_id": "nlc:5"}),
                ("R3", people.reader_pku, {"title": "三", "lender": "cnu",
                                           "delivery": "pickup"})):
            ids[name] = svc.create_request(s, who, form(**overrides)).id

        def act(hours, who, name, action, reason=None):
            at(hours)
            svc.act(s, getattr(people, who), ids[name], action, reason=reason)

        act(1, "pku", "R1", "accept")
        act(1, "pku", "R7", "accept")
        act(2, "pku", "R1", "ship")
        act(2, "pku", "R7", "ship")
        at(2.5)
        svc.undo(s, people.pku, ids["R7"])
        act(2.6, "pku", "R7", "cancel")
        act(3, "pku", "R2", "reject", "NotOnShelf")
        act(3, "pku", "R4", "reject", "暂不外借")
        act(4, "nlc", "R5", "accept")
        act(4, "nlc", "R5", "ship")
        act(26, "bupt", "R1", "receive")
        act(27, "bupt", "R1", "checkout")
        act(48, "cnu", "R3", "accept")
        act(50, "cnu", "R3", "checkout")
        act(74, "bupt", "R5", "receive")
        act(75, "bupt", "R5", "checkout")
        act(168, "cnu", "R3", "return")
        act(168, "cnu", "R3", "complete")
        act(792, "bupt", "R1", "return")  # 2025-04-05
        act(793, "bupt", "R1", "ship_back")
        at(840)  # 2025-04-07
        ids["R6"] = svc.create_request(s, people.reader2, form(title="六")).id
        act(840, "pku", "R6", "accept")
        act(840, "pku", "R6", "ship")
        at(912)  # 2025-04-10
    return ids


def test_per_library_numbers(db, svc, people, month):
    with db.session() as s:
        pku = svc.statistics(s, people.pku, "pku", *MARCH)
        bupt = svc.statistics(s, people.bupt, "bupt", *MARCH)
        [fine] = svc.fines(s, people.reader)
    assert {k: pku[k] for k in ("requested", "received_requests", "lent", "borrowed",
                                "filled", "unfilled", "unfilled_by_reason", "overdue")} == {
        "requested": 1, "received_requests": 4, "lent": 1, "borrowed": 1, "filled": 1,
        "unfilled": 2, "unfilled_by_reason": {"NotOnShelf": 1, "Other": 1}, "overdue": 0}
    assert pku["turnaround_hours"] == {"count": 1, "median": 50.0, "p90": 50.0}
    assert {k: bupt[k] for k in ("requested", "received_requests", "lent", "borrowed",
                                 "filled", "unfilled", "overdue")} == {
        "requested": 5, "received_requests": 0, "lent": 0, "borrowed": 2, "filled": 0,
        "unfilled": 0, "overdue": 2}
    assert bupt["turnaround_hours"] == {"count": 2, "median": 50.0, "p90": 74.0}
    assert (fine.days, fine.amount) == (5, Decimal("0.50"))


def test_staff_see_only_their_library(db, svc, people, month):
    with db.session() as s:
        with pytest.raises(Forbidden):
            svc.statistics(s, people.bupt, "pku", *MARCH)
        with pytest.raises(Forbidden):
            svc.subsidy_report(s, people.reader, *MARCH)
        assert svc.statistics(s, people.admin, "pku", *MARCH)["lent"] == 1
        with pytest.raises(ValidationFailed):
            svc.statistics(s, people.pku, "pku", MARCH[1], MARCH[0])


def test_subsidy_courier_and_monthly_reports(db, svc, people, month):
    with db.session() as s:
        subsidy = svc.subsidy_report(s, people.admin, *MARCH)
        courier_march = svc.courier_report(s, people.admin, *MARCH)
        courier_april = svc.courier_report(s, people.admin, *APRIL)
        monthly = svc.monthly_volume(s, people.admin, MARCH[0], APRIL[1])
    assert [(r["library"], r["lent"]) for r in subsidy] == [
        ("cnu", 1), ("nlc", 1), ("pku", 1), ("bupt", 0), ("ruc", 0)]
    assert [(r["from"], r["to"], r["shipments"], r["outbound"], r["returns"], r["batches"])
            for r in courier_march] == [("nlc", "bupt", 1, 1, 0, 1), ("pku", "bupt", 1, 1, 0, 1)]
    assert [(r["from"], r["to"], r["outbound"], r["returns"]) for r in courier_april] == [
        ("bupt", "pku", 0, 1), ("pku", "bupt", 1, 0)]
    assert monthly["months"] == ["2025-03", "2025-04"]
    assert [(r["library"], r["lent"]) for r in monthly["libraries"]] == [
        ("cnu", [1, 0]), ("nlc", [1, 0]), ("pku", [1, 1])]


def test_csv_export(db, svc, people, month):
    with db.session() as s:
        subsidy = svc.subsidy_report(s, people.admin, *MARCH)
        stats = svc.statistics(s, people.pku, "pku", *MARCH)
    text = to_csv(subsidy, ["library", "library_name", "lent"])
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == ["library", "library_name", "lent"]
    assert rows[1] == ["cnu", "首都师范大学图书馆", "1"] and len(rows) == 6
    measures = {r["measure"]: r["value"] for r in statistics_rows(stats)}
    assert measures["unfilled:NotOnShelf"] == 1 and measures["turnaround_hours:p90"] == 50.0
    assert to_csv([], ["a"], bom=False) == "a\r\n"


def test_percentile_is_nearest_rank():
    assert percentile(list(range(1, 11)), 90) == 9
    assert percentile([5.0], 90) == 5.0 and percentile([], 50) is None
    assert percentile([1, 2, 3, 4], 50) == 2
