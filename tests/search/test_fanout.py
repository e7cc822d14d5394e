"""The broker against real servers: Zebra (MARC21 and UNIMARC, Z39.50 and SRU on one port)
and yaz-ztest (slow members), started by tests/peers.

Members overlap on purpose: ``za`` (Z39.50) and ``zb`` (SRU) reach the same UNIMARC
database, so every book they find must become one cluster held by both; ``m`` (Z39.50) and
``ms`` (SRU) do the same for the MARC21 database. Hit counts are the probes' known counts
(tests/peers/fixtures.py), or yaz-client's count where no probe covers a database.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import time
from collections import Counter

import pytest
from peers.consortia import consortium, dead, m, member, ms, run, slow, za, zb
from peers.fixtures import PROBES
from peers.servers import yaz_client_hits
from pypinyin import Style, lazy_pinyin

from broker.kernel.errors import BalisError, QueryError, UsageError
from broker.search import rank
from broker.search.fanout import Broker
from connectors.sru.client import SruConnector
from connectors.z3950.client import Z3950Client
from connectors.z3950.connector import Z3950Connector

RECORD_KEYS = {"id", "format", "title", "subtitle", "responsibility", "authors", "publisher",
               "place", "year", "edition", "extent", "language", "material_type", "isbns",
               "issns", "subjects", "classification", "call_numbers", "holdings", "libraries"}
LIBRARY_KEYS = {"id", "name", "status", "hits", "fetched", "elapsed_ms", "error", "reason"}


async def _search_all(cons, query, ids=None, **kwargs):
    """Search to the end on a fresh broker; the session's full snapshot and the health."""
    async with Broker(cons) as broker:
        session = await broker.search(query, ids, **kwargs)
        await broker.wait(session)
        return session.snapshot(count=1000), broker.health_report()


async def _get(broker, session_id):
    """Broker.get, whether it answers at once (a local dict) or is awaited (a shared
    store)."""
    found = broker.get(session_id)
    return await found if inspect.isawaitable(found) else found


def _by_id(snapshot):
    return {lib["id"]: lib for lib in snapshot["libraries"]}


# --- several members, overlapping books ---------------------------------------------------


def test_mixed_members_merge_the_same_books(zebra):
    cons = consortium(za(zebra), zb(zebra), m(zebra), ms(zebra))
    snap, _ = run(_search_all(cons, "中国"))
    unimarc_hits = yaz_client_hits(zebra.host, zebra.port, "unimarc", "@attr 1=1016 中国")
    marc21_hits = PROBES["zh_any_zhongguo"]["hits"]
    assert unimarc_hits == 10

    libs = _by_id(snap)
    assert set(libs) == {"za", "zb", "m", "ms"}
    assert {lid: lib["status"] for lid, lib in libs.items()} == dict.fromkeys(libs, "ok")
    assert {lid: lib["hits"] for lid, lib in libs.items()} == {
        "za": unimarc_hits, "zb": unimarc_hits, "m": marc21_hits, "ms": marc21_hits}
    assert {lid: lib["fetched"] for lid, lib in libs.items()} == {
        lid: lib["hits"] for lid, lib in libs.items()}
    assert all(lib["error"] is None and lib["elapsed_ms"] >= 0 for lib in libs.values())
    assert snap["done"] is True
    assert snap["total_hits"] == 2 * unimarc_hits + 2 * marc21_hits

    records = snap["records"]
    # Each database's books once, each held by both of the members that reach it.
    assert snap["merged"] == len(records) == unimarc_hits + marc21_hits
    unimarc = [r for r in records if r["format"] == "unimarc"]
    marc21 = [r for r in records if r["format"] == "marc21"]
    assert len(unimarc) == unimarc_hits and len(marc21) == marc21_hits
    assert all(sorted(r["libraries"]) == ["za", "zb"] for r in unimarc)
    assert all(sorted(r["libraries"]) == ["m", "ms"] for r in marc21)
    bnu = [r for r in unimarc if "中国发展报告" in r["title"].replace(" ", "")]
    assert len(bnu) >= 8
    for record in records:
        assert set(record) >= RECORD_KEYS
        # Holdings from every library of the cluster, and the same items from each.
        by_library = {}
        for holding in record["holdings"]:
            by_library.setdefault(holding["library"], []).append(
                (holding["location"], holding["call_number"], holding["barcode"]))
        assert set(by_library) == set(record["libraries"])
        first, *others = by_library.values()
        assert all(Counter(other) == Counter(first) for other in others)
    # Real holdings (BNU's items) survive the merge, from both protocols.
    assert any(h["location"] and h["call_number"] for r in bnu for h in r["holdings"]
               if h["library"] == "zb")
    assert any(h["location"] and h["call_number"] for r in bnu for h in r["holdings"]
               if h["library"] == "za")


def test_merged_record_ids_are_record_ids(zebra):
    """A merged record's id is a record id (CONTRACTS section 4: "bupt:000123"), the id of
    one of its sources, not the library prefixed twice ("za:za:...")."""
    snap, _ = run(_search_all(consortium(za(zebra), zb(zebra)), "title=中国发展报告"))
    assert snap["merged"] == PROBES["zh_title_fazhan_baogao"]["hits"]
    for record in snap["records"]:
        assert record["id"] in record["sources"], record["id"]
        assert re.fullmatch(r"z[ab]:[^:]+", record["id"]), record["id"]


@pytest.mark.parametrize("probe", ["zh_title_fazhan_baogao", "zh_publisher", "title_perl",
                                   "year_ge_2000", "subject_fiction"])
def test_hit_counts_equal_the_probes_over_both_protocols(zebra, probe):
    probe = PROBES[probe]
    members = (za(zebra), zb(zebra)) if probe["db"] == "unimarc" else (m(zebra), ms(zebra))
    snap, _ = run(_search_all(consortium(*members), probe["cql"]))
    hits = {lib["id"]: lib["hits"] for lib in snap["libraries"]}
    assert set(hits.values()) == {probe["hits"]}
    assert snap["total_hits"] == 2 * probe["hits"]
    # Both members found the same books: every cluster is held by both, and there are as
    # many clusters as each member's hits (less only where one library has duplicates).
    assert all(sorted(r["libraries"]) == sorted(hits) for r in snap["records"])
    assert 0 < snap["merged"] <= probe["hits"]


# --- statuses -------------------------------------------------------------------------------


def test_failing_members_get_their_own_status_and_the_rest_answer(zebra, ztest):
    cons = consortium(
        za(zebra), m(zebra),
        dead("deadz", "z3950"), dead("deads", "sru"),
        slow(ztest, "slow", delay=3, timeout=1),
        member("nodbz", "z3950", zebra.z3950_url("nosuchdb")),
        member("nodbs", "sru", zebra.sru_url("nosuchdb")),
        member("paper", None),  # no connector
    )
    started = time.monotonic()
    snap, _ = run(_search_all(cons, "中国", [lib.id for lib in cons.libraries]))
    took = time.monotonic() - started
    libs = _by_id(snap)
    assert snap["done"] is True
    assert libs["za"]["status"] == libs["m"]["status"] == "ok"
    assert libs["m"]["hits"] == PROBES["zh_any_zhongguo"]["hits"]
    assert snap["total_hits"] == libs["za"]["hits"] + libs["m"]["hits"]
    for lid in ("deadz", "deads", "slow", "nodbz", "nodbs", "paper"):
        lib = libs[lid]
        assert set(lib) == LIBRARY_KEYS
        assert lib["hits"] is None and lib["fetched"] == 0, lid
        assert lib["error"] and lib["error"].strip(), lid
    assert libs["deadz"]["status"] == libs["deads"]["status"] == "error"
    assert "refused" in libs["deadz"]["error"].lower()
    assert "refused" in libs["deads"]["error"].lower()
    # Slower than its 1 s timeout: timed out after about 1 s, not after its 3 s answer.
    assert libs["slow"]["status"] == "timeout"
    assert 900 <= libs["slow"]["elapsed_ms"] <= 2000
    assert took < 2.8
    assert libs["nodbz"]["status"] == "error"
    assert "109" in libs["nodbz"]["error"] and "database" in libs["nodbz"]["error"].lower()
    assert "nosuchdb" in libs["nodbz"]["error"]
    assert libs["nodbs"]["status"] == "error" and "404" in libs["nodbs"]["error"]
    assert libs["paper"]["status"] == "error"
    assert "cannot be searched yet" in libs["paper"]["error"]
    # Each failure's reason code, for the web to word in the reader's language.
    assert {lid: libs[lid]["reason"] for lid in libs} == {
        "za": None, "m": None, "deadz": "unreachable", "deads": "unreachable",
        "slow": "timeout", "nodbz": "missing_database", "nodbs": "protocol",
        "paper": "not_searchable"}
    # The answering members' records are all there.
    assert {lid for r in snap["records"] for lid in r["libraries"]} == {"za", "m"}


def test_snapshot_while_running_shows_pending(zebra, ztest):
    cons = consortium(m(zebra), slow(ztest, delay=1))

    async def go():
        async with Broker(cons) as broker:
            session = await broker.search("title=5")
            await asyncio.sleep(0.5)
            early = session.snapshot()
            await broker.wait(session)
            return early, session.snapshot()

    early, late = run(go())
    assert early["done"] is False
    assert _by_id(early)["slow"]["status"] == "pending"
    assert _by_id(early)["slow"]["hits"] is None
    assert early["progress"] == {"done": 1, "total": 2}
    assert late["done"] is True and _by_id(late)["slow"]["status"] == "ok"
    assert _by_id(late)["slow"]["hits"] == 5
    assert late["progress"] == {"done": 2, "total": 2}


# --- ordering, facets, paging ---------------------------------------------------------------


def _pinyin_key(text: str) -> list[str]:
    """Our own reading of a title for sorting: letters and digits only, lowercased, each
    Chinese character as its pinyin with the tone (pypinyin), compared character by
    character as a dictionary does (音乐 yin1 before 银行 yin2); Latin words as they are."""
    cleaned = "".join(ch for ch in text.lower() if ch.isalnum())
    return lazy_pinyin(cleaned, style=Style.TONE3)


def test_sort_by_year_both_ways(zebra):
    cons = consortium(za(zebra), m(zebra))

    async def go():
        async with Broker(cons) as broker:
            session = await broker.search("中国 or perl")
            await broker.wait(session)
            return [session.snapshot(count=100, sort=s) for s in ("year", "-year")]

    up, down = run(go())
    assert up["merged"] == down["merged"] == len(up["records"]) > 20
    years_up = [r["year"] for r in up["records"]]
    years_down = [r["year"] for r in down["records"]]
    dated_up = [y for y in years_up if y is not None]
    assert dated_up == sorted(dated_up)
    dated_down = [y for y in years_down if y is not None]
    assert dated_down == sorted(dated_down, reverse=True)
    assert len(set(dated_up)) > 5
    # Undated records (if any) come last either way.
    for years in (years_up, years_down):
        assert years[:len([y for y in years if y is not None])] == [y for y in years
                                                                    if y is not None]
    assert sorted(r["id"] for r in up["records"]) == sorted(r["id"] for r in down["records"])


def test_sort_by_title_is_pinyin_order_interleaved_with_latin(zebra):
    async def go():
        async with Broker(consortium(m(zebra))) as broker:
            session = await broker.search("perl or 中国 or summerland")
            await broker.wait(session)
            return session.snapshot(count=100), session.snapshot(count=100, sort="title")

    relevance, title = run(go())
    records, ordered = relevance["records"], title["records"]
    assert len(ordered) == len(records) > 15
    keys = [_pinyin_key(r["sort_title"] or r["title"]) for r in ordered]
    titles = [r["title"] for r in ordered]
    assert keys == sorted(keys), "\n".join(f"{k} {t}" for k, t in zip(keys, titles,
                                                                      strict=True))
    # Not code point order: pinyin interleaves Chinese titles with Latin ones.
    position = {t: i for i, t in enumerate(titles)}
    summerland = position["Summerland"]
    xie = next(i for t, i in position.items() if t.startswith("谐铎"))
    zheng = next(i for t, i in position.items() if t.startswith("整党"))
    fulu = next(i for t, i in position.items() if "附录" in t)
    perl = next(i for t, i in position.items() if t.startswith("Perl"))
    assert fulu < perl < summerland < xie < zheng


def test_relevance_title_above_subject_only(zebra):
    snap, _ = run(_search_all(consortium(m(zebra)), "perl"))
    titles = [r["title"] for r in snap["records"]]
    assert snap["libraries"][0]["hits"] == PROBES["any_perl"]["hits"]
    # "ActivePerl with ASP and ADO" has "Perl" only in its subjects: below every record
    # with the word in its title.
    assert titles[-1] == "ActivePerl with ASP and ADO", titles
    assert all("perl" in t.lower().split() for t in titles[:-1]), titles


def test_relevance_boosts_records_held_by_more_libraries(zebra):
    """The same clusters with the same texts, once all held by one member, once with one of
    them held by a second member too: only that one's score grows, by the holders boost."""
    query = "title=中国发展报告"

    async def go(cons):
        async with Broker(cons) as broker:
            session = await broker.search(query)
            await broker.wait(session)
            scores = rank.relevance(list(session.merger.clusters), session.terms)
            snap = session.snapshot(count=100)
            return snap, {sources: scores[r["id"]] for r in snap["records"]
                          for sources in [frozenset(s.split(":", 1)[1] for s in r["sources"])]}

    alone, alone_scores = run(go(consortium(za(zebra))))
    # zb fetches a single record: its cluster is held by two libraries.
    pair, pair_scores = run(go(consortium(za(zebra), member(
        "zb", "sru", zebra.sru_url("unimarc"), format="unimarc", max_records=1))))
    assert alone["merged"] == pair["merged"] == PROBES["zh_title_fazhan_baogao"]["hits"]
    (shared,) = [r for r in pair["records"] if len(r["libraries"]) == 2]
    key = frozenset(s.split(":", 1)[1] for s in shared["sources"])
    assert set(alone_scores) == set(pair_scores)
    for k, score in pair_scores.items():
        boost = rank.HOLDERS_BOOST if k == key else 0.0
        assert score == pytest.approx(alone_scores[k] + boost)
    position = {k: i for i, k in enumerate(
        frozenset(s.split(":", 1)[1] for s in r["sources"]) for r in pair["records"])}
    before = {k: i for i, k in enumerate(
        frozenset(s.split(":", 1)[1] for s in r["sources"]) for r in alone["records"])}
    assert position[key] <= before[key]
    assert all(pair_scores[key] >= pair_scores[k] for k in position if position[k] > position[key])


def test_facets_and_narrowing(zebra):
    cons = consortium(za(zebra), zb(zebra), m(zebra))

    async def go():
        async with Broker(cons) as broker:
            session = await broker.search("中国")
            await broker.wait(session)
            whole = session.snapshot(count=100)
            narrowed = {
                "m": session.snapshot(count=100, filters={"library": ["m"]}),
                "electronic": session.snapshot(
                    count=100, filters={"material_type": ["electronic"]}),
                "1990s_book": session.snapshot(
                    count=100, filters={"decade": ["1990s"], "material_type": ["book"]}),
                "two": session.snapshot(count=100, filters={"library": ["za", "m"]}),
                "empty_choice": session.snapshot(count=100, filters={"library": []}),
            }
            return whole, narrowed

    whole, narrowed = run(go())
    records = whole["records"]
    facets = whole["facets"]
    assert set(facets) >= {"library", "decade", "material_type", "language"}

    def counts(facet):
        return {v["value"]: v["count"] for v in facets[facet]}

    assert counts("library") == {"za": 10, "zb": 10, "m": PROBES["zh_any_zhongguo"]["hits"]}
    expected_decades = Counter(f"{r['year'] // 10 * 10}s" for r in records if r["year"])
    assert counts("decade") == dict(expected_decades)
    assert counts("material_type") == dict(Counter(r["material_type"] for r in records))
    assert counts("language") == dict(Counter(r["language"] for r in records if r["language"]))
    assert counts("language") == {"chi": len(records)}
    # Most frequent first.
    for facet in facets.values():
        assert [v["count"] for v in facet] == sorted((v["count"] for v in facet), reverse=True)

    assert {r["id"] for r in narrowed["m"]["records"]} == {
        r["id"] for r in records if "m" in r["libraries"]}
    assert narrowed["m"]["merged"] == PROBES["zh_any_zhongguo"]["hits"]
    electronic = narrowed["electronic"]["records"]
    assert electronic and all(r["material_type"] == "electronic" for r in electronic)
    assert len(electronic) == counts("material_type")["electronic"]
    nineties = narrowed["1990s_book"]["records"]
    assert nineties and all(1990 <= r["year"] <= 1999 and r["material_type"] == "book"
                            for r in nineties)
    assert len(nineties) == sum(1 for r in records
                                if r["year"] and 1990 <= r["year"] <= 1999
                                and r["material_type"] == "book")
    assert narrowed["two"]["merged"] == len(records)  # za or m covers everything here
    assert narrowed["empty_choice"]["merged"] == len(records)


def test_snapshot_pages_are_slices_of_one_order(zebra):
    cons = consortium(za(zebra), zb(zebra), m(zebra))

    async def go():
        async with Broker(cons) as broker:
            session = await broker.search("中国")
            await broker.wait(session)
            whole = session.snapshot(start=1, count=100, sort="year")
            pages = [session.snapshot(start=s, count=5, sort="year") for s in (1, 6, 21, 23)]
            beyond = session.snapshot(start=200, count=5, sort="year")
            return whole, pages, beyond

    whole, pages, beyond = run(go())
    ids = [r["id"] for r in whole["records"]]
    assert len(ids) == whole["merged"] == 23
    for page, begin in zip(pages, (1, 6, 21, 23), strict=True):
        assert [r["id"] for r in page["records"]] == ids[begin - 1:begin + 4]
        assert page["start"] == begin and page["count"] == len(page["records"])
        assert page["merged"] == 23
    assert beyond["records"] == [] and beyond["merged"] == 23


def _count_z3950_searches(monkeypatch) -> list:
    searches = []
    original = Z3950Client.search

    async def counting(self, query, result_set="default"):
        searches.append(query)
        return await original(self, query, result_set)

    monkeypatch.setattr(Z3950Client, "search", counting)
    return searches


def test_fetch_more_pages_without_searching_again(zebra, monkeypatch):
    searches = _count_z3950_searches(monkeypatch)
    total = PROBES["year_ge_2000"]["hits"]

    async def go():
        async with Broker(consortium(m(zebra))) as broker:
            session = await broker.search("year>=2000", per_library=3)
            await broker.wait(session)
            first = session.snapshot(count=100)
            await broker.fetch_more(session, 10)
            middle = session.snapshot(count=100)
            await broker.fetch_more(session, 1000)
            last = session.snapshot(count=100)
            await broker.fetch_more(session, 1000)  # nothing more: no request
            again = session.snapshot(count=100)
            return first, middle, last, again

    first, middle, last, again = run(go())
    assert first["libraries"][0]["hits"] == total == 17
    assert first["libraries"][0]["fetched"] == 3 and first["merged"] == 3
    assert first["more_available"] is True
    assert 10 <= middle["merged"] < total
    assert middle["libraries"][0]["fetched"] == middle["merged"]
    assert last["merged"] == last["libraries"][0]["fetched"] == total
    assert last["more_available"] is False
    assert again["merged"] == total
    ids = [r["id"] for r in last["records"]]
    assert len(set(ids)) == len(ids) == total
    sources = [s for r in last["records"] for s in r["sources"]]
    assert len(set(sources)) == len(sources) == total
    # The earlier records are still there, first page included.
    assert {r["id"] for r in first["records"]} <= set(ids)
    assert len(searches) == 1, "paging must present from the result set, not search again"
    assert last["total_hits"] == total


def test_fetch_more_over_two_protocols_merges_without_duplicates(zebra, monkeypatch):
    searches = _count_z3950_searches(monkeypatch)
    hits = PROBES["zh_title_truncated"]["hits"]

    async def go():
        async with Broker(consortium(za(zebra), zb(zebra))) as broker:
            session = await broker.search("title=中国发*", per_library=3)
            await broker.wait(session)
            first = session.snapshot(count=100)
            await broker.fetch_more(session, 100)
            return first, session.snapshot(count=100)

    first, last = run(go())
    assert {lib["fetched"] for lib in first["libraries"]} == {3}
    assert first["more_available"] is True
    assert {lib["hits"] for lib in last["libraries"]} == {hits}
    assert {lib["fetched"] for lib in last["libraries"]} == {hits}
    assert last["merged"] == hits
    assert all(sorted(r["libraries"]) == ["za", "zb"] for r in last["records"])
    assert len({r["id"] for r in last["records"]}) == hits
    assert len(searches) == 1


def test_per_library_zero_counts_hits_without_fetching(zebra):
    """``per_library=0`` (``balis search --max-per-library 0``, which the command accepts)
    asks each library for its hit count only."""
    snap, _ = run(_search_all(consortium(za(zebra), m(zebra)), "中国", per_library=0))
    assert {lib["id"]: lib["hits"] for lib in snap["libraries"]} == {
        "za": 10, "m": PROBES["zh_any_zhongguo"]["hits"]}
    assert snap["total_hits"] == 10 + PROBES["zh_any_zhongguo"]["hits"]
    assert [lib["fetched"] for lib in snap["libraries"]] == [0, 0]
    assert snap["records"] == [] and snap["merged"] == 0
    assert snap["more_available"] is True


# --- the connection budget ------------------------------------------------------------------


def test_budget_of_one_runs_members_one_after_the_other(ztest):
    cons = consortium(slow(ztest, "s1", delay=1), slow(ztest, "s2", delay=1))

    async def go(budget):
        async with Broker(cons, budget=budget) as broker:
            started = time.monotonic()
            session = await broker.search("title=5")
            await asyncio.sleep(1.5)
            middle = session.snapshot()
            await broker.wait(session)
            return middle, session.snapshot(), time.monotonic() - started

    middle, end, took = run(go(1))
    assert sorted(lib["status"] for lib in middle["libraries"]) == ["ok", "pending"]
    assert middle["done"] is False
    assert end["done"] is True
    assert [(lib["status"], lib["hits"]) for lib in end["libraries"]] == [("ok", 5)] * 2
    assert [lib["fetched"] for lib in end["libraries"]] == [5, 5]
    assert took >= 1.9
    # Each library's own time counts from when it got a connection, not from the queue.
    assert all(lib["elapsed_ms"] < 1800 for lib in end["libraries"])


def test_many_concurrent_sessions_share_the_budget(zebra, monkeypatch):
    cons = consortium(za(zebra), zb(zebra), m(zebra))
    running = {"now": 0, "most": 0}

    def tracking(cls):
        original = cls.search

        async def search(self, *args, **kwargs):
            running["now"] += 1
            running["most"] = max(running["most"], running["now"])
            try:
                return await original(self, *args, **kwargs)
            finally:
                running["now"] -= 1

        monkeypatch.setattr(cls, "search", search)

    tracking(SruConnector)
    tracking(Z3950Connector)

    async def go():
        async with Broker(cons, budget=4) as broker:
            sessions = await asyncio.gather(*(broker.search("title=中国发展报告 or perl")
                                              for _ in range(30)))
            await asyncio.wait_for(asyncio.gather(*(broker.wait(s) for s in sessions)), 30)
            return [s.snapshot(count=100) for s in sessions]

    snaps = run(go())
    assert len(snaps) == 30
    # Each half of the query finds records in one database only.
    fazhan, perl = PROBES["zh_title_fazhan_baogao"]["hits"], PROBES["any_perl"]["hits"]
    expected = {"za": fazhan, "zb": fazhan, "m": perl}
    for snap in snaps:
        assert snap["done"] is True
        assert {lib["id"]: (lib["status"], lib["hits"]) for lib in snap["libraries"]} == {
            lid: ("ok", hits) for lid, hits in expected.items()}
        assert snap["merged"] == snaps[0]["merged"]
    assert 1 < running["most"] <= 4


# --- health and suspension ------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["z3950", "sru"])
def test_a_dead_member_is_suspended_after_three_failures(zebra, monkeypatch, protocol):
    cons = consortium(m(zebra), dead("dead", protocol))
    calls = Counter()

    def counting(cls):
        original = cls.search

        async def search(self, *args, **kwargs):
            calls[self.library.id] += 1
            return await original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "search", search)

    counting(SruConnector)
    counting(Z3950Connector)

    async def go():
        async with Broker(cons) as broker:
            snaps = []
            for _ in range(4):
                session = await broker.search("title=perl")
                await broker.wait(session)
                snaps.append(session.snapshot())
            return snaps, broker.health_report()

    snaps, report = run(go())
    for snap in snaps[:3]:
        lib = _by_id(snap)["dead"]
        assert lib["status"] == "error" and "refused" in lib["error"].lower()
    fourth = _by_id(snaps[3])["dead"]
    assert fourth["status"] == "error"
    assert "temporarily suspended" in fourth["error"]
    assert [_by_id(s)["dead"]["reason"] for s in snaps] == ["unreachable"] * 3 + ["suspended"]
    assert all(_by_id(s)["m"]["status"] == "ok" for s in snaps)
    assert calls["dead"] == 3, "a suspended member must not be asked"
    assert calls["m"] == 4
    health = {h["library"]: h for h in report}
    assert health["dead"]["consecutive_failures"] == 3
    assert health["dead"]["success_rate"] == 0.0
    assert health["dead"]["suspended_seconds"] > 0
    assert "refused" in health["dead"]["last_error"].lower()
    assert health["m"]["consecutive_failures"] == 0
    assert health["m"]["success_rate"] == 1.0
    assert health["m"]["searches"] == 4 and health["m"]["p50_ms"] is not None


def test_a_query_diagnostic_is_not_a_failure(zebra):
    cons = consortium(m(zebra), member("odd", "z3950", zebra.z3950_url("marc21"),
                                       indexes={"title": "1=9999"}))

    async def go():
        async with Broker(cons) as broker:
            snaps = []
            for _ in range(4):
                session = await broker.search("title=perl")
                await broker.wait(session)
                snaps.append(session.snapshot())
            return snaps, broker.health_report()

    snaps, report = run(go())
    for snap in snaps:
        odd = _by_id(snap)["odd"]
        assert odd["status"] == "error"
        assert "114" in odd["error"] and "use attribute" in odd["error"]
        assert "suspended" not in odd["error"]
        assert odd["reason"] == "diagnostic"
    health = {h["library"]: h for h in report}["odd"]
    assert health["consecutive_failures"] == 0
    assert health["success_rate"] == 1.0
    assert health["suspended_seconds"] == 0


# --- choosing libraries ---------------------------------------------------------------------


def test_selection_limits_and_default(zebra):
    cons = consortium(za(zebra), zb(zebra), m(zebra), member("paper", None), max_selected=2)

    async def go():
        async with Broker(cons) as broker:
            with pytest.raises(UsageError, match="at most 2"):
                await broker.search("中国", ["za", "zb", "m"])
            assert await _get(broker, "nothing") is None
            with pytest.raises(BalisError):
                await broker.search("中国", ["za", "nosuchlibrary"])
            with pytest.raises(QueryError):
                await broker.search('title="unclosed', ["za"])
            twice = await broker.search("中国", ["za", "za", "m"])  # the same one twice
            everyone = await broker.search("中国")  # no choice: every searchable member
            await broker.wait(twice)
            await broker.wait(everyone)
            return ([lib.id for lib in broker.select(None)], twice.snapshot(),
                    everyone.snapshot())

    default, twice, everyone = run(go())
    assert default == ["za", "zb", "m"]
    assert [lib["id"] for lib in twice["libraries"]] == ["za", "m"]
    assert [lib["id"] for lib in everyone["libraries"]] == ["za", "zb", "m"]
    assert all(lib["status"] == "ok" for lib in everyone["libraries"])


# --- sessions -------------------------------------------------------------------------------


def test_done_sessions_expire_running_ones_do_not(zebra, ztest):
    # The slow member answers well after the fast search is over and expired, even on a
    # loaded machine (with 1 s it could finish, and expire, before it was looked at).
    cons = consortium(m(zebra), slow(ztest, delay=3))

    async def go():
        async with Broker(cons, session_ttl=0.1) as broker:
            fast = await broker.search("perl", ["m"])
            running = await broker.search("title=5", ["slow"])
            await broker.wait(fast)
            assert await _get(broker, fast.id) is fast
            await asyncio.sleep(0.3)
            gone = await _get(broker, fast.id)
            still = await _get(broker, running.id)
            await broker.wait(running)
            await asyncio.sleep(0.3)
            return gone, still, running, await _get(broker, running.id)

    gone, still, running, later = run(go())
    assert gone is None
    assert still is running
    assert later is None


def test_max_sessions_evicts_the_oldest(zebra):
    async def go():
        async with Broker(consortium(m(zebra)), max_sessions=2) as broker:
            sessions = []
            for _ in range(3):
                session = await broker.search("perl")
                await broker.wait(session)
                sessions.append(session)
            return [await _get(broker, s.id) for s in sessions], sessions

    found, sessions = run(go())
    assert found == [None, sessions[1], sessions[2]]


def test_page_past_what_was_fetched_asks_for_more(zebra):
    """Broker.page: a reader paging beyond the fetched records gets them, fetched on
    demand from the libraries that have more."""
    cons = consortium(m(zebra))

    async def run():
        async with Broker(cons) as broker:
            session = await broker.search("year>=2000", per_library=5)
            await broker.wait(session)
            first = await broker.page(session, start=1, count=5, sort="year")
            third = await broker.page(session, start=11, count=5, sort="year")
            return first, third, len(session.merger.clusters)

    first, third, merged = asyncio.run(run())
    assert first["count"] == 5 and first["libraries"][0]["hits"] == 17
    assert third["count"] == 5 and merged >= 15
    assert not {r["id"] for r in first["records"]} & {r["id"] for r in third["records"]}
