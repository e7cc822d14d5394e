"""The web front end in a real browser: Debian's headless Chromium driven by Playwright
over waitress, over real member servers (tests/web/browser_fixtures.py).

A reader's whole path, with JavaScript (results stream in) and without it (the server
waits for every library): the directory filtered by pinyin initials, libraries chosen
(and refused past the consortium's maximum), a search, hit counts arriving, paging, a
record and its MARC. Catalogue data full of HTML and script must show as text and run
nothing. Each step is saved as a full-page PNG in ``$BALIS_TEST_OUTPUT/screenshots``
(default ``test-output/screenshots``) for a person to look at.
"""

from __future__ import annotations

import re

import pytest
from browser_fixtures import (
    XSS_AUTHOR,
    XSS_CONTROL,
    XSS_ID,
    XSS_LOCATION,
    XSS_NOTE,
    XSS_PLACE,
    XSS_PUBLISHER,
    XSS_SUBTITLE,
    XSS_TITLE,
    follow,
    new_page,
)

from web.i18n import catalogue

QUERY = "中国"  # every demo member holds books with it in their titles
SLOW, DOWN = "cafa", "buu"  # the demo's member that times out and the one that is down
# Who is searched: the slow and the down member among members that answer.
CHOSEN = ["nlc", "bupt", "buaa", "bit", "thu", "pku", "bnu", SLOW, DOWN]


def zh(key: str, **values: object) -> str:
    """A page's own words as a Chinese reader sees them (the default language)."""
    text = catalogue("zh")[key]
    return text.format(**values) if values else text


@pytest.fixture
def js_page(chromium_browser, demo_site):
    context, page, watch = new_page(chromium_browser, demo_site)
    yield page, watch
    context.close()


@pytest.fixture
def nojs_page(chromium_browser, demo_site):
    context, page, watch = new_page(chromium_browser, demo_site, java_script_enabled=False)
    yield page, watch
    context.close()


def visible_rows(page) -> list[str]:
    return [row.get_attribute("data-keys") for row in page.locator("tr.library").all()
            if row.is_visible()]


def states(page) -> dict[str, str]:
    return {row.get_attribute("data-library"): row.get_attribute("data-status")
            for row in page.locator("#libraries tr.lib-state").all()}


def page_of(page) -> tuple[int, int]:
    """The pager's "page N of M"."""
    pattern = re.escape(zh("page_of", n="N", m="M")).replace("N", r"(\d+)").replace(
        "M", r"(\d+)")
    found = re.fullmatch(pattern, page.inner_text(".page-of").strip())
    assert found, page.inner_text(".page-of")
    return int(found.group(1)), int(found.group(2))


def library_row(page, library: str):
    return page.locator(f'#libraries tr.lib-state[data-library="{library}"]')


def check_failed_members(page) -> None:
    """The slow member timed out and the down one failed, each with a reason to read."""
    for library, status in ((SLOW, "timeout"), (DOWN, "error")):
        row = library_row(page, library)
        assert row.get_attribute("data-status") == status
        assert row.locator("td.hits").inner_text().strip() == "—"
        reason = row.locator(".reason").text_content().strip()
        assert reason and "Traceback" not in reason and "127.0.0.1" not in reason, reason
    # The reason in the reader's words (issue 14), the broker's detail for staff only
    # (text_content: the states panel may be folded once every library has answered).
    assert library_row(page, SLOW).locator(".reason").get_attribute("data-reason") == "timeout"
    assert library_row(page, SLOW).locator(".reason").text_content().strip() == "超时未响应"
    assert library_row(page, DOWN).locator(".reason").get_attribute("data-reason") == \
        "unreachable"
    assert library_row(page, DOWN).locator(".reason").text_content().strip() == "无法连接"


NAME_LINES = """cell => {
  const range = document.createRange();
  range.selectNodeContents(cell);
  return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
}"""


def open_states(page) -> None:
    """Unfold the library status panel (folded once every library has answered, issue 14):
    a click on its summary, which needs no JavaScript."""
    panel = page.locator("#libraries details.states-panel")
    if panel.count() and panel.get_attribute("open") is None:
        panel.locator("summary").click()


def check_names_readable(page) -> None:
    """A long reason (a URL) beside a name must not squeeze it to a glyph a line."""
    open_states(page)
    for row in page.locator("#libraries tr.lib-state").all():
        cell = row.locator("td").first
        name = cell.inner_text().strip()
        lines = cell.evaluate(NAME_LINES)
        assert lines <= -(-len(name) // 3), (name, lines)


def check_answered(page, libraries: list[str]) -> None:
    open_states(page)
    for library in libraries:
        row = library_row(page, library)
        assert row.get_attribute("data-status") == "ok", library
        assert re.fullmatch(r"\d+", row.locator("td.hits").inner_text().strip()), library


def check_record_and_marc(page, shots, prefix: str) -> None:
    """From a results page: open the first record, then its MARC."""
    first = page.locator("li.record a.title").first
    title = first.inner_text().split(" : ")[0].strip()
    holders = page.locator("li.record").first.locator(".held .chip").all_inner_texts()
    with page.expect_navigation():
        first.click()
    assert page.locator("h1.record-title").inner_text().startswith(title)
    held = page.locator("table.holdings tbody tr td:first-child").all_inner_texts()
    assert sorted(set(held)) == sorted(holders) and held
    shots(page, f"{prefix}-record")
    follow(page, "p.tabs a[href*='/marc/']")
    assert page.locator("h1.record-title").inner_text() == title
    sections = page.locator("section.marc")
    assert sections.count() == len(holders)
    for section in sections.all():
        assert section.locator("tr.leader code").inner_text().strip()
        tags = section.locator("table.marc-fields th").all_inner_texts()
        assert "001" in tags and ("245" in tags or "200" in tags), tags
    shots(page, f"{prefix}-marc")


# --- the directory ---------------------------------------------------------------------------

def test_directory_with_javascript(js_page, demo_site, shots):
    page, watch = js_page
    page.goto("/libraries")
    assert page.locator("tr.library").count() == len(demo_site.app.extensions[
        "balis"].consortium.libraries) == 46
    shots(page, "01-directory")
    page.fill("#match", "bjyddx")  # pinyin initials of 北京邮电大学图书馆, filtered as typed
    assert [keys.split()[0] for keys in visible_rows(page)] == ["bupt"]
    assert page.locator("section.category:visible").count() == 1
    shots(page, "02-directory-filter-bjyddx")
    for typed in ("BeiJing YouDian", "北京邮电"):  # full pinyin, any case and spacing; hanzi
        page.fill("#match", typed)
        assert [keys.split()[0] for keys in visible_rows(page)] == ["bupt"], typed
    page.fill("#match", "")
    assert len(visible_rows(page)) == 46

    boxes = page.locator("input[name=library]:not([disabled])")
    for n in range(10):
        boxes.nth(n).check()
    assert page.inner_text("#chosen-count") == "10"
    assert page.locator("#too-many").is_hidden()
    boxes.nth(10).click()  # the eleventh is refused, with the reason
    assert not boxes.nth(10).is_checked()
    assert page.inner_text("#chosen-count") == "10"
    assert page.locator("#too-many").is_visible()
    assert page.inner_text("#too-many") == zh("too_many", n=10, k=11)
    shots(page, "03-directory-too-many")
    wanted = [boxes.nth(n).get_attribute("value") for n in range(10)]

    follow(page, "button[name=then][value=search]")
    assert page.url.endswith("/search")
    assert page.inner_text("p.flash.info") == zh("selection_saved", k=10)
    names = {lib.id: lib.name for lib in demo_site.app.extensions["balis"].consortium.libraries}
    assert page.locator("p.selection .chip").all_inner_texts() == [names[i] for i in wanted]
    shots(page, "04-search-form-with-selection")

    page.goto("/libraries")  # the choice is kept in the session
    assert [b.get_attribute("value") for b in page.locator(
        "input[name=library]:checked").all()] == wanted
    assert page.inner_text("#chosen-count") == "10"
    watch.check()


def test_directory_without_javascript(nojs_page, shots):
    page, watch = nojs_page
    page.goto("/libraries")
    page.fill("#match", "bjyddx")
    follow(page, "form.filter button[type=submit]")  # the server filters instead
    assert "match=bjyddx" in page.url
    assert [keys.split()[0] for keys in visible_rows(page)] == ["bupt"]
    shots(page, "11-nojs-directory-filter-bjyddx")

    page.goto("/libraries")
    for library in ["nlc", "clcn", "bupt", "buaa", "bit", "ustb", "bjtu", "buct", "bjut",
                    "ncepu", "thu"]:
        page.check(f"input[name=library][value={library}]")
    response_status = []
    page.on("response", lambda r: r.request.method == "POST" and response_status.append(
        r.status))
    follow(page, "button[name=then][value=stay]")
    assert response_status == [400]
    assert page.inner_text("p.flash.error") == zh("too_many", n=10, k=11)
    assert page.locator("input[name=library]:checked").count() == 11  # to untick one
    shots(page, "12-nojs-directory-too-many")
    page.goto("/libraries")
    assert page.locator("input[name=library]:checked").count() == 0  # nothing was saved
    watch.check()


# --- searching ---------------------------------------------------------------------------

# Installed in every document of the live test before its own scripts: a log of what the
# libraries table showed each time it changed, kept in the page (a reload would lose it).
RECORD_STATES = """
window.__states = [];
document.addEventListener("DOMContentLoaded", function () {
  var box = document.getElementById("libraries");
  if (!box) { return; }
  function snap() {
    var seen = {};
    box.querySelectorAll("tr.lib-state").forEach(function (row) {
      seen[row.dataset.library] = [row.dataset.status, row.querySelector("td.hits").textContent];
    });
    window.__states.push(seen);
  }
  snap();
  new MutationObserver(snap).observe(box, {childList: true, subtree: true});
});
"""


def choose(page, libraries: list[str]) -> None:
    page.goto("/libraries")
    for library in libraries:
        page.check(f"input[name=library][value={library}]")
    follow(page, "button[name=then][value=search]")
    assert page.url.endswith("/search")


def test_search_streams_with_javascript(js_page, shots):
    page, watch = js_page
    page.context.add_init_script(RECORD_STATES)
    choose(page, CHOSEN)
    page.fill("form.searchbox input[name=text]", QUERY)
    follow(page, "form.searchbox button[type=submit]")
    assert re.search(r"/results/\w+\?live=1$", page.url)  # the page came back at once
    shots(page, "05-results-streaming")
    page.wait_for_selector("#summary .summary[data-done=true]", timeout=30_000)
    shots(page, "06-results-done")

    log = page.evaluate("window.__states")
    assert set(log[0]) == set(CHOSEN)
    # The page was first drawn before the slow member could answer; its rows then changed
    # in place as libraries answered, until the slow one timed out.
    assert log[0][SLOW][0] == "pending" and log[-1][SLOW][0] == "timeout"
    answered = [sum(state == "ok" for state, _ in snap.values()) for snap in log]
    assert answered == sorted(answered) and answered[-1] == len(CHOSEN) - 2
    assert all(hits.strip() == "—" for state, hits in log[0].values() if state == "pending")
    check_answered(page, [lid for lid in CHOSEN if lid not in (SLOW, DOWN)])
    check_failed_members(page)
    check_names_readable(page)
    assert page.get_attribute("#results", "data-done") == "1"  # live.js stopped polling

    total = int(re.search(r"合并去重后 (\d+) 条", page.inner_text("#summary")).group(1))
    assert page_of(page) == (1, -(-total // 20)) and total > 40
    first_page = page.locator("li.record").evaluate_all("rs => rs.map(r => r.dataset.id)")
    assert len(first_page) == 20
    follow(page, "#pager a[rel=next]")
    assert page_of(page)[0] == 2
    assert page.get_attribute("ol.records", "start") == "21"
    second_page = page.locator("li.record").evaluate_all("rs => rs.map(r => r.dataset.id)")
    assert second_page and not set(second_page) & set(first_page)
    shots(page, "07-results-page-2")
    check_record_and_marc(page, shots, "08")
    watch.check()


def test_search_without_javascript(nojs_page, demo_site, shots):
    page, watch = nojs_page
    page.goto("/")
    shots(page, "10-nojs-home")
    choose(page, CHOSEN)
    assert page.locator("p.selection .chip").count() == len(CHOSEN)
    page.fill("form.searchbox input[name=text]", QUERY)
    follow(page, "form.searchbox button[type=submit]")  # the answer waits for every library
    assert "live=1" not in page.url
    assert page.get_attribute("#summary .summary", "data-done") == "true"
    assert page.get_attribute("#results", "data-live") == "0"
    assert "pending" not in states(page).values()
    check_answered(page, [lid for lid in CHOSEN if lid not in (SLOW, DOWN)])
    check_failed_members(page)
    check_names_readable(page)
    shots(page, "13-nojs-results")

    number, pages = page_of(page)
    assert number == 1 and pages >= 3
    page.fill("#pager input[name=page]", str(pages))  # the jump form, to the last page
    follow(page, "#pager form.jump button")
    # Paging past what was fetched asks the members for more, so there may be more pages.
    number, now = page_of(page)
    assert number == pages and now >= pages
    assert page.get_attribute("ol.records", "start") == str((pages - 1) * 20 + 1)
    assert page.locator("#pager a[rel=next]").count() == (1 if now > pages else 0)
    follow(page, "#pager a[rel=prev]")
    assert page_of(page)[0] == pages - 1
    assert page.locator("li.record").count() == 20
    shots(page, "14-nojs-results-paged")
    check_record_and_marc(page, shots, "15-nojs")
    watch.check()


# --- catalogue data is text, never markup ------------------------------------------------

INJECTED = ("script, img[src=x], svg, iframe, a[href^='javascript:'], body style, "
            "main b:not(.sf b), main u")


def check_inert(page, texts: list[str]) -> None:
    """Each of ``texts`` is on the page as text, and none of it became an element."""
    shown = page.inner_text("main")
    for text in texts:
        assert text in shown, text
    assert page.locator(INJECTED).count() == page.locator(
        "script[src^='/static/']").count()  # only the site's own scripts
    assert page.evaluate("window.__xss") is None


@pytest.fixture(params=["javascript", "no-javascript"])
def hostile_page(request, chromium_browser, hostile_site):
    # CSP would stop an injected script anyway: bypass it so what is tested is that the
    # pages escape catalogue data. (The CSP header itself is checked below.)
    context, page, watch = new_page(chromium_browser, hostile_site, bypass_csp=True,
                                    java_script_enabled=request.param == "javascript")
    yield page, watch, request.param
    context.close()


def test_html_in_marc_shows_as_text(hostile_page, shots):
    page, watch, mode = hostile_page
    page.goto("/search")
    page.fill("form.searchbox input[name=text]", "hostile")
    page.select_option("form.searchbox select[name=field]", "title")
    follow(page, "form.searchbox button[type=submit]")
    page.wait_for_selector("#summary .summary[data-done=true]", timeout=30_000)
    assert set(states(page).values()) == {"ok"}
    check_inert(page, [XSS_TITLE, XSS_SUBTITLE, XSS_AUTHOR, XSS_PUBLISHER])
    shots(page, f"20-xss-results-{mode}")

    with page.expect_navigation():
        page.locator("li.record a.title", has_text="<script>").click()
    assert XSS_TITLE in page.title()  # the <title> element too
    check_inert(page, [XSS_TITLE, XSS_SUBTITLE, XSS_AUTHOR, XSS_PLACE, XSS_PUBLISHER,
                       "<iframe src=\"javascript:window.__xss=6\"></iframe>", XSS_LOCATION,
                       "<u>QA76</u>"])
    assert page.locator("table.holdings tbody tr").count() == 2  # from both members
    shots(page, f"21-xss-record-{mode}")

    follow(page, "p.tabs a[href*='/marc/']")
    assert page.locator("section.marc").count() == 2
    check_inert(page, [XSS_TITLE, XSS_CONTROL, XSS_PLACE, XSS_PUBLISHER, XSS_NOTE,
                       XSS_LOCATION])
    shots(page, f"22-xss-marc-{mode}")

    # A record whose control number is neither safe in a URL nor in HTML still opens.
    page.goto("/search?field=title&text=identifier")
    page.wait_for_selector("#summary .summary[data-done=true]", timeout=30_000)
    follow(page, "li.record a.title")
    assert page.inner_text("h1.record-title") == "Hostile catalogue, odd identifier"
    follow(page, "p.tabs a[href*='/marc/']")
    check_inert(page, [XSS_ID])
    watch.check()


def test_reflected_input_shows_as_text(hostile_page, shots):
    page, watch, mode = hostile_page
    typed = '<img src=x onerror="window.__xss=8">'
    page.goto("/search")
    page.fill("form.searchbox input[name=text]", typed)
    follow(page, "form.searchbox button[type=submit]")
    page.wait_for_selector("#summary .summary[data-done=true]", timeout=30_000)
    # The words, as typed, in the summary (根据关键字"…", issue 14: no longer the CQL).
    check_inert(page, [f'根据关键字"{typed}"'])
    shots(page, f"23-xss-query-{mode}")

    page.goto("/search?cql=%28%3Cscript%3Ewindow.__xss%3D9%3C%2Fscript%3E")  # unbalanced
    assert page.locator("p.flash.error").count() == 1
    assert page.locator("form.searchbox input[name=cql]").input_value() == \
        "(<script>window.__xss=9</script>"
    check_inert(page, [zh("bad_query")])
    watch.check()


def test_hostile_record_under_the_content_security_policy(chromium_browser, hostile_site,
                                                         shots):
    """As a reader's browser sees it, with the policy in force: no script is refused (a
    refusal is a console error), none runs, and the pages' own scripts still work."""
    context, page, watch = new_page(chromium_browser, hostile_site)
    try:
        page.goto("/libraries")
        page.fill("#match", "jdx")  # directory.js runs: 甲大学图书馆 only
        assert [keys.split()[0] for keys in visible_rows(page)] == ["hsru"]
        page.goto("/search?field=title&text=hostile&live=1")
        page.wait_for_selector("#summary .summary[data-done=true]", timeout=30_000)
        with page.expect_navigation():
            page.locator("li.record a.title", has_text="<script>").click()
        follow(page, "p.tabs a[href*='/marc/']")
        assert page.evaluate("window.__xss") is None
        shots(page, "24-xss-marc-with-csp")
        watch.check()
        assert len(watch.policies) == 5  # directory, search (a redirect), results, record, MARC
    finally:
        context.close()
