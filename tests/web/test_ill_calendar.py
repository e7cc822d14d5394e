"""Closures and announcements through the staff pages (web/ill_admin.py), on SQLite and
PostgreSQL: a closed lender refuses new requests with its reopening day, the consortium
admin closes everyone, staff touch only their own library, readers read announcements."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ill_fixtures import Clock, add_user, ill_config, real_consortium, valid_form
from test_ill_pages import Visitor, flashes, text

from web import create_app


@pytest.fixture
def app(ill_database_url, tmp_path) -> Iterator:
    app = create_app({"TESTING": True, "CONSORTIUM": real_consortium(),
                      "SESSION_STORE": "memory", "SECRET_KEY": "test",
                      "PORTAL_DIR": str(tmp_path / "portal"),
                      **ill_config(ill_database_url, Clock())})  # 2025-03-03 in Beijing
    add_user(app, "staff-pku", "staff", "pku")
    add_user(app, "staff-bupt", "staff", "bupt")
    add_user(app, "admin", "admin", None)
    add_user(app, "reader", "reader", "bupt")
    yield app
    app.extensions["balis"].close()
    app.extensions["ill"].close()


def visitor(app, login: str) -> Visitor:
    person = Visitor(app)
    assert person.login(login).status_code == 302
    return person


def request_book(app, **form):
    reader = visitor(app, "reader")
    reader.get("/ill/new")
    return reader.post("/ill/new", valid_form(**form))


def test_a_closed_lender_refuses_requests_until_it_reopens(app):
    staff = visitor(app, "staff-pku")
    staff.get("/ill/staff/calendar")
    done = staff.post("/ill/staff/closures", {"name": "寒假", "start": "2025-03-01",
                                               "end": "2025-03-09"})
    assert done.status_code == 302
    page = staff.get("/ill/staff/calendar")
    assert "已登记闭馆" in flashes(page)
    assert text(page, "table.closures tbody tr td")[:4] == [
        "北京大学图书馆", "寒假", "2025-03-01", "2025-03-09"]
    refused = request_book(app, lender="pku")
    assert refused.status_code == 422
    body = refused.get_data(as_text=True)
    assert "闭馆中" in body and "2025年03月10日起受理" in body
    # Other lenders still lend.
    assert request_book(app, lender="bnu", title="另一本书").status_code == 302
    # Reopened once the closure is removed.
    closure = page.cssselect("table.closures tbody tr")[0].get("data-closure")
    staff.post(f"/ill/staff/closures/{closure}/delete")
    assert request_book(app, lender="pku").status_code == 302


def test_staff_close_only_their_library_and_the_admin_closes_everyone(app):
    staff = visitor(app, "staff-pku")
    staff.get("/ill/staff/calendar")
    staff.post("/ill/staff/closures", {"name": "借书", "start": "2025-03-01",
                                        "end": "2025-03-02", "library": "nlc"})
    assert "只能为本馆登记闭馆" in flashes(staff.get("/ill/staff/calendar"))
    staff.post("/ill/staff/closures", {"name": "x", "start": "2025-03-05",
                                        "end": "2025-03-01"})
    assert "结束日期不能早于开始日期" in flashes(staff.get("/ill/staff/calendar"))
    admin = visitor(app, "admin")
    admin.get("/ill/staff/calendar")
    admin.post("/ill/staff/closures", {"name": "春节", "start": "2025-03-03",
                                        "end": "2025-03-04", "library": ""})
    rows = text(admin.get("/ill/staff/calendar"), "table.closures tbody tr td")
    assert rows[:2] == ["全联盟", "春节"]
    assert request_book(app, lender="bnu").status_code == 422  # everyone is closed
    # Staff of one library cannot delete the consortium's closure.
    page = staff.get("/ill/staff/calendar")
    assert not page.cssselect("table.closures form")
    closure = page.cssselect("table.closures tbody tr")[0].get("data-closure")
    staff.post(f"/ill/staff/closures/{closure}/delete")
    assert "只能删除本馆的闭馆安排" in flashes(staff.get("/ill/staff/calendar"))


def test_announcements_reach_the_library_readers(app):
    staff = visitor(app, "staff-bupt")
    staff.get("/ill/staff/calendar")
    staff.post("/ill/staff/announcements", {"title": "寒假安排", "body": "寒假期间暂停物流"})
    staff.post("/ill/staff/announcements", {"title": "", "body": ""})
    assert "请填写公告标题" in " ".join(flashes(staff.get("/ill/staff/calendar")))
    reader = visitor(app, "reader")
    page = reader.get("/ill/messages")
    assert any("寒假安排" in item for item in text(page, "section.announcements li"))
    # A member's notice is public since issue 14 (BALIS's 公告信息): another member's
    # staff and readers see it too, and the portal's /notices names its library.
    other = visitor(app, "staff-pku")
    assert any("寒假安排" in item for item in text(other.get("/ill/staff/calendar"), "li"))
    assert "北京邮电大学图书馆" in " ".join(text(Visitor(app).get("/notices"), "ul.notice-list li"))


def test_readers_and_strangers_cannot_open_the_calendar(app):
    reader = visitor(app, "reader")
    reader.get("/ill/staff/calendar", status=403)
    Visitor(app).get("/ill/staff/calendar", status=403)
