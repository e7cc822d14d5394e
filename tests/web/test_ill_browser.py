"""Interlibrary loan in a real browser: Debian's headless Chromium driven by Playwright over
waitress and the demo consortium (tests/web/browser_fixtures.py; 46 real SRU and Z39.50
members on 127.0.0.1).

A reader registers with 清华大学图书馆 as home library and waits; its staff approve; the
reader logs in (the home library's ILL desk shows on every page), searches 北京大学图书馆's
catalogue, requests a book through the form the record page fills in, and requests and
then cancels another within pku's 60-minute window. pku's staff accept and ship the first,
thu's staff receive it and hand it over; the reader sees each status and a message for
each change. Every page is saved as a PNG named ``ill-NN-...`` beside the other browser
tests' screenshots.
"""

from __future__ import annotations

import re

import pytest
from browser_fixtures import Watch, follow, new_page
from ill_fixtures import PASSWORD, add_user

HOME, LENDER = "thu", "pku"
READER = "ill-reader"


class Person:
    """One person's own browser (context): their page and what went wrong on it."""

    def __init__(self, browser, site) -> None:
        self.context, self.page, self.watch = new_page(browser, site)

    def login(self, login: str, password: str = PASSWORD) -> None:
        page = self.page
        page.goto("/login")
        page.fill("form.stacked input[name=login]", login)
        page.fill("form.stacked input[name=password]", password)
        follow(page, "form.stacked button[type=submit]")

    def close(self) -> Watch:
        self.context.close()
        return self.watch


@pytest.fixture
def people(chromium_browser, demo_site):
    made: dict[str, Person] = {}

    def person(name: str) -> Person:
        made[name] = Person(chromium_browser, demo_site)
        return made[name]

    yield person
    watches = {name: p.close() for name, p in made.items()}
    for watch in watches.values():
        watch.check()  # no script error, no failed request, CSP on every page


def answer_dialog(person: Person, accept: bool) -> list[str]:
    """The next dialog is one we expect (a confirm): answer it, and let the Watch, which
    fails a page on any dialog (an injected alert), pass this one. Its messages."""
    said: list[str] = []
    page = person.page
    page.remove_listener("dialog", person.watch._dialog)

    def answer(dialog) -> None:
        said.append(dialog.message)
        page.on("dialog", person.watch._dialog)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", answer)
    return said


def flashes(page) -> list[str]:
    return [" ".join(t.split()) for t in page.locator("p.flash").all_inner_texts()]


def status_of(page) -> tuple[str, str]:
    box = page.locator("p.req-status")
    return box.get_attribute("data-status"), box.locator("strong").inner_text()


def press(staff: Person, request_id: int, queue: str, action: str) -> None:
    """A staff member presses an action on the request's row in one of the queues."""
    page = staff.page
    page.goto(f"/ill/staff?queue={queue}")
    follow(page, f'table.queue tr[data-request="{request_id}"] button[data-action="{action}"]')
    assert re.fullmatch(rf"申请 {request_id}: .+ 完成", flashes(page)[0]), flashes(page)
    assert page.url.endswith(f"/ill/staff?queue={queue}")


def test_a_loan_from_registration_to_the_readers_hands(people, demo_site, shots):
    app = demo_site.app
    add_user(app, f"staff-{HOME}", "staff", HOME, name="清华馆际互借员")
    add_user(app, f"staff-{LENDER}", "staff", LENDER, name="北大馆际互借员")
    reader, home, lender = people("reader"), people("home"), people("lender")

    # --- the reader registers and waits for the home library
    page = reader.page
    page.goto("/register")
    for name, value in (("login", READER), ("password", PASSWORD), ("password2", PASSWORD),
                        ("name", "王小明"), ("card_number", "T2025001"),
                        ("phone", "13800138000"), ("email", "wxm@example.edu.cn")):
        page.fill(f"form.stacked input[name={name}]", value)
    page.select_option("form.stacked select[name=library]", HOME)
    shots(page, "ill-01-register")
    follow(page, "form.stacked button[type=submit]")
    assert page.url.endswith("/login")
    assert flashes(page) == ["注册成功, 请等待所在馆馆员审核后登录"]
    reader.login(READER)
    assert page.locator("p.flash.error").inner_text() == "您的注册正在等待本馆审核"
    shots(page, "ill-02-login-pending")

    # --- the home library's staff approve
    home.login(f"staff-{HOME}")
    home.page.goto("/ill/staff")
    row = home.page.locator(f'section.registrations tr[data-user="{READER}"]')
    assert "T2025001" in row.inner_text() and "王小明" in row.inner_text()
    shots(home.page, "ill-03-staff-registrations")
    follow(home.page, f'section.registrations tr[data-user="{READER}"] '
                      'button[name=approve][value="1"]')
    assert flashes(home.page) == ["已批准 王小明 的注册"]

    # --- the reader logs in: the home library's ILL desk on the page
    reader.login(READER)
    assert flashes(page) == ["欢迎, 王小明"]
    assert " ".join(page.inner_text(".home-contact").split()) == (
        "您所在馆的馆际互借: 清华大学图书馆 · 清华大学图书馆馆际互借 · 010-62781326 · "
        "interlib4@tsinghua.edu.cn")
    shots(page, "ill-04-home-logged-in")

    # --- search pku's catalogue and request a book from its record page
    page.goto(f"/search?field=title&text=中国&library={LENDER}")
    page.wait_for_selector("#summary .summary[data-done=true]", timeout=30_000)
    titles = page.locator("li.record a.title")
    assert titles.count() >= 2
    shots(page, "ill-05-results")
    first_title = titles.nth(0).inner_text()
    second = next(n for n in range(1, titles.count())
                  if titles.nth(n).inner_text() != first_title)
    results_url = page.url
    wanted = request_from_record(page, 0, lambda name: shots(page, name))
    assert flashes(page) == [f"申请 {wanted['id']} 已提交"]
    assert status_of(page) == ("submitted", "已提交")
    shots(page, "ill-08-request-submitted")

    # --- another request, cancelled at once (within pku's 60 minutes)
    page.goto(results_url)
    page.wait_for_selector("#summary .summary[data-done=true]", timeout=30_000)
    other = request_from_record(page, second, lambda name: None)
    assert re.fullmatch(r"可在 \d{4}-\d\d-\d\d \d\d:\d\d 前撤销",
                        page.inner_text("p.cancel-terms"))
    # The cancel asks first (the browser's dialog): said no, nothing happens.
    asked = answer_dialog(reader, accept=False)
    page.click("button.cancel")
    page.wait_for_timeout(300)
    assert asked == [f"确定撤销申请 {other['id']} 吗？撤销后不能恢复。"]
    assert status_of(page) == ("submitted", "已提交")
    answer_dialog(reader, accept=True)
    follow(page, "button.cancel")
    assert flashes(page) == ["申请已取消"]
    assert status_of(page) == ("cancelled", "已取消")
    assert page.locator("button.cancel").count() == 0
    shots(page, "ill-09-cancelled")

    page.goto("/ill/requests")
    rows = {r.get_attribute("data-request"): r.get_attribute("data-status")
            for r in page.locator("table.requests tr[data-request]").all()}
    assert rows == {str(wanted["id"]): "submitted", str(other["id"]): "cancelled"}
    shots(page, "ill-10-my-requests")

    # --- a direct request (no record) that pku's staff reject: a destructive action, styled
    # apart, asks to confirm in a dialog (the National Library is not offered here)
    page.goto("/ill/new")
    assert page.locator("select[name=lender] option[value=nlc]").count() == 0
    for name, value in (("title", "不要的书"), ("year", "2010"), ("call_number", "X/1")):
        page.fill(f"form.ill-form input[name={name}]", value)
    page.select_option("form.ill-form select[name=lender]", LENDER)
    follow(page, "form.ill-form button[type=submit]")
    rejected = int(re.search(r"/ill/requests/(\d+)$", page.url).group(1))
    lender.login(f"staff-{LENDER}")
    assert lender.page.url.endswith("/ill/staff")  # staff land on the desk
    row = f'table.queue tr[data-request="{rejected}"]'
    button = lender.page.locator(f'{row} button[data-action="reject"]')
    assert button.get_attribute("class") == "danger"
    assert button.evaluate("b => getComputedStyle(b).backgroundColor") != lender.page.locator(
        f'{row} button[data-action="accept"]').evaluate("b => getComputedStyle(b).backgroundColor")
    said = answer_dialog(lender, accept=False)
    button.click()
    lender.page.wait_for_timeout(300)
    assert said == [f"确定对申请 {rejected} 执行“拒绝”吗？"]
    assert lender.page.locator(row).count() == 1
    shots(lender.page, "ill-10b-staff-destructive")
    answer_dialog(lender, accept=True)
    follow(lender.page, f'{row} button[data-action="reject"]')
    assert flashes(lender.page) == [f"申请 {rejected}: 拒绝 完成"]

    # --- pku accepts (its pull slip lists the book) and ships; thu receives and hands over
    steps = [(lender, "lending", "accept", "accepted", "已受理"),
             (lender, "lending", "ship", "shipped", "已寄出"),
             (home, "borrowing", "receive", "received", "已到馆"),
             (home, "borrowing", "checkout", "checked_out", "借阅中")]
    for number, (staff, queue, action, status, label) in enumerate(steps, start=11):
        press(staff, wanted["id"], queue, action)
        shots(staff.page, f"ill-{number}a-staff-{action}")
        if action == "accept":
            lender.page.goto("/ill/staff/slips")
            slip = lender.page.locator("section.slip")
            assert slip.count() == 1
            assert lender.page.locator("section.slip h2").inner_text() == (
                f"申请号 {wanted['id']} · {wanted['call_number']}")
            assert "王小明 (T2025001)" in slip.inner_text()
            shots(lender.page, "ill-11b-pull-slips")
        page.goto(f"/ill/requests/{wanted['id']}")
        assert status_of(page) == (status, label)
        assert page.locator("ol.timeline li").last.get_attribute("data-action") == action
        shots(page, f"ill-{number}c-reader-{status}")
        page.goto("/ill/messages")
        newest = page.locator("ul.messages li").first
        assert "unread" in (newest.get_attribute("class") or "")
        assert f"申请 {wanted['id']}" in newest.inner_text() and label in newest.inner_text()
    shots(page, "ill-15-messages")
    texts = page.locator("ul.messages li").all_inner_texts()
    about = [t for t in texts if f"申请 {wanted['id']}" in t]
    # submitted, accepted, shipped, received, checked out: one message each, newest first
    assert [next(w for w in ("借阅中", "已到馆", "已寄出", "已受理", "已提交") if w in t)
            for t in about] == ["借阅中", "已到馆", "已寄出", "已受理", "已提交"]
    assert any("您的读者注册已通过审核" in t for t in texts)
    page.goto(f"/ill/requests/{wanted['id']}")
    assert "应还日期" in page.inner_text("p.req-status")


def request_from_record(page, index: int, shot) -> dict:
    """Open the result at ``index``, follow pku's 申请馆际互借 link, check the form is
    filled from the record, send it; the request's id and call number."""
    follow(page, f"li.record:nth-child({index + 1}) a.title")
    title = page.inner_text("h1.record-title").split(" : ")[0]
    holding = page.locator(f'table.holdings tr[data-library="{LENDER}"]').first
    call_number = holding.locator("td").nth(2).inner_text().strip()
    year = page.locator("table.description tr", has_text="出版年").locator("td").inner_text() \
        if page.locator("table.description tr", has_text="出版年").count() else None
    shot("ill-06-record")
    follow(page, f'table.holdings tr[data-library="{LENDER}"] a.button.ill')
    form = page.locator("form.ill-form")
    assert form.locator("input[name=title]").input_value() == title
    if year:
        assert form.locator("input[name=year]").input_value() == year.strip()
    assert form.locator("input[name=call_number]").input_value() == call_number
    assert call_number
    assert form.locator("select[name=lender]").input_value() == LENDER
    assert form.locator("input[name=delivery][value=courier]").is_checked()
    assert form.locator("input[name=phone]").input_value() == "13800138000"
    form.locator("input[name=note]").fill("论文写作急用")
    shot("ill-07-request-form")
    follow(page, "form.ill-form button[type=submit]")
    found = re.search(r"/ill/requests/(\d+)$", page.url)
    assert found, (page.url, flashes(page))
    return {"id": int(found.group(1)), "call_number": call_number, "title": title}
