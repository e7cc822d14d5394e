"""The reader guide's walk, as a reader and two ILL desks would take it, in Chinese and
English, on a desktop (1366x900) and a phone (390x844): headless Chromium through
Playwright over the demo consortium (tests/web/browser_fixtures.py; 46 real SRU and
Z39.50 members on 127.0.0.1).

A reader of 北京航空航天大学图书馆 chooses libraries, searches, reads the results and a
record with its MARC, requests the book from 北京理工大学图书馆, follows the request, and
requests and cancels another; bit's desk accepts and ships, buaa's receives and hands
over; the reader sees each status; bit's desk opens its statistics. Every step is saved as
``walk-LANG-DEVICE-NN-step.png`` beside the other browser tests' screenshots, and axe-core
(with the phone's no-sideways-scrolling check) runs on each.
"""

from __future__ import annotations

import re

import pytest
from browser_fixtures import A11Y_VIEWPORTS, a11y_problems, follow, login, sideways
from ill_fixtures import add_user

from web.i18n import catalogue

pytest.importorskip("axe_playwright_python", reason="axe-playwright-python is not installed "
                    "(pip install -e '.[test]')")

HOME, LENDER = "buaa", "bit"  # libraries no other browser test counts requests of
CHOSEN = [LENDER, HOME, "bupt", "thu"]


class Walker:
    """One person's browser on one device in one language: every page is screenshot and
    checked; dialogs (a confirmation before cancelling, say) are accepted and kept."""

    def __init__(self, browser, site, shots, lang: str, device: str, who: str) -> None:
        self.context = browser.new_context(base_url=site.url, viewport=A11Y_VIEWPORTS[device])
        self.page = self.context.new_page()
        self.shots, self.lang, self.device, self.who = shots, lang, device, who
        self.problems: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("pageerror", lambda exc: self.problems.append(f"script error: {exc}"))
        self.page.on("dialog", self._dialog)
        self.page.goto(f"/?lang={lang}")

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.accept()

    def step(self, number: int, name: str) -> None:
        """Look at the page as it is: a screenshot, axe-core and, on a phone, its width."""
        where = f"{self.who} {number:02d}-{name} ({self.lang}, {self.device})"
        self.shots(self.page, f"walk-{self.lang}-{self.device}-{number:02d}-{name}")
        self.problems += [f"{where}: {p}" for p in a11y_problems(self.page)]
        if self.device == "phone" and (wide := sideways(self.page)):
            self.problems.append(f"{where}: scrolls sideways ({wide})")

    def close(self) -> list[str]:
        self.context.close()
        return self.problems


@pytest.fixture(scope="module")
def desks(demo_site) -> dict[str, str]:
    app = demo_site.app
    staff = {"home": f"walk-staff-{HOME}", "lender": f"walk-staff-{LENDER}"}
    add_user(app, staff["home"], "staff", HOME, name="北航馆际互借员")
    add_user(app, staff["lender"], "staff", LENDER, name="北理工馆际互借员")
    return staff


def status_of(page) -> str | None:
    return page.locator("p.req-status").get_attribute("data-status")


def press(walker: Walker, request_id: int, queue: str, action: str) -> None:
    page = walker.page
    page.goto(f"/ill/staff?queue={queue}")
    row = page.locator(f'table.queue tr[data-request="{request_id}"]')
    assert row.count() == 1, (queue, request_id)
    if action == "ship" and row.locator("input[name=batch]").count():
        row.locator("input[name=batch]").fill("SF-2026-001")
    follow(page, f'table.queue tr[data-request="{request_id}"] button[data-action="{action}"]')
    assert page.locator("p.flash").count(), f"no word after {action}"


def request_from_record(walker: Walker, results: str, index: int, shot: bool,
                        first: int) -> int:
    """From a results page: the record at ``index``, its MARC, then the lender's
    申请馆际互借 link and the form it fills in; the new request's id."""
    page = walker.page
    page.goto(results)
    page.wait_for_selector("#summary .summary[data-done=true]", timeout=60_000)
    entries = page.locator("li.record a.title")
    assert entries.count() > index, (page.url, page.locator("main").inner_text()[:800])
    with page.expect_navigation():
        entries.nth(index).click()
    assert page.locator(f'table.holdings tr[data-library="{LENDER}"]').count()
    if shot:
        walker.step(first, "record")
        follow(page, "p.tabs a[href*='/marc/']")
        assert page.locator("section.marc").count()
        walker.step(first + 1, "marc")
        page.go_back()
    follow(page, f'table.holdings tr[data-library="{LENDER}"] a.button.ill')
    form = page.locator("form.ill-form")
    assert form.locator("input[name=title]").input_value()
    assert form.locator("select[name=lender]").input_value() == LENDER
    form.locator("input[name=note]").fill("walk-through")
    if shot:
        walker.step(first + 2, "request-form")
    follow(page, "form.ill-form button[type=submit]")
    found = re.search(r"/ill/requests/(\d+)$", page.url)
    assert found, (page.url, page.locator("main").inner_text()[:500])
    return int(found.group(1))


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("device", sorted(A11Y_VIEWPORTS))
def test_the_reader_guide_walk(chromium_browser, demo_site, desks, shots, lang, device):
    words = catalogue(lang)
    reader_login = f"walk-{lang}-{device}"
    add_user(demo_site.app, reader_login, "reader", HOME, name=f"读者{lang}{device}")
    reader = Walker(chromium_browser, demo_site, shots, lang, device, "reader")
    lender = Walker(chromium_browser, demo_site, shots, lang, device, "lender")
    home = Walker(chromium_browser, demo_site, shots, lang, device, "home")
    problems: list[str] = []
    try:
        page = reader.page
        page.goto("/")
        reader.step(1, "home")
        login(page, reader_login)
        assert page.locator(".home-contact").count()  # the home library's ILL desk

        # choose libraries, then search
        page.goto("/libraries")
        for library in CHOSEN:
            page.check(f"input[name=library][value={library}]")
        reader.step(2, "choose-libraries")
        follow(page, "button[name=then][value=search]")
        assert page.url.endswith("/search")
        page.select_option("form.searchbox select[name=field]", "title")
        page.fill("form.searchbox input[name=text]", "中国")
        reader.step(3, "search")
        follow(page, "form.searchbox button[type=submit]")
        page.wait_for_selector("#summary .summary[data-done=true]", timeout=60_000)
        assert page.locator("li.record").count() >= 2
        reader.step(4, "results")

        # a record, its MARC, the prefilled request; then another, cancelled
        lender_name = next(lib.name for lib in demo_site.app.extensions[
            "balis"].consortium.libraries if lib.id == LENDER)
        held = [(n, entry.locator("a.title").inner_text()) for n, entry in
                enumerate(page.locator("li.record").all())
                if lender_name in entry.locator(".held").inner_text()]
        assert len(held) >= 2, f"fewer than two records held by {LENDER} on the first page"
        first_index, first_title = held[0]
        other_index = next(n for n, title in held[1:] if title != first_title)
        results = page.url
        wanted = request_from_record(reader, results, first_index, True, 5)
        page.goto(f"/ill/requests/{wanted}")
        assert status_of(page) == "submitted"
        reader.step(8, "request-submitted")
        other = request_from_record(reader, results, other_index, False, 0)
        page.goto(f"/ill/requests/{other}")
        cancel = page.locator("button.cancel")
        assert cancel.count() == 1
        self_cancel = cancel.get_attribute("data-mode") in (None, "self")
        reader.step(9, "before-cancel")
        follow(page, "button.cancel")
        if self_cancel:
            assert status_of(page) == "cancelled"
        reader.step(10, "cancelled")

        # follow the requests
        page.goto("/ill/requests")
        rows = {r.get_attribute("data-request") for r in
                page.locator("table.requests tr[data-request]").all()}
        assert {str(wanted), str(other)} <= rows
        reader.step(11, "my-requests")

        # the desks: bit accepts and ships, buaa receives and hands over
        login(lender.page, desks["lender"])
        login(home.page, desks["home"])
        steps = [(lender, "lending", "accept", "accepted"),
                 (lender, "lending", "ship", "shipped"),
                 (home, "borrowing", "receive", "received"),
                 (home, "borrowing", "checkout", "checked_out")]
        for number, (desk, queue, action, status) in enumerate(steps, start=12):
            desk.page.goto(f"/ill/staff?queue={queue}")
            desk.step(number, f"{queue}-before-{action}")
            press(desk, wanted, queue, action)
            page.goto(f"/ill/requests/{wanted}")
            assert status_of(page) == status, (action, status_of(page))
            reader.step(number, f"reader-{status}")
        lender.page.goto("/ill/staff/slips")
        lender.step(16, "pull-slips")
        lender.page.goto("/ill/staff/stats")
        assert lender.page.locator("main table, main svg").count()
        lender.step(17, "statistics")
        page.goto("/ill/messages")
        assert page.locator("ul.messages li").count() >= 4
        reader.step(18, "messages")
        assert words["a11y.skip"] == page.inner_text("a.skip-link").strip()
    finally:
        for walker in (reader, lender, home):
            problems += walker.close()
        for message in reader.dialogs + lender.dialogs + home.dialogs:  # confirmations
            assert message.strip(), "an empty dialog"
    assert not problems, "\n".join(problems)
