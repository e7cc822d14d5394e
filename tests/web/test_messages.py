"""Chinese first, everywhere: every message a reader or staff member sees is in the
reader's language. Library failures by their reason code (the technical detail for staff
only), CQL errors with their position, our own 404/500 pages, and an expired form that
keeps what was typed. Over the real members of conftest.py (Zebra, yaz-ztest, a closed
port); the browser flow of the expired form is in test_messages_browser.py."""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import render_template
from ill_fixtures import PASSWORD, add_user, valid_form
from lxml import html

from broker.search.session import FAILURE_REASONS
from web.i18n import catalogue

ALLOWED = {"s", "ISBN", "ISSN", "CQL", "title", "author", "subject", "isbn", "publisher", "year"}
CJK = re.compile(r"[\u4e00-\u9fff]")


def tree_of(response, status: int = 200):
    assert response.status_code == status, response.get_data(as_text=True)[:800]
    return html.fromstring(response.get_data(as_text=True))


def words(el) -> str:
    return " ".join(el.text_content().split())


def english_in(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z][A-Za-z0-9]*", text)) - ALLOWED


def token_of(tree) -> str:
    return tree.cssselect("input[name=csrf_token]")[0].get("value")


def login(client, name: str) -> None:
    token = token_of(tree_of(client.get("/login")))
    response = client.post("/login", data={"login": name, "password": PASSWORD,
                                           "next": "/", "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]


def states_table(client, lang: str):
    client.get("/", query_string={"lang": lang})
    location = client.get("/search", query_string={"field": "title", "text": "中国发展报告",
                                                   "library": ["za", "dead", "nc"]})
    assert location.status_code == 302
    return tree_of(client.get(location.headers["Location"]))


# --- library failures -------------------------------------------------------------------------

def test_failed_libraries_read_in_chinese_without_the_technical_detail(client):
    tree = states_table(client, "zh")
    rows = {row.get("data-library"): row for row in tree.cssselect("tr.lib-state")}
    assert rows["za"].get("data-status") == "ok" and not rows["za"].cssselect(".reason")
    dead, nc = rows["dead"].cssselect(".reason")[0], rows["nc"].cssselect(".reason")[0]
    assert (dead.get("data-reason"), words(dead)) == ("unreachable", "无法连接")
    assert (nc.get("data-reason"), words(nc)) == ("not_searchable", "该馆暂不提供联合检索")
    table = words(tree.cssselect("#libraries")[0])
    assert "127.0.0.1" not in table and "refused" not in table.lower()
    assert not english_in(table), english_in(table)
    assert not tree.cssselect(".reason-detail")  # a reader never sees the broker's text


def test_failed_libraries_read_in_english_on_the_english_page(app):
    client = app.test_client()
    tree = states_table(client, "en")
    dead = tree.cssselect("tr[data-library=dead] .reason")[0]
    assert words(dead) == "Cannot connect"
    assert not CJK.search(words(tree.cssselect("tr[data-library=dead] td")[1]))


def test_staff_see_the_technical_detail_too(app):
    add_user(app, "msg-staff", "staff", "za")
    client = app.test_client()
    login(client, "msg-staff")
    tree = states_table(client, "zh")
    detail = tree.cssselect("tr[data-library=dead] details.reason-detail")[0]
    assert words(detail.cssselect("summary")[0]) == "技术细节"
    assert re.search(r"connect.*127\.0\.0\.1.*refused", words(detail), re.I), words(detail)
    assert words(tree.cssselect("tr[data-library=dead] .reason")[0]) == "无法连接"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_reason_has_words_in_both_languages(app, lang):
    """The table fragment (what live.js puts in the page too) for each reason code."""
    libraries = [{"id": f"l{i}", "name": f"图书馆{i}", "status": "error", "hits": None,
                  "fetched": 0, "elapsed_ms": 10, "error": "no answer from http://x:1/y",
                  "reason": reason} for i, reason in enumerate((*FAILURE_REASONS, None))]
    with app.test_request_context(f"/?lang={lang}"):
        app.preprocess_request()
        fragment = html.fromstring(render_template(
            "_libraries.html", data={"libraries": libraries, "done": True}))
    reasons = [words(el) for el in fragment.cssselect(".reason")]
    assert len(reasons) == len(FAILURE_REASONS) + 1
    assert len(set(reasons[:-1])) == len(FAILURE_REASONS)  # each says its own thing
    assert reasons[-1] == reasons[FAILURE_REASONS.index("failed")]  # no code: "failed"
    for text in reasons:
        assert "http" not in text and "x:1" not in text
        if lang == "zh":
            assert CJK.search(text) and not english_in(text), text
        else:
            assert not CJK.search(text), text
    assert not fragment.cssselect(".reason-detail")  # nobody logged in


# --- CQL errors --------------------------------------------------------------------------------

def test_a_cql_error_is_worded_with_its_position_in_chinese_and_english(app):
    client = app.test_client()
    tree = tree_of(client.get("/search", query_string={"cql": "title="}), 400)
    alert = words(tree.cssselect("main p.flash.error")[0])
    assert "第 7 个字符处缺少检索词" in alert, alert
    assert not english_in(alert), alert
    client.get("/", query_string={"lang": "en"})
    tree = tree_of(client.get("/search", query_string={"cql": "colour=red"}), 400)
    alert = words(tree.cssselect("main p.flash.error")[0])
    assert "Unknown field 'colour' at position 1" in alert and not CJK.search(alert)


def test_other_refusals_are_in_chinese_too(client):
    response = client.get("/search", query_string={"cql": "title=x", "library": ["za", "zb",
                                                                               "m", "slow"]})
    alert = words(tree_of(response, 400).cssselect("main p.flash.error")[0])
    assert "请检查所选图书馆" in alert and not english_in(alert), alert


def test_the_api_adds_the_code_and_position(client):
    response = client.get("/api/search", query_string={"q": "title="})
    assert response.status_code == 400
    body = response.get_json()
    assert body == {"error": "a search term is missing after '=' at position 7",
                    "code": "term_missing", "position": 7}
    assert client.get("/api/search", query_string={"q": "a and"}).get_json()["code"] == \
        "ends_early"
    other = client.get("/api/search", query_string={"q": "title=x", "sort": "price"})
    assert "code" not in other.get_json()  # not a query error: as before


# --- error pages --------------------------------------------------------------------------------

def test_404_is_our_page_in_the_readers_language(app):
    client = app.test_client()
    tree = tree_of(client.get("/no/such/page", headers={"Referer": "http://localhost/search"}),
                   404)
    main = words(tree.cssselect("main")[0])
    assert "页面不存在" in main and "Not Found" not in main and not english_in(main), main
    links = {a.get("href") for a in tree.cssselect(".ways-back a")}
    assert links == {"/", "/search", "http://localhost/search"}
    assert tree.cssselect("header.site nav")  # inside the site's layout
    client.get("/", query_string={"lang": "en"})
    tree = tree_of(client.get("/no/such/page"), 404)
    assert words(tree.cssselect("h1")[0]) == "Page not found"
    assert len(tree.cssselect(".ways-back a")) == 2  # no Referer: no "back" link
    api = client.get("/api/no/such")
    assert api.status_code == 404 and "error" in api.get_json()  # the API answers JSON


def test_405_and_a_bad_results_page_are_worded_too(client):
    tree = tree_of(client.post("/search", data={}), 400)  # CSRF first: the expired form
    assert "页面已过期" in words(tree.cssselect("h1")[0])
    tree = tree_of(client.get("/results/abc", query_string={"sort": "price"}), 400)
    main = words(tree.cssselect("main")[0])
    assert "页码、排序或筛选条件有误" in main and not english_in(main), main


def test_500_logs_the_exception_and_shows_no_traceback(app, monkeypatch, caplog):
    def broken():
        raise RuntimeError("secret internals at /srv/balis")

    monkeypatch.setitem(app.view_functions, "portal.news", broken)
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    client = app.test_client()
    with caplog.at_level(logging.ERROR):
        response = client.get("/news")
    tree = tree_of(response, 500)
    page_text = response.get_data(as_text=True)
    assert "系统出错了" in words(tree.cssselect("h1")[0])
    assert "secret internals" not in page_text and "Traceback" not in page_text
    assert any(r.exc_info and "secret internals" in str(r.exc_info[1]) for r in caplog.records)
    client.get("/", query_string={"lang": "en"})
    assert "Something went wrong" in client.get("/news").get_data(as_text=True)


# --- an expired form keeps what was typed --------------------------------------------------------

def kept_request() -> dict:
    return valid_form(lender="za", title="红楼梦 (保留)", note="急用") | {
        "password": "never-kept", "key": "idem-msg-1"}


def test_an_expired_request_form_keeps_the_values_and_comes_back_after_login(app):
    add_user(app, "msg-reader", "reader", "m")
    client = app.test_client()  # the session is gone: no cookie, no token
    tree = tree_of(client.post("/ill/new", data=kept_request()), 400)
    text = words(tree.cssselect("main")[0])
    assert "页面已过期" in text and "登录已过期" in text
    assert "红楼梦 (保留)" in text and "甲大学图书馆" in text  # the lender by its name
    page_html = html.tostring(tree, encoding="unicode")
    assert "never-kept" not in page_html  # passwords are never kept
    told = words(tree.cssselect("p.flash")[0])  # (the values are catalogue data, as typed)
    assert "密码除外" in told and not english_in(told), told
    login_link = tree.cssselect("a.button")[0].get("href")
    assert urlsplit(login_link).path == "/login"
    resume = parse_qs(urlsplit(login_link).query)["next"][0]
    assert urlsplit(resume).path == "/form/resume"

    token = token_of(tree_of(client.get(login_link)))
    response = client.post("/login", data={"login": "msg-reader", "password": PASSWORD,
                                           "next": resume, "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == resume
    form = tree_of(client.get(resume)).cssselect("form.kept-form")[0]
    assert form.get("action") == "/ill/new"
    values = {i.get("name"): i.get("value") for i in form.cssselect("input")}
    assert values["title"] == "红楼梦 (保留)" and values["lender"] == "za"
    assert values["key"] == "idem-msg-1" and "password" not in values
    assert values["csrf_token"]  # a fresh token: the form can be sent as it is
    sent = client.post(form.get("action"), data=values)
    assert sent.status_code == 302 and "/ill/requests/" in sent.headers["Location"]
    detail = words(tree_of(client.get(sent.headers["Location"])).cssselect("main")[0])
    assert "红楼梦 (保留)" in detail


def test_a_logged_in_reader_with_a_stale_token_resubmits_at_once(app):
    add_user(app, "msg-reader2", "reader", "m")
    client = app.test_client()
    login(client, "msg-reader2")
    data = kept_request() | {"csrf_token": "stale", "key": "idem-msg-2"}
    tree = tree_of(client.post("/ill/new", data=data), 400)
    form = tree.cssselect("form.kept-form")[0]
    values = {i.get("name"): i.get("value") for i in form.cssselect("input")}
    assert values["csrf_token"] != "stale" and values["title"] == "红楼梦 (保留)"
    assert client.post("/ill/new", data=values).status_code == 302


def test_a_forged_or_old_kept_form_is_refused_in_words(client):
    tree = tree_of(client.get("/form/resume", query_string={"data": "forged"}), 400)
    assert "保存的表单内容已过期或无效" in words(tree.cssselect("main")[0])
    assert not tree.cssselect("form.kept-form")


def test_the_api_keeps_its_json_csrf_error(app):
    client = app.test_client()
    client.get("/libraries")  # a cookie session the API call rides on
    with client.session_transaction() as s:
        s["csrf_token"] = "t"
    response = client.post("/api/searches", json={"q": "title=x"})
    assert response.status_code == 400 and "CSRF" in response.get_json()["error"]


def test_the_new_words_are_in_both_catalogues():
    for key in ("err.form.title", "err.page.404.title", "err.cql.term_missing"):
        assert key in catalogue("zh") and key in catalogue("en")
