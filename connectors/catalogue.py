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

Sorting. A result set that can be sorted is a ``SortableResultSet`` (the union's: the merged
records by title, author or year); the servers answer a sort of any other with the
protocol's "sort not supported" diagnostic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, cast, get_args

import pymarc

from broker.kernel.cql import Node
from broker.kernel.sorting import SortKey


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


class SortableResultSet(ResultSet, Protocol):
    """A result set that can give its records in another order (Z39.50 Sort, SRU
    ``sortKeys`` and CQL ``sortBy``). A server asks ``sortable(result)``; a set without
    ``sort`` is answered with the protocol's "cannot sort" diagnostic."""

    async def sort(self, keys: tuple[SortKey, ...]) -> ResultSet:
        """A new set of the same records ordered by ``keys`` (the first key first; records
        without a key's value where ``SortKey.missing`` says); this one keeps its order.
        Raises broker.kernel.sorting.SortError for a sort it cannot do (a missing value
        under ``missing="abort"``)."""
        ...


def sortable(result: ResultSet) -> SortableResultSet | None:
    """The result set if it can be sorted, else None."""
    if not callable(getattr(result, "sort", None)):
        return None
    return cast(SortableResultSet, result)


class Catalogue(Protocol):
    name: str
    flavour: str  # "marc21" or "unimarc": what fetch() returns

    async def search(self, query: Node) -> ResultSet:
        """Run a query. Raises QueryError or UnsupportedQuery (with a reason a client can
        be told) for one this catalogue cannot answer."""
        ...


# --- Scan: browsing an index's headings (an optional ability) ----------------------------

ScanIndex = Literal["any", "title", "author", "subject", "publisher", "isbn", "issn"]
SCAN_INDEXES: tuple[ScanIndex, ...] = get_args(ScanIndex)


@dataclass(frozen=True, slots=True)
class ScanTerm:
    """One heading of an index: as catalogued (searching it finds its records), and how
    many records (a union index: merged records) carry it."""

    term: str
    records: int


@dataclass(frozen=True, slots=True)
class ScanPage:
    """The headings around a start term, in index order. ``position`` is where the start
    term stands among them, 1-based, as Z39.50's positionOfTerm and SRU's responsePosition
    count (0: just before the first; ``len(terms) + 1``: just after the last). The terms
    are fewer than asked only where the index ends."""

    terms: tuple[ScanTerm, ...]
    position: int


class ScannableCatalogue(Catalogue, Protocol):
    """A catalogue that can browse its indexes (Z39.50 Scan, SRU scan). A server asks a
    catalogue without ``scan`` for none and answers "not supported for this database"."""

    async def scan(self, index: ScanIndex, term: str, *, count: int, position: int
                   ) -> ScanPage:
        """``count`` headings of ``index`` with the first one at or after ``term`` (in the
        index's folded order) at ``position`` (1-based; 0 or ``count + 1``: just outside
        the list). Raises UnsupportedQuery for an index this catalogue cannot browse."""
        ...


def scanner(catalogue: Catalogue) -> ScannableCatalogue | None:
    """The catalogue if it can scan (the union only when it has a union index member)."""
    can = getattr(catalogue, "can_scan", None)
    if not callable(getattr(catalogue, "scan", None)) or (callable(can) and not can()):
        return None
    return cast(ScannableCatalogue, catalogue)


def catalogue_flavours(catalogue: Catalogue) -> tuple[str, ...]:
    """The flavours a catalogue can give its records in, its own first."""
    others = getattr(catalogue, "flavours", None) or ()
    return tuple(dict.fromkeys([catalogue.flavour, *others]))
