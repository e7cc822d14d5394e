"""A search session's state as plain data, and its records' MARC as bytes.

What one process writes to the shared store (broker/search/redis_store.py) and another
rebuilds a ``SearchSession`` from. The state (``"format": 1``)::

    {"format": 1, "id": ..., "query": "title=perl", "per_library": null, "timeout": null,
     "sort": "relevance" (the searcher's order; absent in older states),
     "started": 1767171600.25 (wall clock), "deadline": 1767171620.25 (wall clock: when
     the first round must be over; absent in older states, then computed as here),
     "finished": true, "elapsed_ms": 812,
     "libraries": [{"id", "name", "status", "hits", "fetched", "elapsed_ms", "error",
                    "reason" (absent in older states), "next_start", "problems"}],
     "clusters": [{"id": "bnu:123", "records": [[arrival, library, record dict], ...]}]}

``arrival`` numbers the records in the order the merger took them (0, 1, 2...): a
rebuild feeds them in that order, which is what makes the clusters the same.

A record's raw MARC is not in the state (it is most of the size and only a MARC view
needs it): ``encode_source`` turns it into bytes stored beside the state, one per
``source_key`` (library and record id), and ``decode_source`` gives back a ``RawMarc``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import pymarc

from broker.kernel.config import Consortium
from broker.kernel.cql import parse
from broker.kernel.literals import one_of
from broker.search.merge import Cluster, Merger
from broker.search.session import FAILURE_REASONS, SearchSession, first_round_seconds
from marc import Record
from marc.model import RawMarc

logger = logging.getLogger(__name__)

STATE_FORMAT = 1
_SOURCE_FORMAT = b"m1"  # the first part of an encoded source: how the rest is laid out


def dump_session(session: SearchSession) -> dict[str, Any]:
    """The session's state as JSON-ready data (the module docstring's format)."""
    first: dict[int, int] = {}  # record object -> the first time the merger was given it
    for n, (_library, record) in enumerate(session.arrivals):
        first.setdefault(id(record), n)
    merged = sorted(first[id(record)] for cluster in session.merger.clusters
                    for _library, record in cluster.records)
    arrival = {n: i for i, n in enumerate(merged)}  # numbered 0, 1, 2... without gaps
    finished = session.done
    wall = time.time() - time.monotonic()  # add to a monotonic time: the wall clock's
    return {
        "format": STATE_FORMAT,
        "id": session.id,
        "query": session.query_text,
        "per_library": session.per_library,
        "timeout": session.timeout,
        "sort": session.sort,
        "started": wall + session.started,
        "deadline": wall + session.deadline,
        "finished": finished,
        "elapsed_ms": session.elapsed_ms() if finished else None,
        "libraries": [{
            "id": lid, "name": state.library.name, "status": state.status,
            "hits": state.hits, "fetched": state.fetched, "elapsed_ms": state.elapsed_ms,
            "error": state.error, "reason": state.reason, "next_start": state.next_start,
            "problems": list(state.problems),
        } for lid, state in session.states.items()],
        "clusters": [{
            "id": cluster.id,
            "records": [[arrival[first[id(record)]], library, record.as_dict()]
                        for library, record in cluster.records],
        } for cluster in session.merger.clusters],
    }


def load_session(data: Mapping[str, Any], consortium: Consortium) -> SearchSession:
    """A new SearchSession from a stored state; its libraries come from ``consortium``.

    Raises ValueError for a state this code cannot read (another format, or a library
    this process's configuration does not have).
    """
    if data.get("format") != STATE_FORMAT:
        raise ValueError(f"stored session format {data.get('format')!r}, not {STATE_FORMAT}")
    known = {lib.id: lib for lib in consortium.libraries}
    missing = [entry["id"] for entry in data["libraries"] if entry["id"] not in known]
    if missing:
        raise ValueError(f"libraries not in this configuration: {', '.join(missing)}")
    session = SearchSession(data["id"], data["query"], parse(data["query"]),
                            [known[entry["id"]] for entry in data["libraries"]],
                            per_library=data["per_library"], timeout=data["timeout"])
    session.sort = data.get("sort", "relevance")  # states saved before sorts were kept
    apply_state(session, data)
    return session


def apply_state(session: SearchSession, data: Mapping[str, Any]) -> None:
    """Make ``session`` (same id and libraries) hold the stored state."""
    monotonic = time.monotonic() - time.time()  # add to a wall-clock time: monotonic
    session.started = monotonic + data["started"]
    if data.get("deadline") is not None:
        session.deadline = monotonic + data["deadline"]
    else:  # saved before deadlines were stored: the rule the writer followed
        session.deadline = session.started + first_round_seconds(
            [state.library for state in session.states.values()], session.timeout)
    session.finished_at = (session.started + data["elapsed_ms"] / 1000
                           if data["finished"] else None)
    for entry in data["libraries"]:
        state = session.states[entry["id"]]
        state.status, state.hits, state.fetched = entry["status"], entry["hits"], entry["fetched"]
        state.elapsed_ms, state.error = entry["elapsed_ms"], entry["error"]
        state.reason = one_of(entry.get("reason"), FAILURE_REASONS)  # older states: none
        state.next_start, state.problems = entry["next_start"], list(entry["problems"])
    # The MARC this copy already had (fetched from the store, or its own connectors'),
    # kept across the rebuild so that a MARC view does not fetch it again.
    sources = {source_key(library, record): record.source
               for library, record in session.arrivals if record.source is not None}
    entries = sorted((tuple(entry) for cluster in data["clusters"]
                      for entry in cluster["records"]), key=lambda entry: entry[0])
    session.merger, session.arrivals = Merger(session.merger.aggregators), []
    for _arrival, library, record_data in entries:
        record = Record.from_dict(record_data)
        source = sources.get(source_key(library, record))
        if source is not None:
            record = _with_source(record, source)
        session.arrivals.append((library, record))
        session.merger.add(library, (record,))
    stored_ids = [cluster["id"] for cluster in data["clusters"]]
    if [cluster.id for cluster in session.merger.clusters] != stored_ids:
        # Only if the writer merged by other rules (another version of this code).
        logger.warning("session %s: rebuilt clusters differ from the stored ones", session.id)
    session.touch()  # wake anyone waiting on the session


# --- the records' MARC ----------------------------------------------------------------------


def source_key(library: str, record: Record) -> str | None:
    """Where a record's MARC is stored in its session's hash; None for a record without
    an id (it cannot be asked for by id either)."""
    return None if record.id is None else f"{library}\x1f{record.id}"


def encode_source(record: Record) -> bytes | None:
    """The record's MARC and what is needed to read it again, as bytes; None when the
    record has none. A parsed pymarc record (a union index's) goes as MARCXML."""
    source = record.source
    if isinstance(source, RawMarc):
        data, flavour, encoding = source.data, source.flavour, source.encoding
    elif isinstance(source, pymarc.Record):
        data, flavour, encoding = pymarc.record_to_xml(source, namespace=True), \
            record.format, "utf-8"
    else:
        return None
    return b"\x00".join((_SOURCE_FORMAT, flavour.encode(), encoding.encode(), data))


def decode_source(value: bytes) -> RawMarc | None:
    """The inverse of ``encode_source``; None for bytes it did not write."""
    parts = value.split(b"\x00", 3)
    if len(parts) != 4 or parts[0] != _SOURCE_FORMAT:
        return None
    _format, flavour, encoding, data = parts
    return RawMarc(data, flavour.decode(), encoding.decode())


def give_source(session: SearchSession, cluster: Cluster, library: str, record: Record,
                source: RawMarc) -> Record:
    """Put ``record`` (of ``cluster``) back with its MARC wherever the session holds it:
    its cluster and its arrivals, which must name the same objects. The new record."""
    found = _with_source(record, source)
    session.arrivals = [(lib, found if rec is record else rec)
                        for lib, rec in session.arrivals]
    cluster.records[:] = [(lib, found if rec is record else rec)
                          for lib, rec in cluster.records]
    cluster.cache.clear()  # "best" may be the old object
    return found


def _with_source(record: Record, source: pymarc.Record | RawMarc) -> Record:
    from dataclasses import replace

    return replace(record, source=source)
