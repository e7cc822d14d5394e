"""The results and record pages at a phone's width (390x844) in headless Chromium over the
demo consortium (tests/web/browser_fixtures.py): the records come before the library
status panel (style.css orders them; the page's own order is status first), nothing
scrolls sideways, and the 借阅关系图 fits the screen without covering a request button."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

PHONE = {"width": 390, "height": 844}
LIBRARIES = ["bupt", "thu", "pku", "bnu"]


def sideways(page) -> int:
    return int(page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"))


@pytest.fixture
def phone(chromium_browser, demo_site):
    context = chromium_browser.new_context(base_url=demo_site.url, viewport=PHONE,
                                           java_script_enabled=False)
    page = context.new_page()
    yield page
    context.close()


def box(page, selector: str) -> dict:
    found = page.locator(selector).first.bounding_box()
    assert found, selector
    return found


def test_on_a_phone_the_records_come_first_and_the_graph_fits(phone, demo_site, shots):
    page = phone
    query = "&".join(f"library={lid}" for lid in LIBRARIES)
    page.goto(f"/search?field=title&text=中国&{query}")  # no JavaScript: waits for all
    assert page.get_attribute("#summary .summary", "data-done") == "true"
    assert page.inner_text(".summary .found").startswith('根据关键字"中国"检索出')
    # In the page's order the status panel comes first; on the screen, after the list.
    after = page.evaluate("""() => Boolean(
        document.querySelector('.libraries-state').compareDocumentPosition(
            document.querySelector('.records-panel')) & Node.DOCUMENT_POSITION_FOLLOWING)""")
    assert after  # the records panel follows the status panel in the page's order
    first = box(page, "li.record")
    panel = box(page, ".libraries-state")
    assert first["y"] < panel["y"], (first, panel)
    assert first["y"] < PHONE["height"], first  # the first record on the first screen
    assert page.locator("details.states-panel").get_attribute("open") is None
    assert sideways(page) == 0
    shots(page, "res-01-phone-results")

    # Requests for the first record between members, so its page draws the graph.
    href = page.locator("li.record a.title").first.get_attribute("href")
    record_id = unquote(href.split("/record/", 1)[1].split("?", 1)[0])
    holders = page.locator("li.record").first.locator(".held .chip").evaluate_all(
        "cs => cs.map(c => c.dataset.library)")
    app = demo_site.app
    from ill_fixtures import add_user, valid_form
    web = app.extensions["ill"]
    lender = holders[0]
    for n, home in enumerate(("buaa", "bit", "ruc")):
        reader = add_user(app, f"res-phone-{home}", "reader", home)
        with web.session() as s:
            web.service.create_request(s, reader, valid_form(
                lender=lender, record_id=record_id, title=f"图书 {n}", isbn=None))
    page.goto(href)
    assert page.locator("table.description tr.loans td").inner_text().strip() == "3"
    views = int(page.locator("table.description tr.views td").inner_text())
    page.reload()
    assert int(page.locator("table.description tr.views td").inner_text()) == views + 1
    graph = box(page, "svg.ledger-graph")
    assert graph["x"] >= 0 and graph["x"] + graph["width"] <= PHONE["width"], graph
    assert sideways(page) == 0
    for button in page.locator("a.button.ill").all():
        b = button.bounding_box()
        assert b and (b["y"] + b["height"] <= graph["y"] or b["y"] >= graph["y"] + graph[
            "height"] or b["x"] >= graph["x"] + graph["width"]), (b, graph)
    shots(page, "res-02-phone-record-graph")
