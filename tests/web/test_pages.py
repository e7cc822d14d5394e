"""The reader's HTML pages with Flask's test client (no JavaScript: the results page waits
for every library), over real Zebra and yaz-ztest members. Browser tests with JavaScript
are in test_browser.py."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

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
    assert "CSRF" in response.get_data(as_text=True)


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
