"""YAZ's prefix query format (PQF), the native Z39.50 query a librarian writes in the config.

Only what a harvest's ``all_records`` query needs: ``@attr TYPE=VALUE`` (numeric or string
values, such as Zebra's ``1=_ALLRECORDS``), ``@and``/``@or``/``@not``, an optional leading
``@attrset bib-1``, and terms (bare or "quoted" with backslash escapes). Attributes given
before an operator apply to every term under it. The Z39.50 connector encodes the tree
(``connectors.z3950.rpn.encode_pqf``); this module has no protocol code so that the
config loader can check a query without importing the connectors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from broker.kernel.errors import QueryError

AttrValue = int | str
_TOKEN = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|(\S+))', re.S)
_OPERATORS = {"@and": "and", "@or": "or", "@not": "not"}


@dataclass(frozen=True, slots=True)
class PqfTerm:
    attributes: tuple[tuple[int, AttrValue], ...]
    term: str


@dataclass(frozen=True, slots=True)
class PqfBoolean:
    op: str  # and, or, not
    left: PqfNode
    right: PqfNode


PqfNode = PqfTerm | PqfBoolean


def parse_pqf(text: str) -> PqfNode:
    """Parse PQF; QueryError says what is wrong."""
    tokens = _tokens(text)
    if not tokens:
        raise QueryError("the PQF query is empty")
    if tokens[0] == (False, "@attrset"):
        if len(tokens) < 2 or tokens[1][1].lower() not in ("bib-1", "bib1"):
            raise QueryError("only @attrset bib-1 is supported")
        tokens = tokens[2:]
    node, rest = _struct(tokens, ())
    if rest:
        raise QueryError(f"unexpected {rest[0][1]!r} after the end of the PQF query")
    return node


def _tokens(text: str) -> list[tuple[bool, str]]:
    """(quoted?, text) pairs; a quoted "@and" is a term, not an operator."""
    out = []
    pos = 0
    while pos < len(text) and text[pos:].strip():
        match = _TOKEN.match(text, pos)
        if match is None or (match.group(2) or "").startswith('"'):
            raise QueryError(f"unterminated quoted term at position {pos + 1} of the PQF query")
        if match.group(1) is not None:
            out.append((True, re.sub(r"\\(.)", r"\1", match.group(1))))
        else:
            out.append((False, match.group(2)))
        pos = match.end()
    return out


def _struct(tokens: list[tuple[bool, str]], attrs: tuple[tuple[int, AttrValue], ...]
            ) -> tuple[PqfNode, list[tuple[bool, str]]]:
    if not tokens:
        raise QueryError("the PQF query ends where a term was expected")
    (quoted, word), rest = tokens[0], tokens[1:]
    if not quoted and word == "@attr":
        if not rest:
            raise QueryError("@attr without TYPE=VALUE")
        spec = rest[0][1]
        kind, sep, value = spec.partition("=")
        if not sep or not kind.isdigit() or not value:
            raise QueryError(f"@attr {spec!r} is not TYPE=VALUE (attribute sets other than "
                             "bib-1 are not supported)")
        typed: AttrValue = int(value) if value.isdigit() else value
        return _struct(rest[1:], (*attrs, (int(kind), typed)))
    if not quoted and word in _OPERATORS:
        left, rest = _struct(rest, attrs)
        right, rest = _struct(rest, attrs)
        return PqfBoolean(_OPERATORS[word], left, right), rest
    if not quoted and word.startswith("@"):
        raise QueryError(f"PQF operator {word} is not supported (use @attr, @and, @or, @not)")
    return PqfTerm(attrs, word), rest
