"""Sort keys for a result set, whichever protocol asked (SRU ``sortKeys``, CQL ``sortBy``,
a Z39.50 Sort request's SortKeySpec): one value the catalogues sort by.

Three things can be sorted on, because every merged record has them in its normalized
form: ``title`` (the filing title, Chinese in pinyin order), ``author`` (the first author)
and ``year``. A record without the value goes last whichever the direction, unless the
client says otherwise (``missing``): a reader looking at "newest first" wants the undated
ones after the dated ones, not before.

Each protocol reads its own syntax (broker.kernel.cql for ``sortBy``,
connectors/sru/request.py for ``sortKeys``, connectors/z3950/server_services.py for
SortKeySpec) and names the index through ``sort_index``; what it cannot honour is a
``SortError`` whose ``problem`` the protocol turns into its own diagnostic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from broker.kernel.errors import QueryError

SortIndex = Literal["title", "author", "year"]
SORT_INDEXES: tuple[SortIndex, ...] = get_args(SortIndex)

# Where records without the value go: "last"/"first" whatever the direction; "high"/"low"
# as if the value sorted above/below every other (so their place turns with the direction);
# "abort": the sort fails (SRU missingValue=abort, CQL sort.missingFail, Z39.50 abort).
Missing = Literal["last", "first", "high", "low", "abort"]

# What went wrong, for the protocol to name in its own diagnostic.
SortProblem = Literal["index", "direction", "case", "missing", "syntax", "too_many",
                      "missing_value"]

MAX_SORT_KEYS = 5  # more keys than this change nothing a reader could see

_NAMES: dict[str, SortIndex] = {
    **{name: "title" for name in ("title", "dc.title", "bath.title", "balis.title",
                                  "cql.title", "ti")},
    **{name: "author" for name in ("author", "creator", "dc.creator", "dc.author",
                                   "bath.author", "bath.name", "balis.author", "name", "au")},
    **{name: "year" for name in ("year", "date", "dc.date", "balis.year", "bath.date",
                                 "publicationdate", "pubdate", "py")},
}


class SortError(QueryError):
    """A sort the catalogue cannot do; ``problem`` says which part, ``detail`` what the
    client sent there (for the diagnostic's details/addinfo)."""

    def __init__(self, message: str, problem: SortProblem, detail: str) -> None:
        super().__init__(message, "sort")
        self.problem: SortProblem = problem
        self.detail = detail


@dataclass(frozen=True, slots=True)
class SortKey:
    """One key of a sort; several apply in order (the second breaks ties of the first)."""

    index: SortIndex
    ascending: bool = True
    case_sensitive: bool = False  # case breaks ties between otherwise equal values
    missing: Missing = "last"

    @property
    def missing_first(self) -> bool:
        """Whether records without the value come before those with it."""
        if self.missing in ("high", "low"):
            return (self.missing == "low") == self.ascending
        return self.missing == "first"


def sort_index(name: str) -> SortIndex:
    """The index a client's name for it means (``dc.title``, ``date``...); SortError
    ``index`` for one we cannot sort by."""
    found = _NAMES.get(name.strip().lower())
    if found is None:
        raise SortError(f"cannot sort by {name!r}: sort by title, author or year (date)",
                        "index", name)
    return found


def checked(keys: list[SortKey] | tuple[SortKey, ...]) -> tuple[SortKey, ...]:
    """The keys of one sort: at least one, at most MAX_SORT_KEYS."""
    if not keys:
        raise SortError("a sort needs at least one key", "syntax", "")
    if len(keys) > MAX_SORT_KEYS:
        raise SortError(f"at most {MAX_SORT_KEYS} sort keys, not {len(keys)}", "too_many",
                        str(len(keys)))
    return tuple(keys)
