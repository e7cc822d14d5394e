"""The reader's HTML pages with Flask's test client (no JavaScript: the results page waits
for every library), over real Zebra and yaz-ztest members. Browser tests with JavaScript
are in test_browser.py."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from lxml import html
from peers.fixtures import PROBES

FAZHAN = PROBES["zh_title_fazhan_baogao"]


def page(response):
    assert response.status_code == 200, response.data[:500]
    return html.fromstring(response.get_data(as_text=True))


def text_of(tree, css: str) -> list[str]:
    return [" ".join(el.text_content().split()) for el in tree.cssselect(css)]


def csrf(client, url="/libraries") -> str:
    return page(client.get(url)).cssselect("input[name=csrf_token]")[0].get("value")


def merged_count(tree) -> int:
    return int(tree.cssselect(".summary")[0].text_content().split("合并去重后 ")[1].split()[0])


def search(client, **params):
    response = client.get("/search", query_string=params)
    assert response.status_code == 302, response.data[:500]
    return response.headers["Location"]


def test_home_has_search_box_and_newest_news_first(client):
    tree = page(client.get("/"))
    assert tree.cssselect("form.searchbox input[name=text]")
    options = [o.get("value") for o in tree.cssselect("form.searchbox select[name=field] option")]
    assert options == ["any", "title", "author", "isbn", "subject", "publisher"]
    assert text_of(tree, "ul.news li a") == ["甲大学图书馆寒假闭馆", "旧消息"]


def test_field_search_without_javascript_waits_for_every_library(client):
    location = search(client, field="title", text="中国发展报告", library=["za", "zb", "dead"])
    assert re.fullmatch(r"/results/[0-9a-f]+", urlsplit(location).path)
    tree = page(client.get(location))
    states = {row.get("data-library"): row.get("data-status")
              for row in tree.cssselect("tr.lib-state")}
    assert states == {"za": "ok", "zb": "ok", "dead": "error"}
    dead = tree.cssselect("tr[data-library=dead] .reason")[0].text_content()
    assert dead  # the reason a reader can read, never hidden
    hits = {row.get("data-library"): row.cssselect("td.hits")[0].text_content()
            for row in tree.cssselect("tr.lib-state")}
    assert hits == {"za": str(FAZHAN["hits"]), "zb": str(FAZHAN["hits"]), "dead": "—"}
    records = tree.cssselect("li.record")
    assert len(records) == FAZHAN["hits"]
    held = records[0].cssselect(".held .chip")
    assert sorted(chip.text_content() for chip in held) == ["乙大学图书馆", "甲大学图书馆"]
    assert "当前第 1/1 页" in text_of(tree, ".page-of")[0]
    assert tree.cssselect(".summary")[0].get("data-done") == "true"


def test_pager_facets_and_sort(client):
    location = search(client, field="title", text="perl", library=["m"])
    tree = page(client.get(location))
    assert tree.cssselect("tr[data-library=m] td.hits")[0].text_content() == str(
        PROBES["title_perl"]["hits"])
    assert len(tree.cssselect("li.record")) == merged_count(tree)  # fewer than 20: one page
    decades = tree.cssselect("section.facet[data-facet=decade] li a")
    assert decades
    chosen = decades[0]
    label, count = chosen.text_content(), int(chosen.getnext().text_content())
    narrowed = page(client.get(chosen.get("href")))
    assert len(narrowed.cssselect("li.record")) == count
    assert parse_qs(urlsplit(chosen.get("href")).query)["f"] == [f"decade:{label}"]
    years = [int(m.group(1)) for m in (re.search(r", (\d{4})", t) for t in
                                        text_of(page(client.get(location + "?sort=year")),
                                                "li.record .meta")) if m]
    assert years == sorted(years) and years


def test_pager_over_many_pages_and_jump(client):
    location = search(client, cql="title=中国发*", library=["za", "m"])
    tree = page(client.get(location))
    pages = int(re.search(r"/(\d+)", text_of(tree, ".page-of")[0]).group(1))
    merged = merged_count(tree)
    assert pages == max(1, -(-merged // 20))
    if pages > 1:
        second = page(client.get(location + "?page=2"))
        assert "当前第 2/" in text_of(second, ".page-of")[0]
        assert second.cssselect("ol.records")[0].get("start") == "21"


def test_bad_query_is_shown_on_the_search_page(client):
    response = client.get("/search", query_string={"cql": "title=(oops"})
    assert response.status_code == 400
    assert "检索式有误" in response.get_data(as_text=True)


def test_expired_search_is_a_clear_404(client):
    response = client.get("/results/0000000000000000")
    assert response.status_code == 404
    assert "已过期" in response.get_data(as_text=True)


def test_live_long_poll_gives_fragments_until_done(client):
    location = search(client, field="title", text="5", library=["slow", "m"], live="1")
    assert parse_qs(urlsplit(location).query)["live"] == ["1"]
    first = page(client.get(location))
    root = first.cssselect("#results")[0]
    assert root.get("data-live") == "1"  # comes back at once, the slow member still out
    assert first.cssselect("tr[data-library=slow]")[0].get("data-status") == "pending"
    live_url = root.get("data-live-url")
    revision, done, rounds = -1, False, 0
    while not done and rounds < 20:
        data = client.get(f"{live_url}&rev={revision}").get_json()
        assert data["revision"] >= revision
        revision, done, rounds = data["revision"], data["done"], rounds + 1
    assert done
    fragment = html.fromstring(data["libraries"])
    assert fragment.cssselect("tr[data-library=slow]")[0].get("data-status") == "ok"
    assert "当前第" in data["pager"]


def test_directory_filters_by_pinyin_initials(client):
    tree = page(client.get("/libraries", query_string={"match": "jdxtsg"}))
    names = text_of(tree, "tr.library label")
    assert names == ["甲大学图书馆"]
    categories = text_of(tree, "section.category h2")
    assert categories == ["综合大学图书馆 (5 个馆)"]
    assert "甲大学图书馆馆际互借部" in text_of(tree, "tr.library td.contact")[0]
    everything = page(client.get("/libraries"))
    disabled = everything.cssselect("input[value=nc]")[0]
    assert disabled.get("disabled") is not None  # no connector: cannot be ticked


def test_selection_is_kept_and_limited(client):
    token = csrf(client)
    too_many = client.post("/libraries", data={"csrf_token": token,
                                                "library": ["za", "zb", "m", "slow"]})
    assert too_many.status_code == 400
    assert "最多只能选择 3 个成员馆, 您选择了 4 个" in too_many.get_data(as_text=True)
    saved = client.post("/libraries", data={"csrf_token": token, "library": ["za", "m"],
                                            "then": "search"})
    assert saved.status_code == 302 and saved.headers["Location"].endswith("/search")
    form = page(client.get("/search"))
    assert text_of(form, ".selection .chip") == ["甲大学图书馆", "丙大学图书馆"]
    tree = page(client.get(search(client, field="title", text="中国发展报告")))
    assert {row.get("data-library") for row in tree.cssselect("tr.lib-state")} == {"za", "m"}


def test_forms_need_the_csrf_token(client):
    client.get("/libraries")
    response = client.post("/libraries", data={"library": ["za"]})
    assert response.status_code == 400
    assert "页面已过期" in response.get_data(as_text=True)  # in the reader's words now


def test_record_page_and_marc_view(client):
    tree = page(client.get(search(client, field="title", text="中国发展报告",
                                  library=["za", "zb"])))
    link = tree.cssselect("li.record a.title")[0]
    record = page(client.get(link.get("href")))
    assert record.cssselect("h1.record-title")[0].text_content() == link.text_content()
    holders = {row.get("data-library") for row in record.cssselect("table.holdings tbody tr")}
    assert holders == {"za", "zb"}
    marc_link = next(a for a in record.cssselect("p.tabs a") if a.text_content() == "机读格式")
    marc = page(client.get(marc_link.get("href")))
    sections = marc.cssselect("section.marc")
    assert {s.get("data-library") for s in sections} == {"za", "zb"}
    tags = [th.text_content() for th in sections[0].cssselect("table.marc-fields th")]
    assert tags[0] == "LDR" and "200" in tags and "001" in tags
    subfields = sections[0].cssselect("tr .sf b")
    assert any(b.text_content() == "$a" for b in subfields)
    assert any("中国发展报告" in td.text_content()
               for td in sections[0].cssselect("table.marc-fields td"))


def test_portal_pages_from_markdown(client, portal_dir):
    rules = page(client.get("/pages/rules"))
    assert "每位读者最多借 10 册" in rules.text_content()
    assert client.get("/pages/guide").status_code == 404  # not written yet: said so
    assert client.get("/pages/../secret").status_code == 404
    news = page(client.get("/news"))
    assert text_of(news, ".news-list h2") == ["甲大学图书馆寒假闭馆", "旧消息"]
    item = page(client.get("/news/2026-11-20-closure"))
    assert "寒假期间闭馆" in item.text_content() and "2026-11-20" in item.text_content()
    # An edit shows at once; broken front matter still shows the page.
    (portal_dir / "guide.md").write_text("---\ntitle: [broken\n---\n# 使用指南\n\n先选馆。\n",
                                         encoding="utf-8")
    try:
        guide = page(client.get("/pages/guide"))
        assert "先选馆" in guide.text_content()
    finally:
        (portal_dir / "guide.md").unlink()


def test_members_directory_with_address_hours_and_terms(client):
    tree = page(client.get("/members"))
    row = tree.cssselect("tr#lib-za")[0]
    cells = [" ".join(td.text_content().split()) for td in row.cssselect("td")]
    assert cells[1:3] == ["甲大学图书馆路 1 号", "8:00-22:00"]
    assert "010-1234567" in cells[3] and cells[4] == "28" and cells[5] == "60"


def test_english_on_request_and_remembered(client):
    english = client.get("/?lang=en")
    assert "Search" in english.get_data(as_text=True)
    assert "lang=en" in english.headers["Set-Cookie"]
    assert "Libraries" in client.get("/").get_data(as_text=True)
    assert "成员馆" in client.get("/?lang=zh").get_data(as_text=True)


def test_security_headers(client):
    response = client.get("/")
    assert "script-src" not in response.headers["Content-Security-Policy"]  # self only
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


# --- results and record as the seed shows them; closures before the form (issue 14) -------

def found_line(tree) -> str:
    return text_of(tree, ".summary .found")[0]


def test_the_summary_names_the_keywords_and_keeps_an_advanced_querys_cql(client):
    tree = page(client.get(search(client, field="title", text="中国发展报告",
                                  library=["za", "zb"])))
    merged = merged_count(tree)
    assert found_line(tree) == f'根据关键字"中国发展报告"检索出{merged}个结果, 当前第1/1页'
    assert not tree.cssselect(".query-cql")  # a simple search: no CQL to read
    assert "title=" not in tree.cssselect("h1")[0].text_content()
    advanced = page(client.get(search(client, cql="title=中国发* and year>=1990",
                                      library=["za"])))
    assert found_line(advanced).startswith('根据关键字"中国发* 1990"检索出')
    assert text_of(advanced, ".query-cql code") == ["title=中国发* and year>=1990"]
    english = page(client.get(search(client, field="title", text="中国发展报告",
                                      library=["za"]) + "?lang=en"))
    assert found_line(english) == f'{FAZHAN["hits"]} results for "中国发展报告", page 1 of 1'


def test_numbered_pages_and_the_jump_form_work_without_javascript(client):
    location = search(client, cql="year>=1000", library=["za", "m"])
    tree = page(client.get(location))
    merged = merged_count(tree)
    pages = -(-merged // 20)
    assert pages >= 3, merged
    current = tree.cssselect(".pager .page.current")
    assert [c.text_content() for c in current] == ["1"] and current[0].get("aria-current")
    numbers = {a.text_content(): a.get("href") for a in tree.cssselect(".pager a.page")}
    assert "2" in numbers and str(pages) in numbers and "1" not in numbers
    second = page(client.get(numbers["2"]))
    assert text_of(second, ".pager .page.current") == ["2"]
    assert second.cssselect("ol.records")[0].get("start") == "21"
    assert found_line(second).endswith(f"当前第2/{pages}页")
    assert second.cssselect(".pager a[rel=prev]") and second.cssselect(".pager a[rel=next]")
    # 跳转到 [n] 页: a plain GET form, with the sort and filters kept.
    form = tree.cssselect(".pager form.jump")[0]
    assert form.get("method") == "get"
    assert "跳转到" in form.cssselect("label")[0].text_content()
    hidden = {i.get("name"): i.get("value") for i in form.cssselect("input[type=hidden]")}
    assert hidden == {"sort": "relevance"}
    jumped = page(client.get(form.get("action"), query_string={**hidden, "page": str(pages)}))
    assert text_of(jumped, ".pager .page.current") == [str(pages)]
    assert not jumped.cssselect(".pager a[rel=next]")
    past = client.get(form.get("action"), query_string={**hidden, "page": "999"})
    assert past.status_code == 302  # past the end: to the last page
    assert parse_qs(urlsplit(past.headers["Location"]).query)["page"] == [str(pages)]
    odd = page(client.get(form.get("action"), query_string={"page": "x"}))
    assert text_of(odd, ".pager .page.current") == ["1"]  # not a number: the first page


def test_page_window_links_the_ends_and_the_neighbours():
    from web.searching import page_window
    assert page_window(1, 1) == [1]
    assert page_window(1, 23) == [1, 2, 3, None, 23]
    assert page_window(12, 23) == [1, None, 10, 11, 12, 13, 14, None, 23]
    assert page_window(5, 7) == [1, 2, 3, 4, 5, 6, 7]  # a one-page gap is that page


def test_each_entry_has_its_call_number_and_a_holdings_link(app, client):
    tree = page(client.get(search(client, field="title", text="中国发展报告",
                                  library=["za", "zb"])))
    entries = tree.cssselect("li.record")
    assert entries
    numbers = [text_of(entry, ".callno")[0] for entry in entries]
    assert all(n.startswith("索取号: ") for n in numbers)
    assert any(n != "索取号: — · 馆藏信息" for n in numbers)  # "—": a record without one
    for entry in entries:
        link = entry.cssselect("a.holdings-link")[0]
        assert link.text_content() == "馆藏信息" and link.get("href").endswith("#holdings")
        record = page(client.get(link.get("href")))
        assert record.cssselect("h2#holdings") and record.cssselect("table.holdings tbody tr")
        shown = text_of(entry, ".callno")[0].split(": ", 1)[1].split(" · ")[0]
        held = text_of(record, "table.holdings tbody td:nth-child(3)")
        assert shown in [*held, *text_of(record, "table.description td"), "—"]
    # A record's own call number, else its first copy's.
    from flask import render_template
    rec = {"id": "za:1", "title": "红楼梦", "libraries": ["za"], "material_type": "book",
           "isbns": [], "authors": [], "call_numbers": [],
           "holdings": [{"library": "za", "call_number": None},
                        {"library": "za", "call_number": "I242.4/3"}]}
    with app.test_request_context("/"):
        from flask import g
        g.lang = "zh"
        fragment = html.fromstring(render_template(
            "_records.html", data={"records": [rec, {**rec, "call_numbers": ["I242/9"]}],
                                   "start": 1, "done": True},
            sid="s", names={}, words="红楼梦"))
    assert text_of(fragment, ".callno") == ["索取号: I242.4/3 · 馆藏信息",
                                            "索取号: I242/9 · 馆藏信息"]


def test_the_status_panel_is_collapsed_once_every_library_answered(client):
    tree = page(client.get(search(client, field="title", text="中国发展报告",
                                  library=["za", "dead"])))
    panel = tree.cssselect("#libraries details.states-panel")[0]
    assert panel.get("open") is None  # done: collapsed, the rows still there
    summary = " ".join(panel.cssselect("summary")[0].text_content().split())
    assert summary.startswith("成员馆检索状态 (2 个馆)") and "完成 1" in summary
    assert "出错 1" in summary
    assert len(panel.cssselect("tr.lib-state")) == 2
    # Still searching (the slow member takes a second; a query of its own, not one the
    # broker still has the answer of): open.
    live = page(client.get(search(client, field="title", text="7", library=["slow"],
                                  live="1")))
    assert live.cssselect("tr[data-library=slow]")[0].get("data-status") == "pending"
    assert live.cssselect("#libraries details.states-panel")[0].get("open") is not None


def test_no_hits_offers_help_and_a_prefilled_direct_request(app, client):
    tree = page(client.get(search(client, field="title", text="qqxyzzy", library=["za"])))
    assert not tree.cssselect("li.record")
    help_items = text_of(tree, ".zero-hits li")
    assert any("拼写" in item for item in help_items)
    assert any("减少检索词" in item for item in help_items)
    assert tree.cssselect('.zero-hits a[href="/libraries"]')
    direct = tree.cssselect(".zero-hits a.direct-request")[0].get("href")
    assert urlsplit(direct).path == "/ill/new"
    assert parse_qs(urlsplit(direct).query)["title"] == ["qqxyzzy"]
    from ill_fixtures import add_user
    from test_ill_pages import Visitor
    add_user(app, "res-reader", "reader", "za")
    reader = Visitor(app)
    assert reader.login("res-reader").status_code == 302
    form = reader.get(direct)
    assert form.cssselect("input[name=title]")[0].get("value") == "qqxyzzy"


def test_views_are_counted_per_record_page_load(app, client, tmp_path):
    from web.record_views import EXTENSION, RecordViews
    before = app.extensions.get(EXTENSION)
    app.extensions[EXTENSION] = RecordViews(tmp_path / "views.sqlite3")
    try:
        tree = page(client.get(search(client, field="title", text="中国发展报告",
                                      library=["za", "zb"])))
        href = tree.cssselect("li.record a.title")[0].get("href")
        first = page(client.get(href))
        assert text_of(first, "table.description tr.views td") == ["1"]
        assert text_of(first, "table.description tr.loans td") == ["0"]
        assert text_of(page(client.get(href)), "table.description tr.views td") == ["2"]
        # The same book in a later search, from one of its libraries only: its count goes on.
        again = page(client.get(search(client, field="title", text="中国发展报告",
                                       library=["zb"])))
        title = first.cssselect("h1.record-title")[0].text_content()
        same = next(a for a in again.cssselect("li.record a.title")
                    if a.text_content() == title)
        assert text_of(page(client.get(same.get("href"))),
                       "table.description tr.views td") == ["3"]
    finally:
        app.extensions.pop(EXTENSION)
        if before is not None:
            app.extensions[EXTENSION] = before


def _count_views(path: str, n: int) -> None:
    from pathlib import Path

    from web.record_views import RecordViews
    views = RecordViews(Path(path))
    for _ in range(n):
        assert views.count_view(["za:1", "zb:9"]) is not None


def test_view_counts_are_exact_with_several_threads_and_processes(tmp_path):
    import multiprocessing
    import threading

    from web.record_views import RecordViews
    path = str(tmp_path / "views.sqlite3")
    threads = [threading.Thread(target=_count_views, args=(path, 25)) for _ in range(4)]
    spawn = multiprocessing.get_context("spawn")
    processes = [spawn.Process(target=_count_views, args=(path, 25)) for _ in range(2)]
    for worker in [*threads, *processes]:
        worker.start()
    for worker in [*threads, *processes]:
        worker.join(120)
    assert all(p.exitcode == 0 for p in processes)
    views = RecordViews(tmp_path / "views.sqlite3")
    assert views.views(["za:1"]) == views.views(["zb:9"]) == 150
    assert views.views(["nobody:0"]) == 0
    broken = RecordViews(tmp_path / "a-file" / "views.sqlite3")
    (tmp_path / "a-file").write_text("not a folder")
    assert broken.count_view(["za:1"]) is None  # logged; the page shows no count


def test_a_closed_lender_is_marked_everywhere_and_its_copies_cannot_be_chosen(app, client):
    import datetime as dt

    from ill_fixtures import add_user
    from test_ill_pages import Visitor
    web_ill = app.extensions["ill"]
    admin = add_user(app, "res-admin", "admin", None)
    today = web_ill.service.today()
    with web_ill.session() as s:
        closure = web_ill.service.add_closure(
            s, admin, start=today - dt.timedelta(days=1), end=today + dt.timedelta(days=5),
            name="寒假", library="zb")
    reopens = (today + dt.timedelta(days=6)).isoformat()
    try:
        members = page(client.get("/members"))
        assert text_of(members, "tr#lib-zb .closed-mark") == [f"闭馆中 (寒假), 至 {reopens} 恢复"]
        assert not members.cssselect("tr#lib-za .closed-mark")
        chooser = page(client.get("/libraries"))
        assert text_of(chooser, '.closed-mark[data-closed="zb"]') == [
            f"闭馆中 (寒假), 至 {reopens} 恢复"]
        tree = page(client.get(search(client, field="title", text="中国发展报告",
                                      library=["za", "zb"])))
        chip = tree.cssselect('li.record .held .chip[data-library="zb"]')[0]
        assert "closed" in chip.get("class") and f"至 {reopens} 恢复" in chip.text_content()
        assert "closed" not in tree.cssselect('li.record .held .chip[data-library="za"]')[0].get(
            "class")
        record = page(client.get(tree.cssselect("li.record a.title")[0].get("href")))
        zb_row = record.cssselect('table.holdings tr[data-library="zb"]')[0]
        assert not zb_row.cssselect("a.ill")  # no request link for a closed lender's copy
        assert f"闭馆中, 至 {reopens} 恢复" in " ".join(zb_row.text_content().split())
        assert record.cssselect('table.holdings tr[data-library="za"] a.ill')
        # Typed by hand, the form says so at once, and refuses it when sent.
        add_user(app, "res-reader2", "reader", "za")
        reader = Visitor(app)
        assert reader.login("res-reader2").status_code == 302
        form = reader.get("/ill/new?lender=zb")
        assert any(f"至 {reopens} 恢复受理" in f for f in text_of(form, "p.flash"))
        refused = reader.post("/ill/new", {
            "title": "中国发展报告", "year": "2008", "call_number": "F124/1", "lender": "zb",
            "delivery": "courier"})
        assert refused.status_code == 422 and "闭馆中" in refused.get_data(as_text=True)
    finally:
        with web_ill.session() as s:
            web_ill.service.remove_closure(s, admin, closure.id)
    assert not page(client.get("/members")).cssselect(".closed-mark")


# --- availability per copy ---------------------------------------------------------------

AVAIL_COPIES = (("中文书库", "A1", "available", None), ("中文书库", "A2", "on_loan", "2027-01-15"),
                ("阅览室", "A3", "not_for_loan", None))


@pytest.fixture(scope="module")
def avail_client(tmp_path_factory):
    """A consortium of one member, our own Z39.50 server over a CNMARC record whose copies'
    status is in 906 $z as the demo's Chinese systems write it, asked for OPAC records."""
    import asyncio
    import threading

    from ill_fixtures import ill_config

    from broker.catalogues.marc_file import LocalCatalogue
    from broker.kernel.config import loads
    from connectors.z3950.server import Z3950Server
    from marc import Holding, Record
    from marc.writer import iso2709, write_record
    from web import create_app

    book = Record(id="h1", format="unimarc", title="红楼梦", responsibility="曹雪芹著",
                  year=2008, language="chi", material_type="book")
    held = [Holding("HY", loc, "I242.4/3", code, status, due)
            for loc, code, status, due in AVAIL_COPIES]
    record = write_record(book, "unimarc", record_id="h1", holdings=held,
                          holdings_layout="905/906")
    words = {"available": "在架", "on_loan": "借出", "not_for_loan": "不外借"}
    for field, h in zip(record.get_fields("906"), held, strict=True):
        field.add_subfield("z", words[h.status])
        if h.due:
            field.add_subfield("z", f"应还日期 {h.due}")
    folder = tmp_path_factory.mktemp("avail")
    (folder / "hy.iso").write_bytes(iso2709(record))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = Z3950Server({"hy": LocalCatalogue(str(folder / "hy.iso"), name="hy",
                                               flavour="unimarc")})
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    text = ("consortium: {name: 测试联盟}\ncategories: [{id: univ, name: 大学}]\nlibraries:\n"
            "  - id: hy\n    name: 红岩大学图书馆\n    category: univ\n"
            f"    connector: {{protocol: z3950, url: \"z3950://127.0.0.1:{server.port}/hy\", "
            "format: unimarc, record_syntax: opac}\n")
    app = create_app({"TESTING": True, "CONSORTIUM": loads(text), "SESSION_STORE": "memory",
                      "SECRET_KEY": "test", "PORTAL_DIR": str(folder),
                      **ill_config(f"sqlite:///{folder / 'ill.sqlite3'}")})
    yield app.test_client()
    app.extensions["balis"].close()
    app.extensions["ill"].close()
    asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def test_availability_in_the_list_and_on_the_record(avail_client):
    results = page(avail_client.get(search(avail_client, field="title", text="红楼梦",
                                           library=["hy"])))
    (item,) = results.cssselect("li.record")
    summary = item.cssselect(".avail-summary")[0]
    assert " ".join(summary.text_content().split()) == "3 册馆藏, 1 册在架"
    record = page(avail_client.get(item.cssselect("a.title")[0].get("href")))
    rows = record.cssselect("table.holdings tbody tr")
    assert [(" ".join(r.cssselect("td.avail")[0].text_content().split()),
             r.cssselect("td.due")[0].text_content()) for r in rows] == [
        ("在架可借", ""), ("已借出", "2027-01-15"), ("不外借", "")]
    warnings = [r.cssselect(".avail-warning") for r in rows]
    assert warnings[0] == []
    on_loan = warnings[1][0].text_content()
    assert "已借出" in on_loan and "2027-01-15" in on_loan
    assert "不外借" in warnings[2][0].text_content()
    links = [parse_qs(urlsplit(r.cssselect("a.ill")[0].get("href")).query) for r in rows]
    assert "avail" not in links[0]
    assert links[1]["avail"] == ["on_loan"] and links[1]["due"] == ["2027-01-15"]
    assert links[2]["avail"] == ["not_for_loan"] and "due" not in links[2]
    english = page(avail_client.get(item.cssselect("a.title")[0].get("href") + "&lang=en"))
    assert [" ".join(td.text_content().split()) for td in english.cssselect("td.avail")] == [
        "On the shelf", "On loan", "Not for loan"]
