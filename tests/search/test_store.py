"""Session stores: in memory, and in a real Redis shared by several brokers (processes).

Redis is a private ``redis-server`` started for the test session (tests/peers,
``redis_server``); the libraries are the Zebra test peer (and yaz-ztest for a slow one).
Two Broker instances with their own RedisStore stand for two web processes; one check runs
in a genuinely separate Python process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest
import redis

from broker.kernel.config import Consortium, load, loads
from broker.kernel.cql import parse
from broker.search import session as session_module
from broker.search.fanout import CANCEL_GRACE, FOLLOW_MAX, Broker
from broker.search.redis_store import GRACE
from broker.search.session import SearchSession
from broker.search.state import decode_source, encode_source
from broker.search.store import (
    MemoryStore,
    RedisStore,
    apply_state,
    dump_session,
    load_session,
    store_from_env,
)
from marc import Holding, Record
from marc.model import RawMarc

QUERY = "中国"  # marc21: 13 hits; unimarc: the BNU records
PER_LIBRARY = 3  # small pages, so that there is more to fetch


def run(coro):
    return asyncio.run(coro)


def _env() -> dict[str, str]:
    """The environment of a child Python: this checkout first on its path (whatever the
    installed package points at)."""
    root = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH")) if p)}


def config_text(zebra, ztest=None) -> str:
    libraries = [
        {"id": "zu", "name": "甲大学图书馆", "category": "test",
         "connector": {"protocol": "z3950", "url": zebra.z3950_url("unimarc"),
                       "format": "unimarc"}},
        {"id": "zs", "name": "乙大学图书馆", "category": "test",
         "connector": {"protocol": "sru", "url": zebra.sru_url("unimarc"),
                       "format": "unimarc"}},
        {"id": "zm", "name": "丙大学图书馆", "category": "test",
         "connector": {"protocol": "z3950", "url": zebra.z3950_url("marc21")}},
    ]
    if ztest is not None:
        libraries.append({"id": "slow", "name": "慢图书馆", "category": "test",
                          "connector": {"protocol": "z3950",
                                        "url": ztest.z3950_url("Default?search-delay=1"),
                                        "timeout": 10}})
    return json.dumps({
        "consortium": {"name": "测试联盟", "max_selected": 10},
        "defaults": {"timeout": 10, "max_records": 20},
        "categories": [{"id": "test", "name": "测试图书馆"}],
        "libraries": libraries,
    }, ensure_ascii=False)


@pytest.fixture
def prefix() -> str:
    """Keys of one test apart from every other test's."""
    return f"test:{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def raw(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


def pair(consortium: Consortium, url: str, prefix: str, ttl: float = 60.0
         ) -> tuple[Broker, Broker]:
    """Two brokers sharing one Redis, as two web processes would."""
    return (Broker(consortium, store=RedisStore(url, ttl, prefix=prefix)),
            Broker(consortium, store=RedisStore(url, ttl, prefix=prefix)))


VIEWS = [
    {},
    {"sort": "year"},
    {"sort": "-year", "start": 3, "count": 4},
    {"sort": "title", "count": 100},
    {"filters": {"library": ["zm"]}, "count": 100},
]


def views(session: SearchSession) -> list[dict]:
    return [session.snapshot(**view) for view in VIEWS]


def structure(session: SearchSession) -> list[tuple[str, list[tuple[str, Record]]]]:
    return [(c.id, list(c.records)) for c in session.merger.clusters]


def states(session: SearchSession) -> list[tuple]:
    return [(lid, s.status, s.hits, s.fetched, s.elapsed_ms, s.error, s.next_start,
             s.problems) for lid, s in session.states.items()]


# --- two brokers, one Redis -------------------------------------------------------------------


def test_a_session_is_shared_and_paged_by_either_process(zebra, redis_server, prefix, raw):
    consortium = loads(config_text(zebra))

    async def go():
        a, b = pair(consortium, redis_server.url, prefix)
        async with a, b:
            mine = await a.search(QUERY, ["zu", "zs", "zm"], per_library=PER_LIBRARY)
            await a.wait(mine)
            assert mine.done and len(mine.merger.clusters) > 0
            theirs = await b.get(mine.id)
            assert theirs is not None and theirs is not mine and theirs.task is None
            first = (views(mine), views(theirs), structure(mine), structure(theirs),
                     states(mine), states(theirs))
            clocks = {"started": 0, "deadline": 0}  # wall-clock times, to within rounding
            assert dump_session(theirs) | clocks == dump_session(mine) | clocks
            assert abs(dump_session(theirs)["deadline"] - dump_session(mine)["deadline"]) < 0.01

            # B pages further with its own connectors; A then sees the new records.
            before = len(mine.merger.clusters)
            await b.fetch_more(theirs, before + 5)
            grown = len(theirs.merger.clusters)
            again = await a.get(mine.id)
            second = (again is mine, grown, before, views(mine), views(theirs),
                      structure(mine), structure(theirs), states(theirs))

            # And the other way round: A fetches more, B sees it.
            await a.fetch_more(mine, grown + 5)
            seen = await b.get(mine.id)
            third = (seen is theirs, len(mine.merger.clusters), grown, views(mine),
                     views(theirs), structure(mine), structure(theirs))
            return first, second, third

    first, second, third = run(go())
    views_a, views_b, clusters_a, clusters_b, states_a, states_b = first
    assert views_b == views_a
    assert clusters_b == clusters_a  # the same ids, order, members (Record equality)
    assert states_b == states_a
    snapshot = views_a[0]
    assert snapshot["done"] is True
    assert [lib["status"] for lib in snapshot["libraries"]] == ["ok", "ok", "ok"]
    assert any(len(r["libraries"]) > 1 for r in views_a[3]["records"])  # zu and zs merged

    same_object, grown, before, views_a, views_b, clusters_a, clusters_b, states_b = second
    assert same_object  # the live session, brought up to date in place
    assert grown > before
    assert views_a == views_b
    assert clusters_a == clusters_b
    assert any(next_start > PER_LIBRARY + 1 for *_, next_start, _p in states_b)

    same_object, now, grown, views_a, views_b, clusters_a, clusters_b = third
    assert same_object
    assert now > grown
    assert views_a == views_b
    assert clusters_a == clusters_b


def test_the_stored_state(zebra, redis_server, prefix, raw):
    consortium = loads(config_text(zebra))

    async def go():
        async with Broker(consortium, store=RedisStore(redis_server.url, 60,
                                                       prefix=prefix)) as a:
            session = await a.search(QUERY, ["zu", "zm"], per_library=PER_LIBRARY)
            await a.wait(session)
            return session, dump_session(session)

    session, dumped = run(go())
    stored = raw.hgetall(f"{prefix}{session.id}")
    assert set(stored) == {b"version", b"data"}
    assert int(stored[b"version"]) == session.version >= 3  # created, 2 answers, done
    data = json.loads(stored[b"data"])
    assert data | {"started": 0, "deadline": 0} == dumped | {"started": 0, "deadline": 0}
    assert abs(data["started"] - dumped["started"]) < 0.05
    assert abs(data["deadline"] - dumped["deadline"]) < 0.05
    assert data["deadline"] - data["started"] == pytest.approx(10 + 10, abs=0.05)
    assert data["format"] == 1 and data["query"] == QUERY and data["finished"] is True
    assert data["per_library"] == PER_LIBRARY and data["timeout"] is None
    assert data["elapsed_ms"] == session.elapsed_ms()
    assert [lib["id"] for lib in data["libraries"]] == ["zu", "zm"]
    assert set(data["libraries"][0]) == {"id", "name", "status", "hits", "fetched",
                                         "elapsed_ms", "error", "reason", "next_start",
                                         "problems"}
    entries = [entry for cluster in data["clusters"] for entry in cluster["records"]]
    assert sorted(entry[0] for entry in entries) == list(range(len(entries)))
    assert {entry[1] for entry in entries} == {"zu", "zm"}
    assert all(Record.from_dict(entry[2]).as_dict() == entry[2] for entry in entries)
    assert 0 < raw.pttl(f"{prefix}{session.id}") <= 60_000


def test_a_separate_process_reads_the_session(zebra, redis_server, prefix, tmp_path):
    config = tmp_path / "libraries.yaml"
    config.write_text(config_text(zebra), "utf-8")
    consortium = load(config)

    async def go():
        async with Broker(consortium, store=RedisStore(redis_server.url, 60,
                                                       prefix=prefix)) as a:
            session = await a.search(QUERY, ["zu", "zs", "zm"], per_library=PER_LIBRARY)
            await a.wait(session)
            return session.id, session.snapshot(count=1000)

    session_id, snapshot = run(go())
    script = textwrap.dedent("""
        import asyncio, json, sys
        from broker.search.fanout import Broker
        from broker.kernel.config import load
        from broker.search.store import RedisStore

        async def main(config, url, prefix, session_id):
            store = RedisStore(url, 60, prefix=prefix)
            async with Broker(load(config), store=store) as broker:
                session = await broker.get(session_id)
                snapshot = session.snapshot(count=1000)
                print(json.dumps({"records": len(snapshot["records"]),
                                  "ids": [r["id"] for r in snapshot["records"]],
                                  "done": snapshot["done"]}))

        asyncio.run(main(*sys.argv[1:]))
    """)
    done = subprocess.run([sys.executable, "-c", script, str(config), redis_server.url,
                           prefix, session_id], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path, env=_env())
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["records"] == len(snapshot["records"]) > 0
    assert seen["ids"] == [r["id"] for r in snapshot["records"]]
    assert seen["done"] is True


def test_another_process_follows_a_search_still_running(zebra, ztest, redis_server, prefix):
    consortium = loads(config_text(zebra, ztest))

    async def go():
        a, b = pair(consortium, redis_server.url, prefix)
        async with a, b:
            mine = await a.search("title=5", ["zm", "slow"])  # slow: a 1 s search delay
            await asyncio.sleep(0.3)
            theirs = await b.get(mine.id)
            early = theirs.snapshot()
            await b.fetch_more(theirs, 100)  # not while the owner still writes: nothing
            after_fetch = theirs.snapshot()
            await b.wait(theirs)  # follows the stored state until the owner is done
            await a.wait(mine)
            return early, after_fetch, theirs.snapshot(), mine.snapshot()

    early, after_fetch, followed, final = run(go())
    assert early["done"] is False
    assert {lib["id"]: lib["status"] for lib in early["libraries"]}["slow"] == "pending"
    assert after_fetch["fetched"] == early["fetched"]
    assert followed == final
    assert followed["done"] is True
    assert [lib["status"] for lib in followed["libraries"]] == ["ok", "ok"]


def test_sessions_expire_in_redis_after_the_ttl(zebra, redis_server, prefix, raw):
    consortium = loads(config_text(zebra))

    async def go():
        a, b = pair(consortium, redis_server.url, prefix, ttl=1.0)
        async with a, b:
            used = await a.search(QUERY, ["zm"], per_library=PER_LIBRARY)
            idle = await a.search(QUERY, ["zu"], per_library=PER_LIBRARY)
            await a.wait(used)
            await a.wait(idle)
            keys = {s.id: f"{prefix}{s.id}" for s in (used, idle)}
            ttls = [raw.pttl(key) for key in keys.values()]
            for _ in range(3):  # a use by either process keeps the session alive
                await asyncio.sleep(0.5)
                assert await b.get(used.id) is not None
            alive = (raw.exists(keys[used.id]), raw.exists(keys[idle.id]))
            idle_from_b = await b.get(idle.id)
            idle_from_a = await a.get(idle.id)
            await asyncio.sleep(1.3)
            return ttls, alive, idle_from_b, idle_from_a, await b.get(used.id), \
                await a.get(used.id), raw.exists(keys[used.id])

    ttls, alive, idle_from_b, idle_from_a, used_b, used_a, used_exists = run(go())
    assert all(0 < ttl <= 1000 for ttl in ttls)
    assert alive == (1, 0)
    assert idle_from_b is None and idle_from_a is None
    assert used_b is None and used_a is None and used_exists == 0


def test_a_stale_copy_does_not_overwrite_a_newer_state(zebra, redis_server, prefix, raw):
    consortium = loads(config_text(zebra))

    async def go():
        a, b = pair(consortium, redis_server.url, prefix)
        async with a, b:
            mine = await a.search(QUERY, ["zm"], per_library=PER_LIBRARY)
            await a.wait(mine)
            theirs = await b.get(mine.id)
            await b.fetch_more(theirs, len(theirs.merger.clusters) + 1)  # revision + 1
            stale_version = mine.version
            await a.store.save(mine)  # A has not looked since: its copy is stale
            stored = json.loads(raw.hget(f"{prefix}{mine.id}", "data"))
            refreshed = await a.get(mine.id)
            return (stale_version, theirs.version, stored["libraries"][0]["fetched"],
                    theirs.states["zm"].fetched, refreshed.states["zm"].fetched,
                    refreshed.version)

    stale, newest, stored_fetched, their_fetched, refreshed_fetched, refreshed = run(go())
    assert newest == stale + 1
    assert stored_fetched == their_fetched > PER_LIBRARY  # B's state stayed
    assert refreshed_fetched == their_fetched and refreshed == newest


# --- rebuilding, without Redis ------------------------------------------------------------------


def _consortium_of(*ids: str) -> Consortium:
    return loads(json.dumps({
        "consortium": {"name": "测试联盟", "max_selected": 10},
        "categories": [{"id": "test", "name": "测试"}],
        "libraries": [{"id": lid, "name": f"{lid}馆", "category": "test",
                       "connector": {"protocol": "z3950", "url": "z3950://127.0.0.1:9/x"}}
                      for lid in ids],
    }))


def _session(consortium: Consortium, query: str = "title=x") -> SearchSession:
    return SearchSession(uuid.uuid4().hex[:16], query, parse(query),
                         list(consortium.libraries), per_library=None, timeout=None)


def test_rebuild_follows_arrival_order_not_cluster_order():
    """a (ISBN A), then r (ISBN X), then b (ISBNs A and X): b joins a's cluster, r keeps its
    own. The session is rebuilt from the records in arrival order, so the clusters come out
    as they were; and since a's ISBN vetoes r, feeding them cluster by cluster gives the
    same clusters too (a rule that joined by any shared ISBN would put r with a+b)."""
    consortium = _consortium_of("p", "q")
    session = _session(consortium)
    session.sort = "-year"
    a = Record("p:1", "marc21", "Alpha", isbns=("9787020065875",), year=2001)
    r = Record("q:7", "marc21", "Other title", isbns=("9780786808779",), year=1999,
               holdings=(Holding("q", "stacks", "QA76", "001", "available"),))
    b = Record("q:8", "marc21", "Alpha", isbns=("9787020065875", "9780786808779"))
    session.add_records("p", 1, (a,))
    session.add_records("q", 1, (r, b))
    session.add_records("q", 1, (r,))  # the same page again: not merged twice
    for state in session.states.values():
        state.status, state.hits = "ok", 3
    session.touch()
    assert [[rec.id for _, rec in c.records] for c in session.merger.clusters] == \
        [["p:1", "q:8"], ["q:7"]]

    data = json.loads(json.dumps(dump_session(session)))
    rebuilt = load_session(data, consortium)
    assert rebuilt.sort == "-year"  # the searcher's order travels with the state
    assert load_session({k: v for k, v in data.items() if k != "sort"}, consortium).sort == \
        "relevance"  # a state saved before sorts were kept
    assert structure(rebuilt) == structure(session)
    assert views(rebuilt) == views(session)
    assert (dump_session(rebuilt) | {"started": 0, "deadline": 0}
            == data | {"started": 0, "deadline": 0})

    by_cluster = _session(consortium)  # what storing cluster by cluster would give
    for cluster in session.merger.clusters:
        for library, record in cluster.records:
            by_cluster.merger.add(library, (record,))
    assert structure(by_cluster) == structure(session)


def test_apply_state_in_place_keeps_the_object_and_wakes_waiters():
    consortium = _consortium_of("p")
    older, newer = _session(consortium), None
    newer = SearchSession(older.id, older.query_text, older.query, list(consortium.libraries),
                          per_library=None, timeout=None)
    newer.states["p"].status, newer.states["p"].hits = "ok", 1
    newer.add_records("p", 1, (Record("p:1", "marc21", "Alpha"),))

    async def go():
        waiter = asyncio.create_task(older.changed(timeout=5))
        await asyncio.sleep(0)
        apply_state(older, dump_session(newer))
        await asyncio.wait_for(waiter, 1)
        return older.snapshot()

    snapshot = run(go())
    assert snapshot["done"] is True
    assert [r["sources"] for r in snapshot["records"]] == [["p:1"]]
    assert snapshot == newer.snapshot() | {"elapsed_ms": snapshot["elapsed_ms"]}


def test_the_failure_reason_is_kept_and_older_states_load_without_it():
    consortium = _consortium_of("p", "q")
    session = _session(consortium)
    session.states["p"].status, session.states["p"].hits = "ok", 0
    failed = session.states["q"]
    failed.status, failed.error, failed.reason = "error", "cannot connect to x:1", "unreachable"
    session.touch()
    data = json.loads(json.dumps(dump_session(session)))
    rebuilt = load_session(data, consortium)
    assert rebuilt.states["q"].reason == "unreachable"
    assert rebuilt.snapshot()["libraries"][1]["reason"] == "unreachable"
    older = data | {"libraries": [{k: v for k, v in lib.items() if k != "reason"}
                                  for lib in data["libraries"]]}
    assert load_session(older, consortium).states["q"].reason is None  # saved before reasons
    odd = data | {"libraries": [lib | {"reason": "martian"} for lib in data["libraries"]]}
    assert load_session(odd, consortium).states["q"].reason is None  # unknown: no code


def test_a_library_unknown_here_is_not_rebuilt():
    session = _session(_consortium_of("p", "q"))
    with pytest.raises(ValueError, match="q"):
        load_session(dump_session(session), _consortium_of("p"))
    with pytest.raises(ValueError, match="format"):
        load_session(dump_session(session) | {"format": 99}, _consortium_of("p", "q"))


# --- the in-memory store (the default) -------------------------------------------------------


def _finished(session: SearchSession) -> SearchSession:
    for state in session.states.values():
        state.status = "ok"
    session.touch()
    return session


def test_memory_store_ttl_spares_running_searches():
    consortium = _consortium_of("p")

    async def go():
        store = MemoryStore(ttl=0.1, max_sessions=10)
        done = _finished(_session(consortium))
        running = _session(consortium)
        running.task = asyncio.create_task(asyncio.sleep(5))
        await store.add(done)
        await store.add(running)
        assert await store.get(done.id, consortium) is done
        await asyncio.sleep(0.2)
        found = (await store.get(done.id, consortium), await store.get(running.id, consortium))
        running.task.cancel()
        return found, running

    (gone, still), running = run(go())
    assert gone is None
    assert still is running


def test_memory_store_keeps_at_most_max_sessions():
    consortium = _consortium_of("p")

    async def go():
        store = MemoryStore(ttl=60, max_sessions=2)
        sessions = [_finished(_session(consortium)) for _ in range(2)]
        oldest_running = _session(consortium)
        oldest_running.task = asyncio.create_task(asyncio.sleep(5))
        await store.add(oldest_running)
        for session in sessions:
            await store.add(session)
        await store.get(sessions[0].id, consortium)  # a use makes it the newest
        newest = _finished(_session(consortium))
        await store.add(newest)
        found = [await store.get(s.id, consortium)
                 for s in (oldest_running, *sessions, newest)]
        await asyncio.sleep(0)
        return found, oldest_running.task.cancelled(), sessions, newest, store.live()

    found, cancelled, sessions, newest, live = run(go())
    assert found == [None, sessions[0], None, newest]
    assert cancelled  # a search evicted while running is stopped
    assert live == [sessions[0], newest]


def test_broker_defaults_to_memory_store():
    consortium = _consortium_of("p")
    broker = Broker(consortium, session_ttl=5, max_sessions=3)
    assert isinstance(broker.store, MemoryStore)
    assert (broker.store.ttl, broker.store.max_sessions) == (5, 3)


def test_store_from_env():
    memory = store_from_env({}, ttl=30)
    assert isinstance(memory, MemoryStore) and memory.ttl == 30
    assert isinstance(store_from_env({"BALIS_REDIS_URL": "  "}), MemoryStore)

    async def go():  # the client connects on first use: nothing is contacted here
        store = store_from_env({"BALIS_REDIS_URL": "redis://127.0.0.1:9/2"}, ttl=30)
        await store.close()
        return store

    store = run(go())
    assert isinstance(store, RedisStore)
    assert (store.url, store.ttl) == ("redis://127.0.0.1:9/2", 30)


def test_memory_store_needs_no_redis_import():
    code = ("import sys, broker.search.fanout, broker.search.store; "
            "print('redis' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).parent, env=_env())
    assert done.stdout.strip() == "False", done.stderr


def test_redis_server_fixture_is_private(redis_server, raw):
    assert raw.ping()
    assert raw.config_get("save")["save"] == ""
    assert raw.config_get("appendonly")["appendonly"] == "no"
    assert redis_server.pid is not None


# --- a search whose process stops: ended or taken over by another ------------------------------

SLOW_TIMEOUT = 2  # seconds the slow library is given; it answers after a minute


def stop_config(zebra, ztest) -> Consortium:
    """A fast library (Zebra) and one that never answers in time (yaz-ztest's delay)."""
    return loads(json.dumps({
        "consortium": {"name": "测试联盟", "max_selected": 10},
        "defaults": {"timeout": 10, "max_records": 20},
        "categories": [{"id": "test", "name": "测试图书馆"}],
        "libraries": [
            {"id": "zm", "name": "丙大学图书馆", "category": "test",
             "connector": {"protocol": "z3950", "url": zebra.z3950_url("marc21")}},
            {"id": "slow", "name": "慢图书馆", "category": "test",
             "connector": {"protocol": "z3950",
                           "url": ztest.z3950_url("Default?search-delay=60"),
                           "timeout": SLOW_TIMEOUT}},
        ],
    }, ensure_ascii=False))


class DeadOwner:
    """A broker on its own event loop in a thread, which stops dead right after it has
    stored a new search (as a killed process's would): nothing it started runs again and
    its owner lease is not renewed. ``close()`` afterwards revives it only to close it."""

    def __init__(self, consortium: Consortium, url: str, prefix: str, lease: float) -> None:
        self.loop = asyncio.new_event_loop()
        self.broker = Broker(consortium, store=RedisStore(url, 60, prefix=prefix,
                                                          lease=lease))
        self.session: SearchSession | None = None

    def start(self, query: str, libraries: list[str], timeout: float | None = None
              ) -> SearchSession:
        async def search() -> None:
            self.session = await self.broker.search(query, libraries, timeout=timeout)
            self.loop.stop()  # before the search task's first step: it never runs

        self.loop.create_task(search())
        thread = threading.Thread(target=self.loop.run_forever)
        thread.start()
        thread.join(30)
        assert self.session is not None and not thread.is_alive()
        return self.session

    def close(self) -> None:
        # What it started stays dead (cancelled unrun); only its connections are closed.
        tasks = asyncio.all_tasks(self.loop)
        for task in tasks:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        with contextlib.suppress(Exception):
            self.loop.run_until_complete(asyncio.wait_for(self.broker.close(), 10))
        self.loop.close()


def test_a_search_whose_owner_died_is_taken_over_and_ends_by_its_deadline(
        zebra, ztest, redis_server, prefix, raw):
    consortium = stop_config(zebra, ztest)
    owner = DeadOwner(consortium, redis_server.url, prefix, lease=0.6)
    dead = owner.start(QUERY, ["zm", "slow"])
    lease = f"{prefix}{dead.id}:owner"
    leased = raw.get(lease)

    async def go():
        b = Broker(consortium, store=RedisStore(redis_server.url, 60, prefix=prefix))
        c = Broker(consortium, store=RedisStore(redis_server.url, 60, prefix=prefix))
        async with b, c:
            theirs = await b.get(dead.id)
            early = theirs.snapshot()
            await b.wait(theirs)  # the lease lapses: B takes the search over
            ended = time.monotonic()
            taken = theirs.task is not None
            seen = await c.get(dead.id)  # a third process reads the final state
            cluster = seen.merger.clusters[0]
            before = [record.source for _lib, record in cluster.records]
            await c.store.attach_sources(seen, cluster)
            shown = {record.id: record.marc() for _lib, record in cluster.records}
            own = {record.id: record.marc() for _lib, record in
                   theirs.merger.find(cluster.id).records}
            return (early, theirs.snapshot(), seen.snapshot(), ended, theirs.deadline,
                    taken, before, shown, own, seen.task)

    try:
        early, final, third, ended, deadline, taken, before, shown, own, third_task = \
            run(go())
    finally:
        owner.close()
    assert leased == owner.broker.store.owner.encode()  # the dead owner held the lease
    assert early["done"] is False
    assert [lib["status"] for lib in early["libraries"]] == ["pending", "pending"]
    assert taken  # B asked the libraries again (its own task ran the first round)
    # Long before its deadline, as a rule; but about one run in ten the taken-over round
    # overruns it (cause not yet found, see the CHANGELOG), and then the reader is still
    # answered within the bound Broker.wait guarantees.
    assert final["done"] is True and ended <= deadline + 2 * CANCEL_GRACE + 3
    by_id = {lib["id"]: lib for lib in final["libraries"]}
    assert by_id["zm"]["status"] == "ok" and by_id["zm"]["hits"] == 13
    assert by_id["slow"]["status"] == "timeout" and by_id["slow"]["reason"] == "timeout"
    assert third == final | {"elapsed_ms": third["elapsed_ms"]}
    assert third["elapsed_ms"] == final["elapsed_ms"]
    assert third_task is None  # C only read it
    assert raw.exists(lease) == 0  # B released the lease when its round was done
    # C's copy had no MARC until asked; then the MARC B's connector brought.
    assert before == [None] * len(before)
    assert shown and all(marc is not None for marc in shown.values())
    assert {rid: marc.as_marc() for rid, marc in shown.items()} == \
        {rid: marc.as_marc() for rid, marc in own.items()}


def test_readers_end_an_orphaned_search_past_its_deadline_and_agree(
        zebra, ztest, redis_server, prefix, raw, monkeypatch):
    monkeypatch.setattr(session_module, "DEADLINE_MARGIN", 0.0)  # deadline: SLOW_TIMEOUT s
    consortium = stop_config(zebra, ztest)
    owner = DeadOwner(consortium, redis_server.url, prefix, lease=0.3)
    dead = owner.start(QUERY, ["zm", "slow"], timeout=SLOW_TIMEOUT)
    key = f"{prefix}{dead.id}"
    version_before = int(raw.hget(key, "version"))

    async def go():
        b = Broker(consortium, store=RedisStore(redis_server.url, 60, prefix=prefix))
        c = Broker(consortium, store=RedisStore(redis_server.url, 60, prefix=prefix))
        async with b, c:
            await asyncio.sleep(max(0.0, dead.deadline - time.monotonic()) + 0.1)
            # Two processes read it at once past its deadline: both end it.
            mine, theirs = await asyncio.gather(b.get(dead.id), c.get(dead.id))
            return mine.snapshot(), theirs.snapshot(), mine.task, theirs.task

    try:
        mine, theirs, task_b, task_c = run(go())
    finally:
        owner.close()
    stored = json.loads(raw.hget(key, "data"))
    assert int(raw.hget(key, "version")) == version_before + 1  # one write won
    assert task_b is None and task_c is None  # too late to ask again
    assert mine == theirs
    assert mine["done"] is True and stored["finished"] is True
    for lib in (*mine["libraries"], *stored["libraries"]):
        assert (lib["status"], lib["reason"]) == ("timeout", "interrupted"), lib
        assert "stopped" in lib["error"]
    assert mine["elapsed_ms"] == pytest.approx(SLOW_TIMEOUT * 1000, abs=50)  # its deadline


def test_a_live_owner_past_its_deadline_is_ended_by_its_reader(
        zebra, ztest, redis_server, prefix, raw, monkeypatch):
    monkeypatch.setattr(session_module, "DEADLINE_MARGIN", 0.0)
    consortium = stop_config(zebra, ztest)
    owner = DeadOwner(consortium, redis_server.url, prefix, lease=0.3)
    dead = owner.start(QUERY, ["zm", "slow"], timeout=SLOW_TIMEOUT)
    # Its owner is alive but stuck (a lease someone keeps renewing): only past the
    # deadline and the grace does the reader end the search.
    raw.set(f"{prefix}{dead.id}:owner", "another-process", px=60_000)

    async def go():
        async with Broker(consortium, store=RedisStore(redis_server.url, 60,
                                                       prefix=prefix)) as b:
            theirs = await b.get(dead.id)
            await b.wait(theirs)
            return theirs.snapshot(), time.monotonic(), theirs.deadline, theirs.task

    try:
        final, ended, deadline, task = run(go())
    finally:
        owner.close()
    assert task is None  # never taken over: its owner holds the lease
    assert final["done"] is True
    assert {(lib["status"], lib["reason"]) for lib in final["libraries"]} == \
        {("timeout", "timeout")}
    assert deadline + GRACE <= ended <= deadline + GRACE + FOLLOW_MAX + 1


def test_the_marc_of_every_record_is_stored_beside_the_state(zebra, redis_server, prefix, raw):
    consortium = loads(config_text(zebra))

    async def go():
        a, b = pair(consortium, redis_server.url, prefix)
        async with a, b:
            mine = await a.search(QUERY, ["zu", "zm"], per_library=PER_LIBRARY)
            await a.wait(mine)
            theirs = await b.get(mine.id)
            shown = {}
            for cluster in theirs.merger.clusters:
                await b.store.attach_sources(theirs, cluster)
                shown.update({(lib, rec.id): rec.marc() for lib, rec in cluster.records})
            again = await b.get(mine.id)  # a rebuild keeps what was fetched
            kept = all(rec.source is not None for _lib, rec in again.arrivals)
            dumped_after = dump_session(theirs)
            raw.delete(f"{prefix}{mine.id}:marc")  # expired, or evicted
            async with Broker(consortium, store=RedisStore(redis_server.url, 60,
                                                           prefix=prefix)) as c:
                fresh = await c.get(mine.id)
                cluster = fresh.merger.clusters[0]
                await c.store.attach_sources(fresh, cluster)
                lost = [rec.marc() for _lib, rec in cluster.records]
            return mine, shown, kept, dumped_after, lost

    mine, shown, kept, dumped_after, lost = run(go())
    key = f"{prefix}{mine.id}:marc"
    own = {(lib, rec.id): rec.marc() for lib, rec in mine.arrivals}
    assert len(own) == sum(s.fetched for s in mine.states.values()) > 0
    assert {k: v.as_marc() for k, v in shown.items()} == {k: v.as_marc() for k, v in own.items()}
    assert kept
    # Putting the MARC back changed nothing else of the session.
    assert dumped_after | {"started": 0, "deadline": 0} == \
        dump_session(mine) | {"started": 0, "deadline": 0}
    assert raw.exists(key) == 0 and lost == [None] * len(lost)


def test_a_source_survives_encoding(zebra):
    consortium = loads(config_text(zebra))

    async def go():
        async with Broker(consortium) as a:
            session = await a.search(QUERY, ["zu"], per_library=PER_LIBRARY)
            await a.wait(session)
            return session

    session = run(go())
    record = session.arrivals[0][1]
    assert isinstance(record.source, RawMarc) and record.source.encoding
    back = decode_source(encode_source(record))
    assert back == record.source
    parsed = Record("x:1", "unimarc", "t", source=record.marc())  # a parsed pymarc record
    again = decode_source(encode_source(parsed))
    assert again is not None and again.parse().as_marc() == record.marc().as_marc()
    assert decode_source(b"not ours") is None
    assert encode_source(Record("x:2", "marc21", "no MARC")) is None


def test_a_search_whose_owner_closed_mid_search_is_finished_by_another(
        zebra, ztest, redis_server, prefix, raw):
    consortium = stop_config(zebra, ztest)

    async def go():
        a = Broker(consortium, store=RedisStore(redis_server.url, 60, prefix=prefix,
                                                lease=0.5))
        mine = await a.search(QUERY, ["zm", "slow"])
        await asyncio.sleep(0.5)  # zm has answered, slow is still being asked
        await a.close()  # its process stops: the search is cancelled, not ended
        lease_left = raw.pttl(f"{prefix}{mine.id}:owner")
        async with Broker(consortium, store=RedisStore(redis_server.url, 60,
                                                       prefix=prefix)) as b:
            theirs = await b.get(mine.id)
            before = theirs.snapshot()
            await b.wait(theirs)
            return before, theirs.snapshot(), lease_left, theirs.task is not None

    before, final, lease_left, taken = run(go())
    assert lease_left > 0  # left to lapse, not deleted: a drain could still save its end
    assert {lib["id"]: lib["status"] for lib in before["libraries"]} == \
        {"zm": "ok", "slow": "pending"}
    assert taken and final["done"] is True
    by_id = {lib["id"]: lib for lib in final["libraries"]}
    assert by_id["zm"] == {lib["id"]: lib for lib in before["libraries"]}["zm"]  # not asked again
    assert (by_id["slow"]["status"], by_id["slow"]["reason"]) == ("timeout", "timeout")
    assert final["fetched"] == before["fetched"] > 0
