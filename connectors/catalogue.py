"""What the consortium's own SRU and Z39.50 servers serve: a catalogue behind one interface.

Two implementations: the union front door (a search through the broker over the whole
consortium, merged records with every library's holdings as 852 fields) and a local
catalogue over a MARC file (the demo's members, tests, benchmarks). The protocol servers
(connectors/sru/server.py, connectors/z3950/server.py) know only this interface.
"""

from __future__ import annotations

from typing import Protocol

import pymarc

from broker.kernel.cql import Node


class ResultSet(Protocol):
    """The records matching one query; positions are 1-based."""

    @property
    def hits(self) -> int: ...  # read only: a union's is a property that firms up

    async def fetch(self, start: int, count: int) -> list[pymarc.Record]:
        """Records ``start`` .. ``start + count - 1`` (fewer at the end of the set)."""
        ...


class Catalogue(Protocol):
    name: str
    flavour: str  # "marc21" or "unimarc": what fetch() returns

    async def search(self, query: Node) -> ResultSet:
        """Run a query. Raises QueryError or UnsupportedQuery (with a reason a client can
        be told) for one this catalogue cannot answer."""
        ...
