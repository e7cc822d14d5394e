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

Hits. The number of merged records is exact once every library's hits have been fetched.
Searches whose libraries found at most ``exhaust`` records in all are fetched to the end
at once, so their count is exact. For larger ones the count is an estimate (the
clusters so far plus the libraries' unfetched records, scaled by the share of fetched
records that merged into clusters of their own); ``ResultSet.precision`` says
``estimate`` and ``fetch`` asks the libraries for more as clients page past what was
fetched (``Broker.fetch_more``). Positions handed out never move: the first round is in
relevance order, and records that arrive later follow, ranked among themselves.

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

import pymarc

from broker.kernel.cql import Boolean, Node, to_cql
from broker.kernel.errors import ConnectorError, UnsupportedQuery
from broker.search import rank
from broker.search.fanout import Broker
from broker.search.merge import Cluster
from broker.search.session import SearchSession
from marc.model import RawMarc, Record
from marc.writer import FLAVOURS, as_flavour, holding_fields, write_record

logger = logging.getLogger(__name__)

DEFAULT_EXHAUST = 200
DEFAULT_CACHE_TTL = 120.0
DEFAULT_CACHE_SIZE = 64


class UnionCatalogue:
    """The consortium (or the libraries ``library_ids``) as one catalogue."""

    def __init__(self, broker: Broker, library_ids: list[str] | None = None, *,
                 name: str = "union", title: str | None = None, flavour: str = "marc21",
                 per_library: int | None = None, timeout: float | None = None,
                 exhaust: int = DEFAULT_EXHAUST, cache_ttl: float = DEFAULT_CACHE_TTL,
                 cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        if flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {', '.join(FLAVOURS)}, not {flavour!r}")
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
            f" merged and de-duplicated; each record carries every library's holdings as "
            f"852 fields ($a library, $b location, $h call number, $p barcode, $z status).")
        self.flavour: str = flavour  # as connectors.catalogue.Catalogue has it
        # What a client may ask for besides (a Z39.50 UNIMARC or USMARC request): the one
        # MARC writer writes a cluster in either, whatever the union's default.
        self.flavours: tuple[str, ...] = FLAVOURS
        self.per_library = per_library
        self.timeout = timeout
        self.exhaust = exhaust
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

    async def _search(self, text: str) -> UnionResultSet:
        session = await self.broker.search(text, self.library_ids,
                                           per_library=self.per_library, timeout=self.timeout)
        await self.broker.wait(session)
        states = list(session.states.values())
        if not any(state.status == "ok" for state in states):
            reasons = "; ".join(f"{s.library.id}: {s.error or s.status}" for s in states)
            raise ConnectorError(f"no member library answered ({reasons})")
        result = UnionResultSet(self, session)
        total = sum(state.hits or 0 for state in states if state.status == "ok")
        if result.more_available and total <= self.exhaust:
            await result.fetch_all()
        return result


class UnionResultSet:
    """The merged records of one union search; positions are 1-based and stable."""

    def __init__(self, catalogue: UnionCatalogue, session: SearchSession) -> None:
        self.catalogue = catalogue
        self.session = session
        self._order: list[Cluster] = rank.order(list(session.merger.clusters), "relevance",
                                                session.terms)
        self._placed = {id(cluster) for cluster in self._order}
        self._lock = asyncio.Lock()

    @property
    def more_available(self) -> bool:
        return any(state.has_more for state in self.session.states.values())

    @property
    def precision(self) -> str:
        """``exact`` once every library's records are merged, else ``estimate``."""
        return "estimate" if self.more_available else "exact"

    @property
    def hits(self) -> int:
        clusters = len(self.session.merger.clusters)
        if not self.more_available:
            return clusters
        states = self.session.states.values()
        fetched = sum(state.fetched for state in states)
        remaining = sum(max(0, (state.hits or 0) - (state.next_start - 1))
                        for state in states if state.has_more)
        share = clusters / fetched if fetched else 1.0
        return clusters + round(remaining * share)

    @property
    def libraries(self) -> list[dict]:
        """Each library's state (CONTRACTS section 5's fields), for the client to see."""
        return [state.as_dict() for state in self.session.states.values()]

    async def fetch(self, start: int, count: int, flavour: str | None = None
                    ) -> list[pymarc.Record]:
        """Records ``start``.. in ``flavour`` (default: the union's own)."""
        flavour = flavour or self.catalogue.flavour
        if flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {', '.join(FLAVOURS)}, not {flavour!r}")
        if start < 1 or count <= 0:
            return []
        end = start + count - 1
        async with self._lock:
            if end > len(self._order) and self.more_available:
                await self.catalogue.broker.fetch_more(self.session, end)
                self._place_new()
        records = []
        for cluster in self._order[start - 1:end]:
            records.append(cluster_marc(cluster, flavour))
            if len(records) % 10 == 0:
                await asyncio.sleep(0)
        return records

    async def fetch_all(self) -> None:
        async with self._lock:
            await self.catalogue.broker.fetch_more(self.session, 1 << 30)
            self._place_new()

    def _place_new(self) -> None:
        new = [c for c in self.session.merger.clusters if id(c) not in self._placed]
        if new:
            self._order.extend(rank.order(new, "relevance", self.session.terms))
            self._placed.update(id(c) for c in new)


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
