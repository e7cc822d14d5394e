"""The ILL pages with Flask's test client, as people would use them without JavaScript: a
reader registers, the home library's staff approve, the reader requests a book found by
a real search (Zebra over Z39.50 and SRU, tests/web/conftest.py) through the form the
record page fills in, and the lender's and the home library's staff move it along while
the reader sees every step. Then what must be refused: forms without the CSRF token,
other readers' requests, staff pages for readers, password guessing.

The ILL ledger is the module's own SQLite file (conftest.py); the API's own contract
tests, on SQLite and PostgreSQL, are in test_ill_api.py.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from ill_fixtures import PASSWORD, Clock, add_user, ill_config, real_consortium, valid_form
from lxml import html
from peers.fixtures import PROBES

from web import create_app

FAZHAN = PROBES["zh_title_fazhan_baogao"]  # 9 CNMARC records, held by za (Z39.50) and zb
STAFF_PASSWORD = PASSWORD


class Visitor:
    """One person's browser without JavaScript: a cookie jar, and forms sent as a browser
    sends them (the page's CSRF token included)."""

    def __init__(self, app) -> None:
        self.client = app.test_client()
        self.token = ""

    def get(self, url: str, status: int = 200, **kw):
        response = self.client.get(url, **kw)
        assert response.status_code == status, (url, response.status_code,
                                                response.get_data(as_text=True)[:800])
        text = response.get_data(as_text=True)
        if response.mimetype == "text/html" and not response.location and text.strip():
            tree = html.fromstring(text)
            tokens = tree.cssselect("input[name=csrf_token]")
            if tokens:
                self.token = tokens[0].get("value")
            return tree
        return response

    def post(self, url: str, data: dict | None = None, *, csrf: bool = True, **kw):
        data = dict(data or {})
        if csrf:
            data["csrf_token"] = self.token
        return self.client.post(url, data=data, **kw)

    def login(self, login: str, password: str = PASSWORD):
        self.get("/login")
        return self.post("/login", {"login": login, "password": password, "next": "/"})


def text(tree, css: str) -> list[str]:
    return [" ".join(el.text_content().split()) for el in tree.cssselect(css)]


def flashes(tree) -> list[str]:
    return text(tree, "p.flash")


def form_values(form) -> dict[str, str]:
    """What a browser would send for this form as it stands."""
    values: dict[str, str] = {}
    for field in form.cssselect("input, select, textarea"):
        name = field.get("name")
        if not name or field.get("type") == "submit":
            continue
        if field.tag == "select":
            chosen = field.cssselect("option[selected]")
            values[name] = chosen[0].get("value") if chosen else ""
        elif field.get("type") == "radio":
            if field.get("checked") is not None:
                values[name] = field.get("value")
        else:
            values[name] = field.get("value") or ""
    return values


def confirmed(visitor: Visitor, response):
    """A destructive action (cancel, reject, close, mark lost, granting a cancel) answers a
    browser without JavaScript with its confirmation page: confirm it as a person would."""
    if response.status_code == 200:
        tree = html.fromstring(response.get_data(as_text=True))
        (form,) = tree.cssselect("section.ill-confirm form")
        response = visitor.post(form.get("action"), form_values(form))
    return response


def act(visitor: Visitor, request_id: int, action: str, queue: str) -> list[str]:
    """A staff member presses ``action`` on the request's row in a queue; the flashes."""
    tree = visitor.get(f"/ill/staff?queue={queue}")
    row = tree.cssselect(f'table.queue tr[data-request="{request_id}"]')
    assert row, (queue, text(tree, "table.queue tr"))
    button = row[0].cssselect(f'button[data-action="{action}"]')
    assert button, (action, text(row[0], "button"))
    form = button[0].getparent()
    response = confirmed(visitor, visitor.post(form.get("action"),
                                               {**form_values(form), "action": action}))
    assert response.status_code == 302
    assert response.headers["Location"] == f"/ill/staff?queue={queue}"
    return flashes(visitor.get(response.headers["Location"]))


@pytest.fixture(scope="module")
def staff(app) -> dict[str, Visitor]:
    """Staff of the reader's home library m (丙大学图书馆) and of the lender za."""
    out = {}
    for library in ("m", "za", "zb"):
        add_user(app, f"s-{library}", "staff", library, name=f"{library}馆员")
        out[library] = Visitor(app)
        assert out[library].login(f"s-{library}").status_code == 302
    return out


def register(app, login: str, library: str = "m", **extra) -> Visitor:
    visitor = Visitor(app)
    visitor.get("/register")
    values = {"login": login, "password": PASSWORD, "password2": PASSWORD,
              "library": library, "name": f"读者{login}", "card_number": f"M-{login}",
              "phone": "13912345678", "email": f"{login}@example.edu.cn", **extra}
    response = visitor.post("/register", values)
    assert response.status_code == 302, response.get_data(as_text=True)[:800]
    return visitor


def approve(app, staff_member: Visitor, login: str) -> list[str]:
    tree = staff_member.get("/ill/staff")
    row = tree.cssselect(f'section.registrations tr[data-user="{login}"]')
    assert row, text(tree, "section.registrations tr")
    form = row[0].cssselect("form")[0]
    response = staff_member.post(form.get("action"), {"approve": "1"})
    assert response.status_code == 302
    return flashes(staff_member.get(response.headers["Location"]))


def active_reader(app, staff, login: str) -> Visitor:
    reader = register(app, login)
    approve(app, staff["m"], login)
    assert reader.login(login).status_code == 302
    return reader


# --- the whole path --------------------------------------------------------------------------

def test_register_approve_request_and_follow_the_loan(app, staff):
    reader = register(app, "lilei", name="李雷")
    assert flashes(reader.get("/login")) == ["注册成功, 请等待所在馆馆员审核后登录"]

    # Pending: the login is refused with the reason, and nothing is logged in.
    refused = reader.login("lilei")
    assert refused.status_code == 401
    assert "您的注册正在等待本馆审核" in refused.get_data(as_text=True)
    reader.get("/ill/requests", status=302)

    # Staff of another library do not see the registration; the home library's approve it.
    assert not staff["za"].get("/ill/staff").cssselect("section.registrations")
    assert approve(app, staff["m"], "lilei") == ["已批准 李雷 的注册"]
    assert not staff["m"].get("/ill/staff").cssselect('tr[data-user="lilei"]')

    login = reader.login("lilei")
    assert login.status_code == 302 and login.headers["Location"] == "/"
    home = reader.get("/")
    assert flashes(home) == ["欢迎, 李雷"]
    assert text(home, ".home-contact") == [
        "您所在馆的馆际互借: 丙大学图书馆 · 丙大学图书馆馆际互借部 · 010-1234567 · "
        "ill@m.example.edu.cn"]
    assert home.cssselect(".home-contact a")[0].get("href") == "mailto:ill@m.example.edu.cn"
    assert text(home, "section.loginbox h2") == ["李雷"]

    # A real search, the record, and its 申请馆际互借 link for za's copy.
    found = reader.client.get("/search", query_string={
        "field": "title", "text": "中国发展报告", "library": ["za", "zb"]})
    results = reader.get(found.headers["Location"])
    first = results.cssselect("li.record a.title")[0]
    record_page = reader.get(first.get("href"))
    za_row = record_page.cssselect('table.holdings tr[data-library="za"]')[0]
    link = za_row.cssselect("a.button.ill")[0]
    assert link.text_content() == "申请馆际互借"
    query = parse_qs(urlsplit(link.get("href")).query)
    assert query["lender"] == ["za"]
    record = reader.client.get(f"/api/records/{query['record'][0]}",
                               query_string={"session": query["s"][0]}).get_json()
    holding = next(h for h in record["holdings"] if h["library"] == "za")

    form_page = reader.get(link.get("href"))
    form = form_page.cssselect("form.ill-form")[0]
    values = form_values(form)
    assert values["title"] == record["title"] and "中国发展报告" in record["title"]
    assert values["year"] == str(record["year"])
    assert values["call_number"] == (holding["call_number"] or record["call_numbers"][0])
    assert values["call_number"]
    assert values["lender"] == "za" and values["delivery"] == "courier"
    assert values["record_id"] == record["id"]
    assert values["publisher"] == (record["publisher"] or "")
    assert values["phone"] == "13912345678"  # from the reader's profile
    values["note"] = "论文急用"
    sent = reader.post("/ill/new", values)
    assert sent.status_code == 302
    request_id = int(re.fullmatch(r"/ill/requests/(\d+)", sent.headers["Location"]).group(1))
    detail = reader.get(sent.headers["Location"])
    assert flashes(detail) == [f"申请 {request_id} 已提交"]
    assert detail.cssselect("p.req-status")[0].get("data-status") == "submitted"
    # The same form sent twice (a double click) is still one request.
    assert reader.post("/ill/new", values).headers["Location"] == sent.headers["Location"]

    mine = reader.get("/ill/requests")
    rows = mine.cssselect("table.requests tbody tr[data-request]")
    assert [(r.get("data-request"), r.get("data-status")) for r in rows] == [
        (str(request_id), "submitted")]
    cells = text(rows[0], "td")
    assert cells[4:] == ["甲大学图书馆", record["title"]]  # the lender by name

    # The lender pulls the book (its pull slips list it), accepts and ships it; the home
    # library receives it and hands it over. The reader sees each step and a message.
    messages = text(reader.get("/ill/messages"), "ul.messages li")
    assert len(messages) == 2, messages  # newest first
    assert f"申请 {request_id}" in messages[0] and "已提交" in messages[0]
    assert "您的读者注册已通过审核" in messages[1]
    steps = [(staff["za"], "accept", "lending", "accepted", "已受理"),
             (staff["za"], "ship", "lending", "shipped", "已寄出"),
             (staff["m"], "receive", "borrowing", "received", "已到馆"),
             (staff["m"], "checkout", "borrowing", "checked_out", "借阅中")]
    for number, (who, action, queue, status, label) in enumerate(steps, start=3):
        done = act(who, request_id, action, queue)
        assert done == [f"申请 {request_id}: {who_label(action)} 完成"]
        if action == "accept":
            slips = staff["za"].get("/ill/staff/slips")  # every accepted loan of za
            assert text(slips, "section.slip h2") == [
                f"申请号 {request_id} · {values['call_number']}"]
            slip = text(slips, "section.slip")[0]
            assert record["title"] in slip and "甲大学图书馆 → 丙大学图书馆" in slip
            assert "读者 李雷 (M-lilei)" in slip and "论文急用" in slip
        page = reader.get(f"/ill/requests/{request_id}")
        assert page.cssselect("p.req-status")[0].get("data-status") == status
        assert text(page, "p.req-status strong") == [label]
        assert [li.get("data-action") for li in page.cssselect("ol.timeline li")][-1] == action
        row = reader.get("/ill/requests").cssselect(f'tr[data-request="{request_id}"]')[0]
        assert row.get("data-status") == status
        messages = reader.get("/ill/messages")
        assert len(messages.cssselect("ul.messages li")) == number  # one more each time
        assert len(messages.cssselect("ul.messages li.unread")) == 1  # the new one
        latest = text(messages, "ul.messages li")[0]
        assert f"申请 {request_id}" in latest and label in latest, latest
    assert "应还日期" in latest
    assert reader.get("/ill/messages").cssselect("ul.messages li.unread") == []
    # The lender's desk no longer lists it as waiting, the borrower's shows it lent out.
    borrowing = staff["m"].get("/ill/staff?queue=borrowing")
    assert borrowing.cssselect(f'tr[data-request="{request_id}"]')[0].get(
        "data-status") == "checked_out"
    # The record page now tells the title's ILL history.
    again = reader.get(first.get("href"))
    assert "za" not in text(again, "section.ledger li")[0]
    assert text(again, "section.ledger li") == ["甲大学图书馆 → 丙大学图书馆: 1"]
    graph = again.cssselect("svg.ledger-graph")[0]  # the 借阅关系图: one line, both ends named
    assert len(graph.cssselect("line")) == 1
    assert [t.text_content() for t in graph.cssselect("text")][2:] == ["甲大学图书馆",
                                                                         "丙大学图书馆"]

    # Statistics for the lender, on the page and as CSV.
    stats = staff["za"].get("/ill/staff/stats")
    figures = dict(zip(text(stats, "table.figures th"), text(stats, "table.figures td"),
                       strict=True))
    assert (figures["收到的申请"], figures["出借"], figures["满足"]) == ("1", "1", "1")
    assert figures["本馆读者申请"] == "0"
    assert stats.cssselect("svg.chart rect")
    csv_link = next(a.get("href") for a in stats.cssselect("form.filter a")
                    if a.text_content() == "CSV")
    download = staff["za"].client.get(csv_link)
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert "attachment" in download.headers["Content-Disposition"]
    assert download.headers["Content-Disposition"].endswith('.csv"')
    rows = {r["measure"]: r["value"] for r in csv.DictReader(io.StringIO(
        download.get_data(as_text=True).lstrip("\ufeff")))}
    assert rows["received_requests"] == "1" and rows["lent"] == "1" and rows["filled"] == "1"


def who_label(action: str) -> str:
    from ill.workflow import WORKFLOW

    return WORKFLOW.actions[action].label


# --- what is refused ---------------------------------------------------------------------------

def test_forms_without_the_csrf_token_are_400(app, staff):
    visitor = Visitor(app)
    visitor.get("/login")
    response = visitor.post("/login", {"login": "s-za", "password": PASSWORD}, csrf=False)
    # The expired-form page in the reader's words (tests/web/test_messages.py: its flow).
    assert response.status_code == 400 and "页面已过期" in response.get_data(as_text=True)
    reader = active_reader(app, staff, "nocsrf")
    before = len(reader.get("/ill/requests").cssselect("tr[data-request]"))
    forged = reader.post("/ill/new", valid_form(lender="za"), csrf=False)
    assert forged.status_code == 400
    assert len(reader.get("/ill/requests").cssselect("tr[data-request]")) == before
    wrong = reader.post("/ill/new", {**valid_form(lender="za"), "csrf_token": "x" * 43},
                        csrf=False)
    assert wrong.status_code == 400
    assert staff["za"].post("/ill/staff/requests/1/act", {"action": "accept"},
                            csrf=False).status_code == 400
    assert reader.post("/logout", csrf=False).status_code == 400
    assert reader.get("/ill/requests").cssselect("table.requests")  # still logged in


def test_a_reader_cannot_open_or_cancel_another_readers_request(app, staff):
    owner = active_reader(app, staff, "owner1")
    other = active_reader(app, staff, "other1")
    sent = owner.post("/ill/new", valid_form(lender="za", title="别人的书"))
    assert sent.status_code == 302
    path = sent.headers["Location"]
    request_id = int(path.rsplit("/", 1)[1])
    page = other.get(path, status=403)
    assert "不属于您" in page.text_content() and "别人的书" not in page.text_content()
    other.get("/ill/requests/987654", status=404)
    cancel = other.post(f"/ill/requests/{request_id}/cancel")
    assert cancel.status_code == 302
    assert "不属于您" in " ".join(flashes(other.get(cancel.headers["Location"], status=403)))
    assert owner.get(path).cssselect("p.req-status")[0].get("data-status") == "submitted"
    # Readers have no staff desk; nobody logged in is sent to log in first.
    other.get("/ill/staff", status=403)
    other.get("/ill/staff/stats", status=403)
    assert other.post(f"/ill/staff/requests/{request_id}/act",
                      {"action": "accept"}).status_code == 403
    anonymous = Visitor(app)
    response = anonymous.get("/ill/requests", status=302)
    assert urlsplit(response.headers["Location"]).path == "/login"
    assert parse_qs(urlsplit(response.headers["Location"]).query)["next"] == ["/ill/requests"]
    anonymous.get("/ill/staff", status=403)


def test_the_owner_cancels_within_the_window(app, staff):
    reader = active_reader(app, staff, "canceller")
    sent = reader.post("/ill/new", valid_form(lender="zb", title="不要了的书"))
    detail = reader.get(sent.headers["Location"])
    form = detail.cssselect("form button.cancel")[0].getparent()
    (terms,) = text(detail, "p.cancel-terms")
    assert re.fullmatch(r"可在 \d{4}-\d\d-\d\d \d\d:\d\d 前撤销", terms), terms
    assert detail.cssselect("form[data-confirm] button.cancel.danger")
    # Without JavaScript the cancel asks first, on a page of its own; nothing is done yet.
    asked = reader.post(form.get("action"))
    assert asked.status_code == 200
    confirm = html.fromstring(asked.get_data(as_text=True))
    assert text(confirm, "h1") == ["请确认"]
    assert confirm.cssselect("section.ill-confirm label[for=confirm-reason]")
    assert reader.get(sent.headers["Location"]).cssselect("p.req-status")[0].get(
        "data-status") == "submitted"
    response = confirmed(reader, asked)
    page = reader.get(response.headers["Location"])
    assert flashes(page) == ["申请已取消"]
    assert page.cssselect("p.req-status")[0].get("data-status") == "cancelled"
    assert not page.cssselect("button.cancel")


def test_the_request_form_shows_each_problem_and_keeps_what_was_typed(app, staff):
    reader = active_reader(app, staff, "typo")
    reader.get("/ill/new")
    response = reader.post("/ill/new", {**valid_form(lender="za", title="", year="明年"),
                                        "note": "备" * 51, "key": "k"})
    assert response.status_code == 422
    tree = html.fromstring(response.get_data(as_text=True))
    assert {e.get("data-field") for e in tree.cssselect("span.error")} == {
        "title", "year", "note"}
    assert form_values(tree.cssselect("form.ill-form")[0])["call_number"] == "I242.4/3"
    assert form_values(tree.cssselect("form.ill-form")[0])["lender"] == "za"
    assert reader.get("/ill/requests").cssselect("tr[data-request]") == []


def test_repeated_wrong_passwords_are_throttled_with_a_clear_message(app, staff):
    register(app, "guessme")
    approve(app, staff["m"], "guessme")
    visitor = Visitor(app)
    for _ in range(5):
        wrong = visitor.login("guessme", "not-the-password")
        assert wrong.status_code == 401
        assert "登录名或密码不正确" in wrong.get_data(as_text=True)
    throttled = visitor.login("guessme")
    assert throttled.status_code == 429
    page = html.fromstring(throttled.get_data(as_text=True))
    assert re.fullmatch(r"登录失败次数过多，请 1[45] 分钟后再试", text(page, "p.flash.error")[0])
    visitor.get("/ill/requests", status=302)  # not logged in


def test_register_problems_are_shown_by_field(app):
    visitor = Visitor(app)
    visitor.get("/register")
    response = visitor.post("/register", {"login": "x", "password": "short",
                                          "password2": "short", "library": "nowhere",
                                          "name": "", "card_number": "", "phone": "abc",
                                          "email": "no-at"})
    assert response.status_code == 422
    tree = html.fromstring(response.get_data(as_text=True))
    assert {e.get("data-field") for e in tree.cssselect("span.error")} == {
        "login", "password", "library", "name", "card_number", "phone", "email"}
    differ = visitor.post("/register", {"login": "twice", "password": PASSWORD,
                                        "password2": PASSWORD + "x", "library": "m"})
    assert differ.status_code == 422 and "两次输入的密码不一致" in differ.get_data(as_text=True)


def test_profile_edit_and_password_change(app, staff):
    reader = active_reader(app, staff, "profiled")
    page = reader.get("/profile")
    assert form_values(page.cssselect("form.stacked")[0])["email"] == "profiled@example.edu.cn"
    bad = reader.post("/profile", {"name": "新名字", "phone": "13900000000", "email": "nope"})
    assert bad.status_code == 422
    assert {e.get("data-field") for e in html.fromstring(bad.get_data(as_text=True))
            .cssselect("span.error")} == {"email"}
    ok = reader.post("/profile", {"name": "韩梅梅", "phone": "010-88886666",
                                  "email": "han@example.edu.cn"})
    assert ok.status_code == 302
    page = reader.get("/profile")
    assert flashes(page) == ["已保存"]
    values = form_values(page.cssselect("form.stacked")[0])
    assert (values["name"], values["phone"], values["email"]) == (
        "韩梅梅", "010-88886666", "han@example.edu.cn")
    assert "韩梅梅" in text(page, "a[href='/profile']")
    # A mistake in the fields leaves the password as it was.
    mixed = reader.post("/profile", {"name": "韩梅梅", "email": "nope",
                                     "old_password": PASSWORD, "new_password": "changed-123"})
    assert mixed.status_code == 422
    assert Visitor(app).login("profiled", "changed-123").status_code == 401
    wrong = reader.post("/profile", {"name": "韩梅梅", "old_password": "wrong-password",
                                     "new_password": "a-new-password"})
    assert wrong.status_code == 422 and "原密码不正确" in wrong.get_data(as_text=True)
    changed = reader.post("/profile", {"name": "韩梅梅", "old_password": PASSWORD,
                                       "new_password": "a-new-password"})
    assert changed.status_code == 302
    again = Visitor(app)
    assert again.login("profiled").status_code == 401
    assert again.login("profiled", "a-new-password").status_code == 302


# --- pages that depend on the ILL clock ----------------------------------------------------------

@pytest.fixture
def clocked(tmp_path) -> Iterator:
    """An app over the real BALIS directory whose ILL clock the test sets (no search)."""
    clock = Clock()
    app = create_app({"TESTING": True, "CONSORTIUM": real_consortium(),
                      "SESSION_STORE": "memory", "SECRET_KEY": "test",
                      "PORTAL_DIR": str(tmp_path / "portal"),
                      **ill_config(f"sqlite:///{tmp_path / 'ill.sqlite3'}", clock)})
    yield app, clock
    app.extensions["balis"].close()
    app.extensions["ill"].close()


def test_statistics_default_to_this_year_in_beijing(clocked):
    app, clock = clocked
    # 2025-03-03 17:00 UTC is already 03-04 in Beijing: the default period must include it.
    clock.now = clock.now.replace(hour=17)
    add_user(app, "wang", "reader", "bupt")
    add_user(app, "s-pku", "staff", "pku")
    reader, lender = Visitor(app), Visitor(app)
    assert reader.login("wang").status_code == 302
    reader.get("/ill/new")
    assert reader.post("/ill/new", valid_form()).status_code == 302
    assert lender.login("s-pku").status_code == 302
    stats = lender.get("/ill/staff/stats")
    assert "(2025-01-01 – 2025-03-04)" in text(stats, "h1")[0]
    download = lender.client.get("/ill/staff/stats?format=csv")
    rows = {r["measure"]: r["value"] for r in csv.DictReader(io.StringIO(
        download.get_data(as_text=True).lstrip("\ufeff")))}
    assert rows["received_requests"] == "1"
    assert 'filename="ill-statistics-pku-2025-01-01-2025-03-04.csv"' in download.headers[
        "Content-Disposition"]


def test_odd_addresses_and_forms_are_refused_with_a_reason(clocked):
    app, _clock = clocked
    add_user(app, "wang", "reader", "bupt")
    add_user(app, "s-pku", "staff", "pku")
    add_user(app, "s-thu", "staff", "thu")
    reader, lender, stranger = Visitor(app), Visitor(app), Visitor(app)
    for visitor, login in ((reader, "wang"), (lender, "s-pku"), (stranger, "s-thu")):
        assert visitor.login(login).status_code == 302
    reader.get("/ill/new")
    request_id = int(reader.post("/ill/new", valid_form()).headers["Location"].rsplit("/")[-1])

    # Pull slips: only the lender's own requests, and only ones that exist.
    assert "不是向本馆借书" in stranger.get(f"/ill/staff/slips?id={request_id}",
                                         status=403).text_content()
    assert text(lender.get(f"/ill/staff/slips?id={request_id}"), "section.slip h2") == [
        f"申请号 {request_id} · I242.4/3"]
    assert "不存在" in lender.get("/ill/staff/slips?id=987654", status=409).text_content()
    for odd in ("²", "99999999999999999999999", "-1"):
        lender.get(f"/ill/staff/slips?id={odd}", status=404)

    # An unknown status in the address: every request, and why.
    page = reader.get("/ill/requests?status=lent")
    assert flashes(page)[-1] == "没有“lent”这个状态"  # after the submission's own
    assert len(page.cssselect("tr[data-request]")) == 1

    # A staff form's way back must stay on this site; an odd version number is ignored.
    lender.get("/ill/staff")
    for back in ("//evil.example/x", "/\\evil.example", "https://evil.example/"):
        response = lender.post(f"/ill/staff/requests/{request_id}/act",
                               {"action": "mark_lost", "reason": "x", "back": back,
                                "confirm": "1"})
        assert response.headers["Location"] == "/ill/staff", back
    response = lender.post(f"/ill/staff/requests/{request_id}/act",
                           {"action": "accept", "version": "²"})
    assert response.status_code == 302
    assert reader.get(f"/ill/requests/{request_id}").cssselect("p.req-status")[0].get(
        "data-status") == "accepted"


def test_times_are_shown_as_beijing_clocks_read(clocked):
    app, clock = clocked
    clock.now = clock.now.replace(hour=17, minute=5)  # 2025-03-04 01:05 in Beijing
    add_user(app, "wang", "reader", "bupt")
    add_user(app, "s-pku", "staff", "pku")
    reader, lender = Visitor(app), Visitor(app)
    assert reader.login("wang").status_code == 302
    reader.get("/ill/new")
    path = reader.post("/ill/new", valid_form()).headers["Location"]
    assert lender.login("s-pku").status_code == 302
    shown = "2025-03-04 01:05"
    assert text(reader.get("/ill/requests"), "tr[data-request] td")[1] == shown
    assert text(reader.get(path), "ol.timeline time") == [shown]
    assert text(reader.get("/ill/messages"), "ul.messages time") == [shown]
    assert text(lender.get("/ill/staff"), "tr[data-request] td")[1] == shown


def test_an_overdue_return_shows_its_fine_on_the_messages_page(clocked):
    app, clock = clocked
    reader_actor = add_user(app, "wang", "reader", "bupt")
    staff = {lib: add_user(app, f"s-{lib}", "staff", lib) for lib in ("pku", "bupt")}
    web = app.extensions["ill"]
    with web.session() as s:
        req = web.service.create_request(s, reader_actor, valid_form())
    for library, action in (("pku", "accept"), ("pku", "ship"), ("bupt", "receive"),
                            ("bupt", "checkout")):
        with web.session() as s:
            web.service.act(s, staff[library], req.id, action)
    clock.advance(days=39)  # due 28 days after shipping: 11 days late
    with web.session() as s:
        web.service.act(s, staff["bupt"], req.id, "return")
    reader = Visitor(app)
    assert reader.login("wang").status_code == 302
    page = reader.get("/ill/messages")
    assert text(page, "table.fines tbody td") == [
        str(req.id), "红楼梦", "北京大学图书馆", "11", "0.10", "1.10"]
    assert "逾期 11 天，罚款 1.10 元" in text(page, "ul.messages li")[0]


def press(staff: Visitor, request_id: int, queue: str, action: str) -> list[str]:
    """A staff member presses the button whose value (or data-action) is ``action``."""
    tree = staff.get(f"/ill/staff?queue={queue}")
    row = tree.cssselect(f'table.queue tr[data-request="{request_id}"]')
    assert row, text(tree, "table.queue tr")
    buttons = [b for b in row[0].cssselect("button")
               if action in (b.get("data-action"), b.get("value"))]
    assert buttons, (action, text(row[0], "button"))
    form = buttons[0].getparent()
    response = confirmed(staff, staff.post(form.get("action"),
                                           {**form_values(form), "action": action}))
    assert response.headers["Location"] == f"/ill/staff?queue={queue}"
    return flashes(staff.get(response.headers["Location"]))


def test_cancel_and_renewal_requests_are_decided_at_the_desk(clocked):
    app, clock = clocked
    add_user(app, "wang", "reader", "bupt")
    add_user(app, "s-pku", "staff", "pku")
    add_user(app, "s-bupt", "staff", "bupt")
    reader, lender, home = Visitor(app), Visitor(app), Visitor(app)
    for visitor, login in ((reader, "wang"), (lender, "s-pku"), (home, "s-bupt")):
        assert visitor.login(login).status_code == 302

    # Once the lender accepted, the reader's cancel is a request the lender grants.
    reader.get("/ill/new")
    first = int(reader.post("/ill/new", valid_form()).headers["Location"].rsplit("/")[-1])
    press(lender, first, "lending", "accept")
    asked = reader.post(f"/ill/requests/{first}/cancel", {"confirm": "1"})
    page = reader.get(asked.headers["Location"])
    assert flashes(page)[-1] == "出借馆已受理，已转为取消申请，等待工作人员处理"
    assert page.cssselect("p.req-status")[0].get("data-status") == "accepted"
    attention = lender.get("/ill/staff?queue=attention")
    assert "读者申请取消" in text(attention, f'tr[data-request="{first}"] .reason')
    assert press(lender, first, "attention", "grant_cancel") == [f"申请 {first}: 同意取消 完成"]
    assert reader.get(f"/ill/requests/{first}").cssselect("p.req-status")[0].get(
        "data-status") == "cancelled"

    # A loan with the reader: a renewal request, granted by the lender.
    second = int(reader.post("/ill/new", valid_form(title="水浒传")).headers[
        "Location"].rsplit("/")[-1])
    for staff, queue, action in ((lender, "lending", "accept"), (lender, "lending", "ship"),
                                 (home, "borrowing", "receive"),
                                 (home, "borrowing", "checkout")):
        press(staff, second, queue, action)
    detail = reader.get(f"/ill/requests/{second}")
    assert "应还日期 2025-03-31" in text(detail, "p.req-status")[0]
    renew = detail.cssselect("form[action$='/renew']")[0]
    page = reader.get(reader.post(renew.get("action")).headers["Location"])
    assert flashes(page)[-1] == "续借申请已提交出借馆"
    # The borrowing library sees the request but only the lender may decide it.
    assert not home.get("/ill/staff?queue=attention").cssselect(
        f'tr[data-request="{second}"] button[value=grant_renewal]')
    clock.advance(days=10)
    assert press(lender, second, "attention", "grant_renewal") == [
        f"申请 {second}: 同意续借 完成"]
    assert "应还日期 2025-04-28" in text(reader.get(f"/ill/requests/{second}"),
                                       "p.req-status")[0]
    assert "续借成功，应还日期 2025-04-28" in text(reader.get("/ill/messages"),
                                              "ul.messages li")[0]
    assert not lender.get("/ill/staff?queue=attention").cssselect(
        f'tr[data-request="{second}"]')


def test_the_api_with_a_session_cookie_needs_the_csrf_header(clocked):
    app, _clock = clocked
    add_user(app, "wang", "reader", "bupt")
    reader = Visitor(app)
    assert reader.login("wang").status_code == 302
    assert reader.client.get("/api/ill/requests").get_json() == []
    forged = reader.client.post("/api/ill/requests", json=valid_form())
    assert forged.status_code == 400 and "CSRF" in forged.get_json()["error"]
    made = reader.client.post("/api/ill/requests", json=valid_form(),
                              headers={"X-CSRF-Token": reader.token})
    assert made.status_code == 201
    listed = reader.client.get("/api/ill/requests").get_json()
    assert [r["id"] for r in listed] == [made.get_json()["id"]]
    # A token from POST /api/tokens needs no CSRF header (a browser never adds it).
    token = Visitor(app).client.post("/api/tokens", json={"login": "wang",
                                                         "password": PASSWORD})
    assert token.status_code == 200 and token.get_json()["token"]


def test_an_admin_chooses_whose_desk_to_see(clocked):
    app, _clock = clocked
    add_user(app, "wang", "reader", "bupt")
    add_user(app, "root", "admin", None)
    reader, admin = Visitor(app), Visitor(app)
    assert reader.login("wang").status_code == 302 and admin.login("root").status_code == 302
    reader.get("/ill/new")
    request_id = int(reader.post("/ill/new", valid_form()).headers["Location"].rsplit("/")[-1])
    desk = admin.get("/ill/staff")  # no library chosen yet: a choice, not an error
    assert desk.cssselect("form.filter select[name=library] option[value=pku]")
    assert text(desk, "table.queue tbody td") == ["暂无"]
    desk = admin.get("/ill/staff?queue=lending&library=pku")
    assert text(desk, "h1") == ["馆际互借工作台: 北京大学图书馆"]
    row = desk.cssselect(f'tr[data-request="{request_id}"]')[0]
    # Admins stand in for neither side's routine steps: they may cancel or close.
    assert [b.get("data-action") for b in row.cssselect("button[data-action]")] == [
        "cancel", "close"]
    assert admin.get("/ill/staff?queue=borrowing&library=bupt").cssselect(
        f'tr[data-request="{request_id}"]')
    # Closing needs a reason: the row's form asks for one.
    close = row.cssselect('button[data-action="close"]')[0].getparent()
    assert close.cssselect("input[name=reason][required]")
    asked = admin.post(close.get("action"), {**form_values(close), "reason": "重复申请"})
    confirm = html.fromstring(asked.get_data(as_text=True))
    assert confirm.cssselect("label[for=confirm-reason]") and confirm.cssselect(
        "input#confirm-reason[required]")[0].get("value") == "重复申请"
    response = confirmed(admin, asked)
    assert flashes(admin.get(response.headers["Location"])) == [
        f"申请 {request_id}: 人工关闭 完成"]
    page = reader.get(f"/ill/requests/{request_id}")
    assert page.cssselect("p.req-status")[0].get("data-status") == "closed"
    assert text(page, "p.reason") == ["原因: 重复申请"]


def test_staff_see_why_a_records_sources_were_merged_and_readers_do_not(app, staff):
    """za (Z39.50) and zb (SRU) hold the same CNMARC records: each merged record says, to
    staff only and in Chinese, which record joined which and on what evidence."""
    def record_page(visitor: Visitor):
        found = visitor.client.get("/search", query_string={
            "field": "title", "text": "中国发展报告", "library": ["za", "zb"]})
        assert found.status_code == 302
        results = visitor.get(found.headers["Location"])
        link = results.cssselect("li.record a.title")[0].get("href")
        return visitor.get(link)

    page_ = record_page(staff["za"])
    assert "合并依据" in page_.text_content()
    (why,) = text(page_, "ul.merge-why li")
    found = re.fullmatch(r"(z[ab]):\S+ 并入 (z[ab]):\S+: "
                         r"(标识号一致 \(ISBN \d{13}\)|著录一致 \(题名.*\))", why)
    assert found and found.group(1) != found.group(2), why
    assert not re.search(r"[A-Za-z]{3,}", why.split(": ", 1)[1].replace("ISBN", "")), why
    reader = active_reader(app, staff, "merge-why-reader")
    assert "合并依据" not in record_page(reader).text_content()


# --- issue 14: the seed's rules and the staff desk ------------------------------------------

def test_the_form_offers_no_national_library_for_a_direct_request(clocked):
    app, _clock = clocked
    add_user(app, "wang", "reader", "bupt")
    reader = Visitor(app)
    assert reader.login("wang").status_code == 302
    form = reader.get("/ill/new")
    lenders = [o.get("value") for o in form.cssselect("select[name=lender] option")]
    assert "nlc" not in lenders and "pku" in lenders
    assert text(form, ".ill-record-only")[0].startswith("国家图书馆不受理直接申请")
    # Typed in anyway (an old page, a hand-made form): refused on the lender, kept as typed.
    refused = reader.post("/ill/new", valid_form(lender="nlc", title="手工填写"))
    assert refused.status_code == 422
    page = html.fromstring(refused.get_data(as_text=True))
    assert text(page, '[data-field="lender"]')[0].startswith("国家图书馆不受理直接申请")
    assert page.cssselect("input[name=title]")[0].get("value") == "手工填写"
    # From one of its records the National Library is a lender like any other.
    sent = reader.post("/ill/new", valid_form(lender="nlc", record_id="nlc:000001"))
    assert sent.status_code == 302
    detail = reader.get(sent.headers["Location"])
    # nlc lets no reader cancel: the button says what it does, and it asks first.
    (button,) = detail.cssselect("button.cancel")
    assert " ".join(button.text_content().split()) == "申请取消，需出借馆同意"
    assert text(detail, "p.cancel-terms") == [
        "已不能自行撤销：提交取消申请后，由国家图书馆决定是否取消"]
    english = reader.get(sent.headers["Location"] + "?lang=en")
    assert text(english, "button.cancel") == ["Ask to cancel (the lender decides)"]
    form = button.getparent()
    asked = confirmed(reader, reader.post(form.get("action")))
    page = reader.get(asked.headers["Location"])
    assert flashes(page)[-1].endswith("已转为取消申请，等待工作人员处理")
    assert not page.cssselect("button.cancel")  # asked once: the page says it is pending


def test_the_deadline_shows_in_the_list_and_passes(clocked):
    app, clock = clocked
    clock.now = clock.now.replace(hour=13, minute=30)  # 21:30 in Beijing
    add_user(app, "wang", "reader", "bupt")
    reader = Visitor(app)
    assert reader.login("wang").status_code == 302
    reader.get("/ill/new")
    sent = reader.post("/ill/new", valid_form())
    day = clock.now.date().isoformat()
    assert text(reader.get("/ill/requests"), "td.status .cancel-terms") == [
        f"可在 {day} 22:30 前撤销"]
    english = reader.get("/ill/requests?lang=en")
    assert text(english, "td.status .cancel-terms") == [f"can be cancelled until {day} 22:30"]
    clock.advance(minutes=61)
    reader.get("/ill/requests?lang=zh")
    assert not reader.get("/ill/requests").cssselect("td.status .cancel-terms")
    detail = reader.get(sent.headers["Location"])
    assert text(detail, "button.cancel") == ["申请取消，需出借馆同意"]


def test_staff_land_on_the_desk_readers_on_the_home_page(clocked):
    app, _clock = clocked
    add_user(app, "wang", "reader", "bupt")
    add_user(app, "s-pku", "staff", "pku")
    add_user(app, "root", "admin", None)
    for login, where in (("wang", "/"), ("s-pku", "/ill/staff"), ("root", "/ill/staff")):
        visitor = Visitor(app)
        visitor.get("/login")
        response = visitor.post("/login", {"login": login, "password": PASSWORD})
        assert response.headers["Location"] == where, login
    # Sent to log in from a page: back to that page, whoever it is.
    visitor = Visitor(app)
    visitor.get("/login?next=/ill/staff/stats")
    response = visitor.post("/login", {"login": "s-pku", "password": PASSWORD,
                                       "next": "/ill/staff/stats"})
    assert response.headers["Location"] == "/ill/staff/stats"


def test_destructive_actions_look_different_and_are_labelled(clocked):
    app, _clock = clocked
    add_user(app, "wang", "reader", "bupt")
    add_user(app, "s-pku", "staff", "pku")
    reader, lender = Visitor(app), Visitor(app)
    assert reader.login("wang").status_code == 302 and lender.login("s-pku").status_code == 302
    reader.get("/ill/new")
    request_id = int(reader.post("/ill/new", valid_form()).headers["Location"].rsplit("/")[-1])
    desk = lender.get("/ill/staff?queue=lending")
    row = desk.cssselect(f'tr[data-request="{request_id}"]')[0]
    kinds = {b.get("data-action"): b.get("class") for b in row.cssselect("button[data-action]")}
    assert kinds == {"cancel": "danger", "accept": None, "reject": "danger", "close": "danger"}
    for action in ("reject", "close"):
        form = row.cssselect(f'button[data-action="{action}"]')[0].getparent()
        assert form.get("data-confirm", "").startswith(f"确定对申请 {request_id} 执行")
        assert [label.text_content() for label in form.cssselect("label span.ill-vh")]
    # Without JavaScript: the confirmation page, then the way back leaves it untouched.
    reject = row.cssselect('button[data-action="reject"]')[0].getparent()
    asked = lender.post(reject.get("action"), form_values(reject))
    page = html.fromstring(asked.get_data(as_text=True))
    assert text(page, "label[for=confirm-reason]") == ["拒绝原因 *"]
    assert page.cssselect("section.ill-confirm a.button")[0].get("href").startswith(
        "/ill/staff?queue=lending")
    assert reader.get(f"/ill/requests/{request_id}").cssselect("p.req-status")[0].get(
        "data-status") == "submitted"
    response = confirmed(lender, asked)
    assert flashes(lender.get(response.headers["Location"])) == [f"申请 {request_id}: 拒绝 完成"]


def test_admin_statistics_open_on_the_consortium_and_charts_show_their_library(clocked):
    app, _clock = clocked
    add_user(app, "wang", "reader", "bupt")
    add_user(app, "s-pku", "staff", "pku")
    add_user(app, "s-thu", "staff", "thu")
    add_user(app, "root", "admin", None)
    reader, pku, thu, admin = Visitor(app), Visitor(app), Visitor(app), Visitor(app)
    for visitor, login in ((reader, "wang"), (pku, "s-pku"), (thu, "s-thu"), (admin, "root")):
        assert visitor.login(login).status_code == 302
    reader.get("/ill/new")
    for title, lender, staff in (("一", "pku", pku), ("二", "thu", thu)):
        sent = reader.post("/ill/new", valid_form(title=title, lender=lender, publisher=""))
        request_id = int(sent.headers["Location"].rsplit("/")[-1])
        act(staff, request_id, "accept", "lending")
        act(staff, request_id, "ship", "lending")
    # An empty publisher prints no "出版者" before the year.
    detail = reader.get(f"/ill/requests/{request_id}")
    rows = text(detail, "table.description tr")
    assert "出版年2008" in rows and not any(r.startswith("出版者") for r in rows)
    whole = admin.get("/ill/staff/stats")
    assert text(whole, "h1")[0].startswith("统计: 全联盟 (")
    figures = text(whole, "table.figures td.num")
    assert (figures[0], figures[1], figures[2]) == ("2", "2", "2")  # requested, received, lent
    assert whole.cssselect("select[name=library] option[selected]")[0].get("value") == ""
    assert whole.cssselect("form.filter label select[name=library]")  # labelled
    labels = [t.text_content() for t in whole.cssselect("svg.chart > text")]
    assert "全联盟" in labels and not {"北京大学图书馆", "清华大学图书馆"} & set(labels)
    # The settlement tables' headers are words, not the report's field names.
    headers = [th.text_content() for th in whole.cssselect("table thead th")]
    assert "馆名" in headers and "出借册次" in headers, headers
    assert not {"library", "library_name", "lent", "from", "to_name"} & set(headers)
    one = admin.get("/ill/staff/stats?library=pku")
    labels = [t.text_content() for t in one.cssselect("svg.chart > text")]
    assert "北京大学图书馆" in labels and "清华大学图书馆" not in labels
    own = thu.get("/ill/staff/stats")
    labels = [t.text_content() for t in own.cssselect("svg.chart > text")]
    assert "清华大学图书馆" in labels and "北京大学图书馆" not in labels
    assert text(own, "h2")[0] == "每月出借量: 清华大学图书馆"


def test_the_form_warns_again_when_the_copy_is_on_loan(app, staff):
    """The record page's link says why it warned (avail=, due=); the form says it again,
    and a value it does not know is ignored."""
    reader = active_reader(app, staff, "avail-reader")
    warned = reader.get("/ill/new?lender=za&avail=on_loan&due=2027-01-15")
    (note,) = text(warned, "p.avail-warning")
    assert "2027-01-15" in note and "借出" in note, note
    assert not reader.get("/ill/new?lender=za&avail=<b>x</b>").cssselect("p.avail-warning")
    assert not reader.get("/ill/new?lender=za").cssselect("p.avail-warning")
