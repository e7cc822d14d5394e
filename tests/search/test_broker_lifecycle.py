"""Broker.drain (SIGTERM of balis serve) and Broker.reload (SIGHUP) against real members:
yaz-ztest, slow with ``search-delay``, and Redis as the store other processes read."""

from __future__ import annotations

import asyncio

from peers.consortia import config_text, member, run, slow

from broker.kernel.config import loads
from broker.kernel.errors import ConfigError
from broker.search.fanout import Broker
from broker.search.lifecycle import STOPPED_ERROR, ConsortiumChanges
from broker.search.store import RedisStore


def _fast(ztest, lid: str = "fast", **connector) -> dict:
    return member(lid, "z3950", ztest.z3950_url("Default"), **connector)


def test_drain_waits_for_the_searches_running_here(ztest):
    cons = loads(config_text(_fast(ztest), slow(ztest, delay=2)))

    async def main():
        async with Broker(cons) as broker:
            assert broker.running() == []
            session = await broker.search("title=5")
            other = await broker.search("title=7", ["fast"])
            await broker.wait(other)
            assert broker.running() == [session]
            assert 0 < broker.time_left(session) <= 10 + 10
            report = await broker.drain(30)
            return session, report

    session, report = run(main())
    assert (report.drained, report.gave_up) == (1, 0)
    assert session.done
    assert {lid: s.status for lid, s in session.states.items()} == {"fast": "ok", "slow": "ok"}
    assert session.states["slow"].hits == 5


def test_drain_with_nothing_running_returns_at_once(ztest):
    cons = loads(config_text(_fast(ztest)))

    async def main():
        async with Broker(cons) as broker:
            return await broker.drain(30)

    report = run(main())
    assert (report.drained, report.gave_up) == (0, 0)
    assert report.seconds < 30


def test_drain_gives_up_at_its_limit_and_saves_the_final_state(ztest, redis_server):
    """A search slower than the drain limit: its pending library is saved as timed out, so
    another process sharing Redis reads a finished search with every library's state, and
    a reader waiting on this process gets the session rather than an error."""
    cons = loads(config_text(_fast(ztest), slow(ztest, delay=4)))

    async def main():
        async with Broker(cons, store=RedisStore(redis_server.url)) as owner, \
                Broker(cons, store=RedisStore(redis_server.url)) as elsewhere:
            session = await owner.search("title=5")
            waiter = asyncio.create_task(owner.wait(session))
            while not session.states["fast"].finished:
                await session.changed(timeout=5)
            report = await owner.drain(0.5)
            waited = await asyncio.wait_for(waiter, 5)
            seen = await elsewhere.get(session.id)
            return session, report, waited, seen

    session, report, waited, seen = run(main())
    assert (report.drained, report.gave_up) == (0, 1)
    assert waited is session and session.done
    assert seen is not None and seen.done
    states = {lid: (s.status, s.reason, s.error) for lid, s in seen.states.items()}
    assert states["fast"][0] == "ok"
    assert states["slow"] == ("timeout", "timeout", STOPPED_ERROR)


def test_reload_new_searches_use_the_new_libraries_running_ones_keep_theirs(ztest):
    old = loads(config_text(slow(ztest, "a", delay=2), _fast(ztest, "c")))
    new = loads(config_text(slow(ztest, "a", delay=2, timeout=7), _fast(ztest, "b")))

    async def main():
        async with Broker(old) as broker:
            before = await broker.search("title=5", ["a"])
            await asyncio.sleep(0.3)  # asked: its connector is in use
            running = broker.connectors.is_open("a")
            changes = await broker.reload(new)
            assert running in broker.connectors.retired  # still used by the search begun before
            assert broker.connectors.is_open("c") is None  # idle: closed at once
            after = await broker.search("title=6", ["a", "b"])
            await broker.wait(before)
            await broker.wait(after)
            try:
                await broker.search("title=3", ["c"])
                removed_searchable = True
            except ConfigError:
                removed_searchable = False
            return (broker, broker.connectors.is_open("a"), before, after, changes, running,
                    removed_searchable)

    broker, current, before, after, changes, running, removed_searchable = run(main())
    assert changes == ConsortiumChanges(added=("b",), removed=("c",), changed=("a",))
    assert changes.describe() == "added 1 (b), removed 1 (c), changed 1 (a)"
    assert not removed_searchable
    # The search begun before the reload ran with library a as it was then, to the end.
    assert before.states["a"].library == old.library("a")
    assert before.states["a"].status == "ok" and before.states["a"].hits == 5
    assert after.states["a"].library == new.library("a")
    assert {s.status for s in after.states.values()} == {"ok"}
    assert after.states["b"].hits == 6
    # The old connector was closed once idle; the new search made its own.
    assert broker.connectors.retired == ()
    assert current is not None and current is not running
    assert current.library == new.library("a")
    assert {r["library"] for r in broker.health_report()} == {"a", "b"}
