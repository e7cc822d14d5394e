"""What the consortium's own SRU and Z39.50 servers serve: a catalogue behind one interface.

Two implementations: the union front door (a search through the broker over the whole
consortium, merged records with every library's holdings as 852 fields) and a local
catalogue over a MARC file (the demo's members, tests, benchmarks). The protocol servers
(connectors/sru/server.py, connectors/z3950/server.py) know only this interface.

Flavours. A catalogue's records are in its ``flavour``; one that can write its records in
another (the union, through ``marc.writer``) lists every flavour it can give in an optional
``flavours`` attribute, and its result sets are ``FlavouredResultSet``s.
A catalogue without the attribute gives only its own flavour, and is never asked for another:
a server tells the client the records are not there in that syntax rather than relabel them.
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
        """Records ``start`` .. ``start + count - 1`` (fewer at the end of the set), in the
        catalogue's flavour."""
        ...


class FlavouredResultSet(ResultSet, Protocol):
    """A result set of a catalogue with other ``flavours``: it writes records in any."""

    async def fetch(self, start: int, count: int, flavour: str | None = None
                    ) -> list[pymarc.Record]:
        """As ``ResultSet.fetch``, in ``flavour`` (one of the catalogue's ``flavours``)."""
        ...


class Catalogue(Protocol):
    name: str
    flavour: str  # "marc21" or "unimarc": what fetch() returns

    async def search(self, query: Node) -> ResultSet:
        """Run a query. Raises QueryError or UnsupportedQuery (with a reason a client can
        be told) for one this catalogue cannot answer."""
        ...


def catalogue_flavours(catalogue: Catalogue) -> tuple[str, ...]:
    """The flavours a catalogue can give its records in, its own first."""
    others = getattr(catalogue, "flavours", None) or ()
    return tuple(dict.fromkeys([catalogue.flavour, *others]))
