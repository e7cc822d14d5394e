"""The one map from a config's ``protocol`` to the code that speaks it.

The kernel names the protocols (``broker.kernel.consortium.PROTOCOLS``, which the config
loader checks); this module says, for each, how the broker searches it and how a harvest
reads it. A new protocol is a new entry here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from broker.kernel.config import Library
from broker.kernel.consortium import PROTOCOLS, Protocol
from broker.kernel.cql import Node
from broker.kernel.errors import UsageError
from connectors.base import Connector
from connectors.local.connector import LocalIndexConnector
from connectors.paging import Pager, RateLimiter
from connectors.sru.client import SruConnector
from connectors.sru.pager import SruPager
from connectors.z3950.connector import Z3950Connector
from connectors.z3950.pager import Z3950Pager
from connectors.z3950.rpn import to_pqf

Session = aiohttp.ClientSession | None


@dataclass(frozen=True, slots=True)
class Speaker:
    """What one protocol offers: a connector for searches and, where the library is a
    real member (not an index of harvested records), a pager for harvests and the query
    in the member's own language that a harvest's checkpoint names."""

    connector: Callable[[Library, Session], Connector]
    pager: Callable[[Library, Node | str, RateLimiter | None, Session], Pager] | None = None
    native_query: Callable[[Library, Node], str] | None = None


SPEAKERS: dict[Protocol, Speaker] = {
    "sru": Speaker(
        connector=SruConnector,
        pager=lambda library, query, limiter, session: SruPager(library, query, session,
                                                                limiter=limiter),
        native_query=lambda library, query: SruConnector(library).query_string(query)),
    "z3950": Speaker(
        connector=lambda library, session: Z3950Connector(library),
        pager=lambda library, query, limiter, session: Z3950Pager(library, query,
                                                                  limiter=limiter),
        native_query=lambda library, query: to_pqf(
            query, library.connector.indexes if library.connector else {})),
    "local": Speaker(connector=lambda library, session: _local_connector(library)),
}
assert set(SPEAKERS) == set(PROTOCOLS), "every protocol the config accepts needs an entry"


def _local_connector(library: Library) -> Connector:
    """A union index: its SQLite file (``path``), or its copy in PostgreSQL (``url``)."""
    if library.connector is not None and library.connector.path is None:
        from connectors.local.pg_index import PgIndexConnector  # psycopg only when used

        return PgIndexConnector(library)
    return LocalIndexConnector(library)


def _speaker(library: Library) -> Speaker:
    if library.connector is None:
        raise ValueError(f"{library.id} is not searchable (no connector)")
    return SPEAKERS[library.connector.protocol]


def create_connector(library: Library, session: Session = None) -> Connector:
    """The connector for one library's validated config entry."""
    return _speaker(library).connector(library, session)


def harvestable(library: Library) -> Speaker:
    """The library's protocol entry if it can be harvested; UsageError (one sentence) if not."""
    if library.connector is None:
        raise UsageError(f"library {library.id} has no connector: it cannot be harvested")
    speaker = SPEAKERS[library.connector.protocol]
    if speaker.pager is None or speaker.native_query is None:
        raise UsageError(f"library {library.id} is a {library.connector.protocol} index "
                         "of records harvested already: harvest the members themselves")
    return speaker


def create_pager(library: Library, query: Node | str, *, limiter: RateLimiter | None = None,
                 session: Session = None) -> Pager:
    """The pager that reads ``query``'s result set at ``library`` for a harvest."""
    pager = harvestable(library).pager
    assert pager is not None
    return pager(library, query, limiter, session)


def native_query(library: Library, query: Node | str) -> str:
    """``query`` in the member's own language (SRU: its CQL; Z39.50: PQF)."""
    if isinstance(query, str):
        return query
    native = harvestable(library).native_query
    assert native is not None
    return native(library, query)
