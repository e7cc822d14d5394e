"""The union front door: the whole consortium as one ``Catalogue`` (connectors/catalogue.py).

A search runs one broker search over the chosen members to its end (every library done or
timed out) and gives the merged set: one record per cluster, with every library's
holdings. The protocol servers (connectors/sru/server.py, connectors/z3950/server.py) serve
it like any other catalogue.

Records. ``UnionCatalogue.flavour`` (``marc21`` by default, or ``unimarc``) is what every
record of the union is unless a client asks for the other (``fetch(flavour=)``: a Z39.50
UNIMARC or USMARC request), so a client can trust the record syntax it is told:

- A cluster with a source in that flavour gives that source's MARC as it came (the
  fullest such source: ``Record.marc()``), its own 852 fields removed.
- Otherwise (a CNMARC book in a MARC21 union, or a source whose MARC is gone) the record
  is written from the cluster's normalized record (``marc.writer.write_record``): a
  deliberately plain crosswalk (title, statement of responsibility, authors, edition,
  publication, extent, ISBN/ISSN, subjects, classification, language, material type)
  that loses what normalization does not keep (notes, 880 links, CNMARC's pinyin, local
  fields). Its 001 is the cluster id.
- Every record then gets one 852 per holding of every library in the cluster (a library
  that sent no item gets one with only $a): $a library id, $b location, $h call number,
  $p barcode, $z status (and a second $z ``due YYYY-MM-DD`` for a loan). UNIMARC has no
  852 in its bibliographic format (CNMARC keeps items in 905/906); a UNIMARC union uses
  the same 852 anyway, so one reader of holdings serves both flavours. (Our own
  normalizer reads 852 holdings only from MARC21 records.)

Hits. A union result set is fixed when the search is answered, so the count a client is
told is the count it can present, records 1 to ``hits``, for as long as it holds the set.
Every member that answered is paged (``Broker.fetch_to_depth``) until it has sent
min(its hits, ``depth``) records (default 100 per library, as Pazpar2's per-target
default); those records, and no more, are merged and ranked once, and ``hits`` is the
number of merged records. Nothing is fetched while a client presents. ``precision`` is
``exact`` when every answering member's whole result is in the set, else ``minimum`` (SRU
2.0's term: some member has records beyond the depth, which would add to the count; a
client wanting them narrows its query, or the server is started with a deeper depth).
Members that failed or timed out are not in the count; ``libraries`` gives each member's
own total (``hits``), the records of it in the set (``fetched``) and its status.

Result sets are kept ``cache_ttl`` seconds per query (identical searches arriving
together share one broker search), so an SRU client paging through a result does not
fan out to every library for each page.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections import OrderedDict
from typing import Literal

import pymarc

from broker.kernel.cql import Boolean, Node, to_cql
from broker.kernel.errors import ConnectorError, UnsupportedQuery
from broker.kernel.sorting import SortKey
from broker.search import rank
from broker.search.fanout import Broker
from broker.search.merge import Cluster, Merger
from broker.search.session import SearchSession
from connectors.catalogue import ResultSet, ScanIndex, ScanPage
from connectors.local.connector import LocalIndexConnector
from marc.model import RawMarc, Record
from marc.writer import FLAVOURS, as_flavour, holding_fields, write_record

logger = logging.getLogger(__name__)

DEFAULT_DEPTH = 100  # records per library merged into a union result set
DEFAULT_CACHE_TTL = 120.0
DEFAULT_CACHE_SIZE = 64


class UnionCatalogue:
    """The consortium (or the libraries ``library_ids``) as one catalogue."""

    def __init__(self, broker: Broker, library_ids: list[str] | None = None, *,
                 name: str = "union", title: str | None = None, flavour: str = "marc21",
                 per_library: int | None = None, timeout: float | None = None,
                 depth: int = DEFAULT_DEPTH, cache_ttl: float = DEFAULT_CACHE_TTL,
                 cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        if flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {', '.join(FLAVOURS)}, not {flavour!r}")
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be a positive integer, not {depth!r}")
        self.broker = broker
        # Checked now (UsageError/ConfigError), not at the first client's search.
        self.libraries = broker.select(library_ids)
        self.library_ids = list(library_ids) if library_ids else None
        self.name = name
        consortium = broker.consortium.name
        self.title = title or f"{consortium} union catalogue"
        members = ", ".join(library.id for library in self.libraries)
        self.description = (
            f"The union catalogue of {consortium}: one search over "
            f"{len(self.libraries)} member libraries ({members}),"
            f" merged and de-duplicated (up to {depth} records of each library); each "
            f"record carries every library's holdings as 852 fields ($a library, "
            f"$b location, $h call number, $p barcode, $z status).")
        self.flavour: str = flavour  # as connectors.catalogue.Catalogue has it
        # What a client may ask for besides (a Z39.50 UNIMARC or USMARC request): the one
        # MARC writer writes a cluster in either, whatever the union's default.
        self.flavours: tuple[str, ...] = FLAVOURS
        self.per_library = per_library
        self.timeout = timeout
        self.depth = depth
        self.cache_ttl = cache_ttl
        self.cache_size = cache_size
        self._cache: OrderedDict[str, tuple[float, asyncio.AbstractEventLoop,
                                            asyncio.Future]] = OrderedDict()

    async def search(self, query: Node) -> UnionResultSet:
        """Search the libraries to the end. Raises QueryError for a bad query and
        ConnectorError (naming each library's reason) when no library answered, and
        UnsupportedQuery for ``cql.allRecords``."""
        if _lists_everything(query):
            # Every member's whole catalogue merged in one search is no search; and the
            # members' connectors could not say it anyway. Harvesting is the way.
            raise UnsupportedQuery("the union catalogue does not list all its records: "
                                   "harvest the member libraries instead")
        text = to_cql(query)
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        for key, (expires, _, _) in list(self._cache.items()):
            if expires <= now:
                del self._cache[key]
        entry = self._cache.get(text)
        if entry is not None and entry[1] is loop:
            future = entry[2]
            self._cache.move_to_end(text)
        else:
            future = asyncio.ensure_future(self._search(text))
            self._cache[text] = (now + self.cache_ttl, loop, future)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            raise
        except BaseException:
            current = self._cache.get(text)
            if current is not None and current[2] is future:
                del self._cache[text]  # a failure is not remembered
            raise

    # --- Scan: over the union index member, the one list of every member's headings ----

    def _index_member(self) -> LocalIndexConnector | None:
        """The connector of the first ``protocol: local`` library (a union index built by
        ``balis index build``) among the union's; the broker owns and closes it."""
        for library in self.libraries:
            if library.connector is not None and library.connector.protocol == "local":
                connector = self.broker._connector(library)
                return connector if isinstance(connector, LocalIndexConnector) else None
        return None

    def can_scan(self) -> bool:
        return self._index_member() is not None

    async def scan(self, index: ScanIndex, term: str, *, count: int, position: int
                   ) -> ScanPage:
        """The union index's headings (connectors.catalogue.ScannableCatalogue); without a
        union index member, UnsupportedQuery: live members cannot be browsed as one."""
        member = self._index_member()
        if member is None:
            raise UnsupportedQuery("the union catalogue has no union index to browse")
        return await member.scan(index, term, count=count, position=position)

    async def _search(self, text: str) -> UnionResultSet:
        session = await self.broker.search(text, self.library_ids,
                                           per_library=self.per_library, timeout=self.timeout)
        await self.broker.wait(session)
        states = list(session.states.values())
        if not any(state.status == "ok" for state in states):
            reasons = "; ".join(f"{s.library.id}: {s.error or s.status}" for s in states)
            raise ConnectorError(f"no member library answered ({reasons})")
        await self.broker.fetch_to_depth(session, self.depth)
        return UnionResultSet(self, session)


class UnionResultSet:
    """The merged records of one union search, fixed when it is made; positions are
    1-based and never move."""

    def __init__(self, catalogue: UnionCatalogue, session: SearchSession) -> None:
        self.catalogue = catalogue
        self.session = session
        self.depth = catalogue.depth
        # Each library's records up to the depth, in the order it sent them. Its last page
        # may have brought more: those are left out, so the set is what the depth says
        # whatever the members' page sizes.
        taken: dict[str, int] = {}
        for library, _record in session.arrivals:
            taken[library] = taken.get(library, 0) + 1
        if any(count > self.depth for count in taken.values()):
            clusters = self._merge_to_depth(session)
        else:
            clusters = list(session.merger.clusters)
        self._order: list[Cluster] = rank.order(clusters, "relevance", session.terms)
        self._used = {lid: min(count, self.depth) for lid, count in taken.items()}
        # Decided now: a member that answers later (another process's session) or a page
        # that comes late changes nothing a client was told.
        # A member is complete when every position of its result was fetched (records it
        # could not send are its problems, not missing ones) and none was left out.
        self._precision: Literal["exact", "minimum"] = "exact" if all(
            not state.has_more and taken.get(lid, 0) <= self.depth
            for lid, state in session.states.items() if state.status == "ok") else "minimum"
        self._libraries = [{**state.as_dict(), "fetched": self._used.get(lid, 0)}
                           for lid, state in session.states.items()]

    def _merge_to_depth(self, session: SearchSession) -> list[Cluster]:
        merger = Merger(session.merger.aggregators)
        kept: dict[str, int] = {}
        for library, record in session.arrivals:
            if kept.get(library, 0) < self.depth:
                kept[library] = kept.get(library, 0) + 1
                merger.add(library, [record])
        return list(merger.clusters)

    @property
    def precision(self) -> Literal["exact", "minimum"]:
        """``exact`` when every answering member's whole result is merged, else
        ``minimum``: the members have records beyond the depth."""
        return self._precision

    @property
    def hits(self) -> int:
        """Exactly the records that can be presented, 1 .. hits."""
        return len(self._order)

    @property
    def libraries(self) -> list[dict]:
        """Each library's state (CONTRACTS section 5's fields; ``fetched``: its records
        merged into this set), for the client to see."""
        return [dict(library) for library in self._libraries]

    async def fetch(self, start: int, count: int, flavour: str | None = None
                    ) -> list[pymarc.Record]:
        """Records ``start``.. in ``flavour`` (default: the union's own)."""
        flavour = flavour or self.catalogue.flavour
        if flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {', '.join(FLAVOURS)}, not {flavour!r}")
        if start < 1 or count <= 0:
            return []
        end = start + count - 1
        records = []
        for cluster in self._order[start - 1:end]:
            records.append(cluster_marc(cluster, flavour))
            if len(records) % 10 == 0:
                await asyncio.sleep(0)
        return records

    async def sort(self, keys: tuple[SortKey, ...]) -> ResultSet:
        """The same records ordered by ``keys``, as a new set: this one keeps its order
        (connectors.catalogue.SortableResultSet; the work is in union_sort)."""
        from broker.catalogues.union_sort import sort_union  # it imports this module

        return await sort_union(self, self._order, keys)


def _lists_everything(node: Node) -> bool:
    if isinstance(node, Boolean):
        return _lists_everything(node.left) or _lists_everything(node.right)
    return node.matches_all


# --- one cluster as MARC ---------------------------------------------------------------------


def cluster_marc(cluster: Cluster, flavour: str = "marc21") -> pymarc.Record:
    """The MARC of one merged record: a source as it came, or the crosswalk of the
    cluster's normalized record, with an 852 per holding of every library."""
    same = [(lib, r) for lib, r in cluster.records if r.format == flavour]
    record = _source_copy(Cluster(cluster.id, records=same).best) if same else None
    if record is None:
        best = cluster.best
        isbns = tuple(dict.fromkeys([*best.isbns, *sorted(cluster.isbns)]))
        return write_record(best, as_flavour(flavour), record_id=cluster.id, isbns=isbns,
                            holdings=cluster.holdings)
    record.remove_fields("852")
    for field in holding_fields(cluster.holdings):
        record.add_ordered_field(field)
    return record


def _source_copy(record: Record) -> pymarc.Record | None:
    """A copy of the record's source MARC that may be changed (None if it is gone)."""
    try:
        if isinstance(record.source, RawMarc):
            return record.source.parse()  # parsed afresh: ours to change
        if isinstance(record.source, pymarc.Record):
            return copy.deepcopy(record.source)
    except Exception:
        logger.exception("source MARC of %s could not be read; writing it from its "
                         "normalized record", record.id)
    return None
