"""The JSON API (CONTRACTS section 6) over real Zebra and yaz-ztest members."""

from __future__ import annotations

import re
import time

import jsonschema
import pytest
from lxml import etree
from peers.fixtures import PROBES

from web.api import openapi_spec

FAZHAN = PROBES["zh_title_fazhan_baogao"]  # 9 CNMARC records in Zebra's unimarc database


def schema(name: str) -> dict:
    spec = openapi_spec()
    return {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}


def valid(instance, name: str) -> None:
    jsonschema.validate(instance, schema(name))


def test_libraries_directory(client):
    data = client.get("/api/libraries").get_json()
    valid(data, "Directory")
    assert data["consortium"] == {"name": "测试联盟", "max_selected": 3}
    assert {c["id"]: c["count"] for c in data["categories"]} == {"univ": 5, "public": 1}
    by_id = {lib["id"]: lib for lib in data["libraries"]}
    assert by_id["za"]["searchable"] and by_id["za"]["protocol"] == "z3950"
    assert not by_id["nc"]["searchable"] and not by_id["nc"]["searchable_now"]
    assert by_id["zb"]["contact"]["email"] == "ill@zb.example.edu.cn"
    assert by_id["m"]["address"] == "丙大学图书馆路 1 号"


def test_blocking_search_merges_both_protocols(client):
    response = client.get("/api/search", query_string={
        "q": FAZHAN["cql"], "library": ["za", "zb", "dead"], "count": 50})
    assert response.status_code == 200
    data = response.get_json()
    valid(data, "SearchResult")
    assert data["done"] is True
    states = {lib["id"]: lib for lib in data["libraries"]}
    assert states["za"]["status"] == states["zb"]["status"] == "ok"
    assert states["za"]["hits"] == states["zb"]["hits"] == FAZHAN["hits"]
    assert states["dead"]["status"] == "error" and states["dead"]["hits"] is None
    assert "refused" in states["dead"]["error"] or "connect" in states["dead"]["error"]
    assert data["total_hits"] == 2 * FAZHAN["hits"]
    # The same nine books over Z39.50 and SRU merge into nine records held by both.
    assert len(data["records"]) == FAZHAN["hits"]
    assert all(sorted(r["libraries"]) == ["za", "zb"] for r in data["records"])
    assert all("中国发展报告" in r["title"] for r in data["records"])


def test_blocking_search_pages_and_sorts(client):
    first = client.get("/api/search", query_string={
        "q": FAZHAN["cql"], "library": ["za"], "sort": "-year", "start": 1, "count": 4})
    data = first.get_json()
    assert [r["year"] for r in data["records"]] == sorted(
        (r["year"] for r in data["records"]), reverse=True)
    assert data["start"] == 1 and data["count"] == 4 and data["merged"] == FAZHAN["hits"]
    rest = client.get(f"/api/searches/{data['id']}",
                      query_string={"start": 5, "count": 10, "sort": "-year"}).get_json()
    ids = [r["id"] for r in data["records"]] + [r["id"] for r in rest["records"]]
    assert len(ids) == len(set(ids)) == FAZHAN["hits"]


def test_live_search_reports_pending_then_done(client):
    response = client.post("/api/searches", json={"q": "title=5", "libraries": ["slow", "m"]})
    assert response.status_code == 202
    started = response.get_json()
    assert re.fullmatch(r"[0-9a-f]+", started["id"])
    assert response.headers["Location"] == started["url"]
    first = client.get(started["url"]).get_json()
    valid(first, "SearchResult")
    slow = next(lib for lib in first["libraries"] if lib["id"] == "slow")
    assert first["done"] is False and slow["status"] == "pending"
    deadline = time.monotonic() + 30
    data = first
    while not data["done"] and time.monotonic() < deadline:
        time.sleep(0.1)
        data = client.get(started["url"]).get_json()
    assert data["done"] is True
    slow = next(lib for lib in data["libraries"] if lib["id"] == "slow")
    assert slow["status"] == "ok" and slow["hits"] == 5  # yaz-ztest: a number gives that many


@pytest.mark.parametrize("params, message", [
    ({"q": ""}, "q (the CQL query) is required"),
    ({"q": "title="}, "search term is missing"),
    ({"q": "nosuchindex=x"}, "nosuchindex"),
    ({"q": "title=x", "library": ["za", "zb", "m", "slow"]}, "at most 3"),
    ({"q": "title=x", "library": ["nowhere"]}, "nowhere"),
    ({"q": "title=x", "sort": "price"}, "sort must be one of"),
    ({"q": "title=x", "count": "lots"}, "count must be a whole number"),
    ({"q": "title=x", "start": "0"}, "start must be between"),
    ({"q": "title=x", "filter": "colour:red"}, "FACET:VALUE"),
])
def test_bad_search_requests_are_400_with_a_reason(client, params, message):
    response = client.get("/api/search", query_string=params)
    assert response.status_code == 400
    assert message in response.get_json()["error"]


@pytest.mark.parametrize("body, message", [
    (None, "send a JSON object"),
    ({"libraries": ["za"]}, "q (the CQL query) is required"),
    ({"q": "title=x", "libraries": "za"}, "libraries must be a list"),
    ({"q": "title=x", "sort": 3}, "sort must be a string"),
    ({"q": "title=(x"}, ""),
])
def test_bad_live_search_requests_are_400(client, body, message):
    response = (client.post("/api/searches", data="not json", content_type="text/plain")
                if body is None else client.post("/api/searches", json=body))
    assert response.status_code == 400
    assert message in response.get_json()["error"]


def test_unknown_search_is_404(client):
    response = client.get("/api/searches/0123456789abcdef")
    assert response.status_code == 404
    assert "unknown or has expired" in response.get_json()["error"]


def test_record_with_every_holding_and_its_marcxml(client):
    data = client.get("/api/search", query_string={
        "q": FAZHAN["cql"], "library": ["za", "zb"], "count": 1}).get_json()
    record_id = data["records"][0]["id"]
    record = client.get(f"/api/records/{record_id}", query_string={"session": data["id"]})
    assert record.status_code == 200
    rec = record.get_json()
    valid(rec, "Record")
    assert rec["id"] == record_id and sorted(rec["libraries"]) == ["za", "zb"]
    assert {h["library"] for h in rec["holdings"]} == {"za", "zb"}
    # Any source id finds the same merged record; without naming the search, a merged
    # record from any current search that has that source.
    other = next(s for s in rec["sources"] if s != record_id)
    assert client.get(f"/api/records/{other}",
                      query_string={"session": data["id"]}).get_json()["id"] == record_id
    assert other in client.get(f"/api/records/{other}").get_json()["sources"]
    # A search that has expired (or never was) is no obstacle either.
    assert other in client.get(f"/api/records/{other}", query_string={
        "session": "0123456789abcdef"}).get_json()["sources"]
    xml = client.get(f"/api/records/{record_id}",
                     query_string={"session": data["id"], "format": "marcxml"})
    assert xml.status_code == 200 and xml.mimetype == "application/marcxml+xml"
    root = etree.fromstring(xml.data)
    ns = {"m": "http://www.loc.gov/MARC21/slim"}
    records = root.findall("m:record", ns)
    assert len(records) == 2  # one source record per library
    titles = {r.findtext("m:datafield[@tag='200']/m:subfield[@code='a']", namespaces=ns)
              for r in records}
    assert titles == {rec["title"]}


def test_record_errors(client):
    assert client.get("/api/records/za:nothing").status_code == 404
    data = client.get("/api/search", query_string={"q": FAZHAN["cql"], "library": ["za"],
                                                     "count": 1}).get_json()
    response = client.get(f"/api/records/{data['records'][0]['id']}",
                          query_string={"format": "pdf"})
    assert response.status_code == 400 and "json or marcxml" in response.get_json()["error"]


def test_openapi_describes_exactly_the_api_routes(app, client):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
            for name in ("{session_id}", "{record_id}", "{request_id}"):
                path = path.replace(name, "{id}")
            routes.setdefault(path, set()).update(
                m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    described = {path: set(ops) - {"parameters"} for path, ops in spec["paths"].items()}
    assert routes == described
    jsonschema.Draft202012Validator.check_schema(
        {"$defs": spec["components"]["schemas"]})


def test_health_after_a_search(client):
    client.get("/api/search", query_string={"q": "title=x", "library": ["dead"]})
    health = {h["library"]: h for h in client.get("/api/health").get_json()["libraries"]}
    assert health["dead"]["consecutive_failures"] >= 1


def test_a_live_search_keeps_the_sort_it_was_started_with(client):
    started = client.post("/api/searches", json={
        "q": FAZHAN["cql"], "libraries": ["za"], "sort": "-year"}).get_json()
    data = client.get(f"/api/searches/{started['id']}", query_string={"count": 50}).get_json()
    while not data["done"]:
        data = client.get(f"/api/searches/{started['id']}",
                          query_string={"count": 50}).get_json()
    assert data["sort"] == "-year"
    years = [r["year"] for r in data["records"]]
    assert years == sorted(years, reverse=True) and len(set(years)) > 1
    # A page may still ask for another order.
    relevance = client.get(f"/api/searches/{started['id']}",
                           query_string={"sort": "relevance", "count": 50}).get_json()
    assert relevance["sort"] == "relevance"
    bad = client.post("/api/searches", json={"q": "title=x", "sort": "price"})
    assert bad.status_code == 400 and "sort must be one of" in bad.get_json()["error"]
