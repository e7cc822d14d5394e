"""The broker's connectors: one per member library, made on first use, over one pooled
HTTP session; and, after a reload of the libraries file, the old ones kept for the searches
begun before it until no request uses them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Iterable

import aiohttp

from broker.kernel.config import Library
from connectors.base import Connector
from connectors.registry import create_connector


class MemberConnectors:
    def __init__(self, libraries: Iterable[Library]) -> None:
        self._libraries = tuple(libraries)  # the current consortium's
        self._open: dict[str, Connector] = {}
        # Connectors of libraries a reload removed or changed, still used by searches begun
        # before it (closed when idle); and how many requests use each connector now.
        self._retired: list[Connector] = []
        self._users: Counter[Connector] = Counter()
        self._http: aiohttp.ClientSession | None = None

    def get(self, library: Library) -> Connector:
        """The connector for ``library`` as given (a search begun before a reload asks a
        library as it was then)."""
        connector = self._open.get(library.id)
        if connector is not None and connector.library == library:
            return connector
        if self._http is None:
            # One HTTP session for the broker's lifetime: pooled, per-host limited.
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, limit_per_host=8))
        if connector is None and library in self._libraries:
            connector = self._open[library.id] = create_connector(library, self._http)
            return connector
        old = next((c for c in self._retired if c.library == library), None)
        if old is None:
            old = create_connector(library, self._http)
            self._retired.append(old)
        return old

    @contextlib.asynccontextmanager
    async def using(self, library: Library) -> AsyncIterator[Connector]:
        """``get``, counted as in use until the block ends (a retired connector is closed
        when its last user is done)."""
        connector = self.get(library)
        self._users[connector] += 1
        try:
            yield connector
        finally:
            self._users[connector] -= 1
            if not self._users[connector]:
                del self._users[connector]
                if connector in self._retired:
                    self._retired.remove(connector)
                    with contextlib.suppress(Exception):
                        await connector.close()

    async def replace(self, libraries: Iterable[Library], gone: Iterable[str]) -> None:
        """Take the reloaded consortium's libraries; ``gone``: the ids removed or changed,
        whose connectors are closed now if idle, else retired until they are."""
        self._libraries = tuple(libraries)
        for lid in gone:
            connector = self._open.pop(lid, None)
            if connector is None:
                continue
            if self._users[connector]:
                self._retired.append(connector)
            else:
                with contextlib.suppress(Exception):
                    await connector.close()

    def is_open(self, library_id: str) -> Connector | None:
        """The current connector of ``library_id``, if one was made."""
        return self._open.get(library_id)

    @property
    def retired(self) -> tuple[Connector, ...]:
        return tuple(self._retired)

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in [*self._open.values(), *self._retired]),
                             return_exceptions=True)
        self._open.clear()
        self._retired.clear()
        if self._http is not None:
            await self._http.close()
            self._http = None

