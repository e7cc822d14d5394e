"""Running one search to completion (the command line's way): CONTRACTS section 5.

The web keeps a long-lived Broker and reads sessions as they fill; a one-off search starts
a Broker, waits (optionally reporting progress), and returns the whole result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from broker.kernel.config import Consortium
from broker.search.fanout import Broker
from broker.search.session import SearchSession
from broker.search.sorts import Sort


async def run_search(consortium: Consortium, query: str, library_ids: list[str] | None, *,
                     per_library: int | None = None, timeout: float | None = None,
                     sort: Sort = "relevance", count: int | None = None,
                     progress: Callable[[SearchSession], None] | None = None
                     ) -> dict[str, Any]:
    """Search, wait for every library, and return the merged result (all records by
    default)."""
    async with Broker(consortium) as broker:
        session = await broker.search(query, library_ids, per_library=per_library,
                                      timeout=timeout)
        while not session.done:
            if progress is not None:
                progress(session)
            await session.changed(timeout=0.25)
        if progress is not None:
            progress(session)
        await broker.wait(session)
        total = len(session.merger.clusters)
        return session.snapshot(start=1, count=count if count is not None else total,
                                sort=sort)
