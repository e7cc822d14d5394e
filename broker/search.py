"""Searching member libraries and reporting each one's state (CONTRACTS section 5).

This is the broker's first piece: every chosen library is asked in parallel, each under its
own timeout, and each ends ``ok``, ``timeout`` or ``error`` with a reason a reader can
understand. Merging and de-duplication across libraries are not built yet: records are
listed per library, each as its own one-library cluster.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

import connectors
from broker.config import Library
from broker.cql import Node
from broker.errors import ConnectorError, ConnectorTimeout
from marc import Record

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class LibraryOutcome:
    library: Library
    status: str = "pending"  # ok | timeout | error | pending
    hits: int | None = None
    records: list[Record] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    elapsed_ms: int | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.library.id, "name": self.library.name, "status": self.status,
                "hits": self.hits, "fetched": len(self.records),
                "elapsed_ms": self.elapsed_ms, "error": self.error}


async def search_one(library: Library, query: Node, *, count: int | None = None,
                     timeout: float | None = None,
                     session: aiohttp.ClientSession | None = None) -> LibraryOutcome:
    """Ask one library; never raises for the library's own failure."""
    outcome = LibraryOutcome(library)
    config = library.connector
    if config is None:
        outcome.status, outcome.error = "error", "this library cannot be searched yet"
        return outcome
    limit = timeout if timeout is not None else config.timeout
    connector = connectors.create(library, session)
    started = time.perf_counter()
    try:
        page = await asyncio.wait_for(connector.search(query, count=count), limit)
    except (TimeoutError, ConnectorTimeout) as exc:
        outcome.status = "timeout"
        outcome.error = (str(exc) if isinstance(exc, ConnectorTimeout)
                         else f"no answer within {limit:g} s")
    except ConnectorError as exc:
        outcome.status, outcome.error = "error", str(exc)
    else:
        outcome.status, outcome.hits = "ok", page.hits
        outcome.records = list(page.records)
        outcome.problems = list(page.problems)
        for problem in page.problems:
            logger.warning("%s: %s", library.id, problem)
    finally:
        outcome.elapsed_ms = round((time.perf_counter() - started) * 1000)
        await connector.close()
    return outcome


async def search_libraries(libraries: list[Library], query: Node, query_text: str, *,
                           count: int | None = None, timeout: float | None = None
                           ) -> dict[str, Any]:
    """Every library in parallel; the result as CONTRACTS section 5."""
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit_per_host=4)) as http:
        outcomes = await asyncio.gather(*(
            search_one(library, query, count=count, timeout=timeout, session=http)
            for library in libraries))
    records = []
    for outcome in outcomes:
        for record in outcome.records:
            item = record.as_dict()
            item["libraries"] = [outcome.library.id]
            records.append(item)
    return {
        "query": query_text, "done": True,
        "elapsed_ms": round((time.perf_counter() - started) * 1000),
        "total_hits": sum(o.hits or 0 for o in outcomes),
        "libraries": [o.as_dict() for o in outcomes],
        "records": records,
    }
