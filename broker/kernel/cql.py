"""The reader's query language: CQL over the broker's own indexes (CONTRACTS section 3).

``parse`` turns a query string into a small tree of ``Clause`` and ``Boolean`` values; each
connector translates the tree into its member's language. CQL gives ``and``, ``or`` and
``not`` equal precedence, left to right; parentheses group.

Indexes: any (default), title, author, subject, isbn, issn, publisher, year, callnumber.
Common context-set names are accepted for them (dc.title, bath.isbn, cql.serverChoice...),
and our own balis.title etc. (the SRU front door's context set).
Relations: ``=`` (and ``==``, ``adj``, ``all``, ``any``) on text; ``= < > <= >=`` on year.

``cql.allRecords`` (any relation and term, as the cql context set defines it; also without
its prefix) is the clause ``ALL_RECORDS_CLAUSE``: every record. Harvesters send it.
Prefix maps (``> dc = "info:srw/cql-context-set/1/dc-v1.1" dc.title = x``, or
``> "uri"`` for the default set) are honoured for the context sets of ``CONTEXT_SETS``;
another identifier is a QueryError naming it. Relation modifiers are refused with a
message that says so, so that a server can answer "unsupported" rather than "syntax error".

CQL's ``sortBy`` (``dc.title/sort.descending dc.date``) is read by ``parse_with_sort``,
which gives the tree and its ``broker.kernel.sorting.SortKey``s (a SortError for a key we
cannot sort by); ``parse`` refuses it with a message that says so, since its callers (a
member's query, the reader's search) have no way to sort.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from broker.kernel.errors import QueryError
from broker.kernel.sorting import Missing, SortError, SortKey, checked, sort_index

INDEXES = ("any", "title", "author", "subject", "isbn", "issn", "publisher", "year",
           "callnumber")
INDEX_ALIASES = {
    "cql.serverchoice": "any", "cql.anywhere": "any", "cql.keywords": "any",
    "dc.title": "title", "bath.title": "title",
    "dc.creator": "author", "dc.author": "author", "bath.author": "author",
    "bath.name": "author", "dc.contributor": "author",
    "dc.subject": "subject", "bath.subject": "subject",
    "bath.isbn": "isbn", "bath.issn": "issn",
    "dc.publisher": "publisher", "dc.date": "year", "date": "year",
    "bath.callnumber": "callnumber", "call": "callnumber",
    # The consortium's own context set, as the SRU front door's explain lists it.
    **{f"balis.{index}": index for index in INDEXES},
}
TEXT_RELATIONS = ("=", "==", "adj", "all", "any")
YEAR_RELATIONS = ("=", "<", ">", "<=", ">=")
_RELATIONS = {"=", "==", "<", ">", "<=", ">=", "<>", "adj", "all", "any", "exact",
              "within", "encloses"}
BOOLEANS = ("and", "or", "not")

# The index of the clause that matches every record (CQL's cql.allRecords). Not one of
# INDEXES: a catalogue answers it by listing everything, not by looking anything up, and
# a connector that has no way to say it to its member refuses it as an unknown index.
ALL_RECORDS = "allrecords"
_ALL_RECORDS_NAMES = frozenset({"cql.allrecords", "allrecords"})

# Context sets a prefix map may name: prefix -> identifier (the SRU explain lists them).
BALIS_CONTEXT_SET = "urn:balis-broker:cql-context-set:1.0"
CONTEXT_SETS = {
    "balis": BALIS_CONTEXT_SET,
    "dc": "info:srw/cql-context-set/1/dc-v1.1",
    "bath": "http://zing.z3950.org/cql/bath/2.0/",
    "cql": "info:srw/cql-context-set/1/cql-v1.2",
}
# Every identifier we know, folded (``_set_key``), to its prefix: older versions of a set
# name the same indexes.
_KNOWN_SETS = {
    **{identifier.lower().rstrip("/"): name for name, identifier in CONTEXT_SETS.items()},
    "info:srw/cql-context-set/1/cql-v1.1": "cql",
    "info:srw/cql-context-set/1/dc-v1.0": "dc",
    "http://zing.z3950.org/cql/bath/1.1": "bath",
}

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<quoted>"(?:[^"\\]|\\.)*"?)      # a quoted string (possibly unterminated)
    | (?P<symbol><=|>=|<>|==|[()=<>/])
    | (?P<word>[^\s()=<>"/]+)
    )""", re.X | re.S)


@dataclass(frozen=True, slots=True)
class Clause:
    """One search term: ``index relation term``."""

    index: str
    relation: str
    term: str  # unescaped, without the truncation mark
    truncated: bool = False  # right truncation: the term was written with a final *

    @property
    def words(self) -> list[str]:
        return self.term.split()

    @property
    def is_phrase(self) -> bool:
        return len(self.words) > 1 and self.relation in ("=", "==", "adj")

    @property
    def matches_all(self) -> bool:
        """CQL's ``cql.allRecords``: every record, whatever the term."""
        return self.index == ALL_RECORDS


ALL_RECORDS_CLAUSE = Clause(ALL_RECORDS, "=", "1")


@dataclass(frozen=True, slots=True)
class Boolean:
    op: str  # and, or, not
    left: Node
    right: Node


Node = Clause | Boolean


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # quoted, symbol, word, end
    text: str
    pos: int


def _tokens(query: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(query):
        if query[pos:].strip() == "":
            break
        match = _TOKEN.match(query, pos)
        if not match or match.end() == pos:
            raise QueryError(f"unexpected character {query[pos]!r} at position {pos + 1}",
                             "unexpected_character", text=query[pos], position=pos + 1)
        kind = match.lastgroup or "word"
        text = match.group(kind)
        start = match.start(kind)
        if kind == "quoted" and (len(text) < 2 or not text.endswith('"') or _odd_escape(text)):
            raise QueryError(f"unterminated quoted term starting at position {start + 1}",
                             "unterminated_quote", position=start + 1)
        out.append(_Tok(kind, text, start))
        pos = match.end()
    out.append(_Tok("end", "", len(query)))
    return out


def _odd_escape(text: str) -> bool:
    """A closing quote that is itself escaped (``"abc\\"``) does not close."""
    body = text[1:-1]
    trailing = len(body) - len(body.rstrip("\\"))
    return trailing % 2 == 1


def parse(query: str) -> Node:
    """Parse a CQL query; QueryError says what is wrong and where."""
    return _parse(query, sorting=False)[0]


def parse_with_sort(query: str) -> tuple[Node, tuple[SortKey, ...]]:
    """Parse a CQL query that may end in ``sortBy``: the tree and its sort keys (none
    without sortBy). SortError (a QueryError) for a sort key we cannot sort by."""
    return _parse(query, sorting=True)


def _parse(query: str, *, sorting: bool) -> tuple[Node, tuple[SortKey, ...]]:
    if not query or not query.strip():
        raise QueryError("the query is empty", "empty")
    if len(query) > 2000:
        raise QueryError("the query is longer than 2000 characters", "too_long", limit=2000)
    parser = _Parser(_tokens(query), sorting=sorting)
    node = parser.query()
    if parser.peek.kind == "word" and parser.peek.text.lower() == "sortby":
        raise QueryError(f"sortBy is not supported (at position {parser.peek.pos + 1}): "
                         "records come in the catalogue's own order", "sortby",
                         position=parser.peek.pos + 1)
    if parser.peek.kind != "end":
        raise QueryError(f"unexpected {parser.peek.text!r} at position {parser.peek.pos + 1}",
                         "unexpected", text=parser.peek.text, position=parser.peek.pos + 1)
    return node, parser.sort_keys


class _Parser:
    def __init__(self, tokens: list[_Tok], *, sorting: bool = False) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0
        self.sorting = sorting  # whether a final sortBy is read (parse_with_sort)
        self.sort_keys: tuple[SortKey, ...] = ()
        # Prefix maps in force, innermost last: prefix -> context set ("" the default set).
        self.scopes: list[dict[str, str]] = []

    @property
    def peek(self) -> _Tok:
        return self.tokens[self.i]

    def take(self) -> _Tok:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def query(self) -> Node:
        """cqlQuery: optional prefix assignments, then clauses joined by booleans; the
        prefixes hold for this query only (a parenthesis ends them)."""
        scope = self._prefix_assignments()
        if scope:
            self.scopes.append(scope)
        try:
            node = self._scoped_clause()
            if (self.sorting and self.depth == 0 and self.peek.kind == "word"
                    and self.peek.text.lower() == "sortby"):
                self.take()
                self.sort_keys = self._sort_spec()  # the prefixes hold for it too
            return node
        finally:
            if scope:
                self.scopes.pop()

    def _prefix_assignments(self) -> dict[str, str]:
        """``> prefix = "identifier"`` or ``> "identifier"`` (the default set), repeated."""
        scope: dict[str, str] = {}
        while self.peek.kind == "symbol" and self.peek.text == ">":
            start = self.take()
            prefix = ""
            nxt = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
            if (self.peek.kind == "word" and nxt is not None and nxt.kind == "symbol"
                    and nxt.text == "="):
                prefix = self.take().text.lower()
                self.take()
            tok = self.take()
            if tok.kind not in ("word", "quoted"):
                raise QueryError(f"a context set identifier was expected at position "
                                 f"{tok.pos + 1} (prefix map at position {start.pos + 1})",
                                 "context_set_expected", position=tok.pos + 1)
            identifier = tok.text[1:-1] if tok.kind == "quoted" else tok.text
            known = _KNOWN_SETS.get(identifier.strip().lower().rstrip("/"))
            if known is None:
                raise QueryError(f"unknown context set '{identifier}' in a prefix map: "
                                 f"this server knows {', '.join(CONTEXT_SETS.values())}",
                                 "unknown_context_set", text=identifier)
            scope[prefix] = known
        return scope

    def _context_set(self, prefix: str) -> str | None:
        for scope in reversed(self.scopes):
            if prefix in scope:
                return scope[prefix]
        return None

    def _scoped_clause(self) -> Node:
        node = self.clause()
        while self.peek.kind == "word" and self.peek.text.lower() in BOOLEANS:
            op = self.take().text.lower()
            if self.peek.kind == "symbol" and self.peek.text == "/":
                raise QueryError(f"boolean modifiers are not supported (after {op!r})",
                                 "boolean_modifier", text=op)
            node = Boolean(op, node, self.clause())
        if self.peek.kind == "word" and self.peek.text.lower() == "prox":
            raise QueryError("the prox operator is not supported", "prox")
        return node

    def clause(self) -> Node:
        tok = self.peek
        if tok.kind == "symbol" and tok.text == "(":
            self.take()
            self.depth += 1
            if self.depth > 32:
                raise QueryError("parentheses nested too deeply", "too_deep")
            node = self.query()
            if self.peek.text != ")":
                raise QueryError(f"missing ')' for the '(' at position {tok.pos + 1}",
                                 "missing_paren", position=tok.pos + 1)
            self.take()
            self.depth -= 1
            return node
        if tok.kind == "end":
            raise QueryError("the query ends where a search term was expected", "ends_early")
        if tok.kind == "symbol":
            raise QueryError(f"unexpected {tok.text!r} at position {tok.pos + 1}",
                             "unexpected", text=tok.text, position=tok.pos + 1)
        first = self.take()
        if self._relation_follows():
            index = self._index(first)
            relation = self._relation()
            term_tok = self.take()
            if term_tok.kind not in ("word", "quoted"):
                raise QueryError(f"a search term is missing after {relation!r} "
                                 f"at position {term_tok.pos + 1}", "term_missing",
                                 text=relation, position=term_tok.pos + 1)
            if index == ALL_RECORDS:
                return ALL_RECORDS_CLAUSE  # the term means nothing (cql.allRecords = 1)
            return _clause(index, relation, term_tok)
        if first.kind == "word" and first.text.lower() in BOOLEANS:
            raise QueryError(f"{first.text!r} at position {first.pos + 1} needs a search term "
                             "before it", "term_before_boolean", text=first.text,
                             position=first.pos + 1)
        return _clause("any", "=", first)

    def _relation_follows(self) -> bool:
        tok = self.peek
        if tok.kind == "symbol" and tok.text in _RELATIONS:
            return True
        # A word relation (title all "a b") only counts when a term (or a relation
        # modifier: title any/stem fish) follows it.
        nxt = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
        return (tok.kind == "word" and tok.text.lower() in _RELATIONS and nxt is not None
                and (nxt.kind in ("word", "quoted") or nxt.text == "/"))

    def _index(self, tok: _Tok) -> str:
        if tok.kind != "word":
            raise QueryError(f"an index name was expected at position {tok.pos + 1}",
                             "index_expected", position=tok.pos + 1)
        name = self._qualified(tok.text.lower())
        if name in _ALL_RECORDS_NAMES:
            return ALL_RECORDS
        name = INDEX_ALIASES.get(name, name)
        if name not in INDEXES:
            raise QueryError(f"unknown index {tok.text!r}: use one of {', '.join(INDEXES)}",
                             "unknown_index", text=tok.text, position=tok.pos + 1)
        return name

    def _qualified(self, name: str) -> str:
        """The index name with its prefix as the prefix maps in force say (a name without
        one: in the default set a map gave, when that set has the index)."""
        prefix, dot, rest = name.partition(".")
        if dot:
            known = self._context_set(prefix)
            return f"{known}.{rest}" if known else name
        default = self._context_set("")
        if default:
            qualified = f"{default}.{name}"
            if qualified in INDEX_ALIASES or qualified in _ALL_RECORDS_NAMES:
                return qualified
        return name

    def _relation(self) -> str:
        tok = self.take()
        relation = tok.text.lower()
        if self.peek.kind == "symbol" and self.peek.text == "/":
            raise QueryError(f"relation modifiers are not supported (after {tok.text!r})",
                             "relation_modifier", text=tok.text, position=tok.pos + 1)
        if relation not in TEXT_RELATIONS + YEAR_RELATIONS:
            raise QueryError(f"the relation {tok.text!r} is not supported", "unknown_relation",
                             text=tok.text, position=tok.pos + 1)
        return relation


    # --- sortBy ---------------------------------------------------------------------

    def _sort_spec(self) -> tuple[SortKey, ...]:
        """sortSpec ::= singleSpec+ ; singleSpec ::= index modifier* (to the query's end)."""
        keys: list[SortKey] = []
        while self.peek.kind != "end":
            tok = self.take()
            if tok.kind != "word":
                raise QueryError(f"a sort index was expected at position {tok.pos + 1}",
                                 "sort", position=tok.pos + 1)
            name = self._qualified(tok.text.lower())
            try:
                index = sort_index(INDEX_ALIASES.get(name, name))
            except SortError as exc:
                raise SortError(str(exc).replace(repr(INDEX_ALIASES.get(name, name)),
                                                 repr(tok.text)), "index", tok.text) from None
            ascending, case_sensitive = True, False
            missing: Missing = "last"
            while self.peek.kind == "symbol" and self.peek.text == "/":
                self.take()
                modifier = self.take()
                if modifier.kind != "word":
                    raise QueryError(f"a sort modifier was expected at position "
                                     f"{modifier.pos + 1}", "sort", position=modifier.pos + 1)
                value = None
                if self.peek.kind == "symbol" and self.peek.text == "=":
                    self.take()
                    value = self.take().text
                word = modifier.text.lower().removeprefix("sort.")
                if word in ("ascending", "descending"):
                    ascending = word == "ascending"
                elif word in ("ignorecase", "respectcase"):
                    case_sensitive = word == "respectcase"
                elif word in _MISSING_MODIFIERS:
                    missing = _MISSING_MODIFIERS[word]
                elif word.startswith("missing"):
                    raise SortError(f"the sort modifier {modifier.text!r} is not supported: "
                                    "missingLow, missingHigh or missingFail",
                                    "missing", modifier.text + (f"={value}" if value else ""))
                else:
                    raise SortError(f"the sort modifier {modifier.text!r} is not supported",
                                    "syntax", modifier.text)
            keys.append(SortKey(index, ascending, case_sensitive, missing))
        if not keys:
            raise QueryError("sortBy needs at least one index to sort by", "sort")
        return checked(keys)


_MISSING_MODIFIERS: dict[str, Missing] = {"missinglow": "low", "missinghigh": "high",
                                          "missingfail": "abort"}


def _clause(index: str, relation: str, tok: _Tok) -> Clause:
    raw = tok.text[1:-1] if tok.kind == "quoted" else tok.text
    truncated = raw.endswith("*") and not _odd_escape('"' + raw[:-1] + '"')
    if truncated:
        raw = raw[:-1]
    if re.search(r"(?<!\\)[*?]", raw):
        raise QueryError(f"only right truncation is supported: {tok.text!r}", "truncation",
                         text=tok.text, position=tok.pos + 1)
    term = re.sub(r"\\(.)", r"\1", raw, flags=re.S).strip()
    if not term:
        raise QueryError(f"empty search term at position {tok.pos + 1}", "empty_term",
                         position=tok.pos + 1)
    if index == "year":
        if relation not in YEAR_RELATIONS:
            raise QueryError(f"year takes the relations {' '.join(YEAR_RELATIONS)}, "
                             f"not {relation!r}", "year_relation", text=relation)
        if not (term.isdigit() and len(term) <= 4) or truncated:
            raise QueryError(f"year must be a number like 2008, not {tok.text!r}",
                             "year_number", text=tok.text, position=tok.pos + 1)
    elif relation not in TEXT_RELATIONS:
        raise QueryError(f"{index} takes the relations {' '.join(TEXT_RELATIONS)}, "
                         f"not {relation!r}", "text_relation", text=relation)
    if index in ("isbn", "issn"):
        term = term.replace(" ", "")
    return Clause(index, relation, term, truncated)


def to_cql(node: Node, index_names: dict[str, str] | None = None) -> str:
    """Write a tree back as CQL, renaming indexes (for a member's SRU server)."""
    names = index_names or {}
    if isinstance(node, Boolean):
        return f"({to_cql(node.left, names)} {node.op} {to_cql(node.right, names)})"
    if node.matches_all:
        return "cql.allRecords = 1"
    term = re.sub(r'([\\"*?^])', r"\\\1", node.term)
    star = "*" if node.truncated else ""
    index = names.get(node.index, node.index)
    return f'{index} {node.relation} "{term}{star}"'
