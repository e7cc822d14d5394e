"""The reader's CQL tree as a Z39.50 type-1 (RPN) query with Bib-1 attributes.

Each index maps to a use attribute (overridable per library by its ``indexes`` map, as a
string of ``type=value`` pairs such as ``"1=4 4=1"``); the clause adds relation (year),
structure (phrase) and truncation attributes unless the map already fixes them.
"""

from __future__ import annotations

from broker.kernel.cql import Boolean, Clause, Node
from broker.kernel.errors import ConfigError, UnsupportedQuery
from broker.kernel.pqf import PqfBoolean, PqfNode
from connectors.z3950 import ber
from connectors.z3950.apdu import BIB1_ATTRIBUTES
from connectors.z3950.ber import CONTEXT, UNIVERSAL

DEFAULT_ATTRIBUTES = {
    "any": "1=1016", "title": "1=4", "author": "1=1003", "subject": "1=21", "isbn": "1=7",
    "issn": "1=8", "publisher": "1=1018", "year": "1=31",
    # No Bib-1 default for call numbers: members index them differently (16, 20, 53...).
}
# Bib-1 attribute types, and the values of them we write (``server_rpn`` reads the same).
USE, RELATION, POSITION, STRUCTURE, TRUNCATION, COMPLETENESS = 1, 2, 3, 4, 5, 6
RELATIONS = {"<": 1, "<=": 2, "=": 3, ">=": 4, ">": 5}
PHRASE, WORD, YEAR_STRUCTURE, RIGHT_TRUNCATION, COMPLETE_FIELD = 1, 2, 4, 1, 3
# Operator ::= [46] CHOICE { and [0] IMPLICIT NULL, or [1] ..., and-not [2] ..., prox [3] }
OPERATORS = {"and": 0, "or": 1, "not": 2}


def parse_attributes(spec: str) -> list[tuple[int, int]]:
    """``"1=4 4=1"`` -> [(1, 4), (4, 1)]."""
    pairs = []
    for part in spec.split():
        kind, sep, value = part.partition("=")
        if not sep or not kind.isdigit() or not value.isdigit():
            raise ConfigError(f"Z39.50 attribute {part!r} in {spec!r} is not TYPE=VALUE")
        pairs.append((int(kind), int(value)))
    if not pairs:
        raise ConfigError(f"no attributes in {spec!r}")
    return pairs


def clause_attributes(clause: Clause, indexes: dict[str, str]) -> list[tuple[int, int]]:
    spec = indexes.get(clause.index) or DEFAULT_ATTRIBUTES.get(clause.index)
    if spec is None:
        raise UnsupportedQuery(f"this library's catalogue cannot be searched by {clause.index}")
    attrs = dict(parse_attributes(spec))
    if clause.index == "year":
        attrs.setdefault(RELATION, RELATIONS[clause.relation])
        # Structure "year": servers such as Zebra compare ranges only on a typed index.
        attrs.setdefault(STRUCTURE, YEAR_STRUCTURE)
    if clause.is_phrase:
        attrs.setdefault(STRUCTURE, PHRASE)
    if clause.relation == "==":
        # CQL's exact match: the whole field, Bib-1 completeness "complete field".
        attrs.setdefault(COMPLETENESS, COMPLETE_FIELD)
    if clause.truncated:
        attrs.setdefault(TRUNCATION, RIGHT_TRUNCATION)
    return sorted(attrs.items())


def _expand(node: Node) -> Node:
    """``all``/``any`` over several words become ANDs/ORs of one-word clauses."""
    if isinstance(node, Boolean):
        return Boolean(node.op, _expand(node.left), _expand(node.right))
    if node.relation in ("all", "any") and len(node.words) > 1:
        op = "and" if node.relation == "all" else "or"
        words = node.words
        tree: Node = Clause(node.index, "=", words[0])
        for i, word in enumerate(words[1:], start=1):
            last = i == len(words) - 1
            tree = Boolean(op, tree, Clause(node.index, "=", word, node.truncated and last))
        return tree
    return node


def encode_query(node: Node, indexes: dict[str, str], charset: str) -> bytes:
    """A query tree as a type-1 query, each clause with the attributes of its index."""
    return _rpn_query(_structure(_expand(node), indexes, charset))


def _structure(node: Node, indexes: dict[str, str], charset: str) -> bytes:
    if isinstance(node, Boolean):
        return _boolean(node.op, _structure(node.left, indexes, charset),
                        _structure(node.right, indexes, charset))
    elements = [_attribute(kind, value, charset)
                for kind, value in clause_attributes(node, indexes)]
    return _operand(elements, node.term, charset)


def to_pqf(node: Node, indexes: dict[str, str]) -> str:
    """The same query in YAZ's prefix notation, for logs and for yaz-client."""
    node = _expand(node)
    if isinstance(node, Boolean):
        op = {"and": "@and", "or": "@or", "not": "@not"}[node.op]
        return f"{op} {to_pqf(node.left, indexes)} {to_pqf(node.right, indexes)}"
    attrs = " ".join(f"@attr {k}={v}" for k, v in clause_attributes(node, indexes))
    term = node.term.replace("\\", "\\\\").replace('"', '\\"')
    return f'{attrs} "{term}"'


# --- native queries: a librarian's PQF (broker.kernel.pqf), such as all_records --------


def encode_pqf(node: PqfNode, charset: str) -> bytes:
    """A parsed PQF query as a type-1 query, attributes and terms as written."""
    return _rpn_query(_pqf_structure(node, charset))


def _pqf_structure(node: PqfNode, charset: str) -> bytes:
    if isinstance(node, PqfBoolean):
        return _boolean(node.op, _pqf_structure(node.left, charset),
                        _pqf_structure(node.right, charset))
    elements = [_attribute(kind, value, charset) for kind, value in node.attributes]
    return _operand(elements, node.term, charset)


# --- the RPN structure, for either kind of query ------------------------------------------


def _rpn_query(structure: bytes) -> bytes:
    """Query ::= CHOICE { ..., type-1 [1] IMPLICIT RPNQuery, ... }
    RPNQuery ::= SEQUENCE { attributeSet AttributeSetId, rpn RPNStructure }
    """
    return ber.seq(CONTEXT, 1, [ber.oid(BIB1_ATTRIBUTES), structure])


def _boolean(op: str, left: bytes, right: bytes) -> bytes:
    """RPNStructure ::= CHOICE { op [0] Operand, rpnRpnOp [1] IMPLICIT SEQUENCE {
        rpn1 RPNStructure, rpn2 RPNStructure, op Operator } }
    Operator ::= [46] CHOICE { and [0] IMPLICIT NULL, or [1] IMPLICIT NULL,
        and-not [2] IMPLICIT NULL, prox [3] IMPLICIT ProximityOperator }
    """
    operator = ber.tlv(CONTEXT, 46, ber.null(CONTEXT, OPERATORS[op]), True)
    return ber.seq(CONTEXT, 1, [left, right, operator])


def _operand(elements: list[bytes], term: str, charset: str) -> bytes:
    """op [0] Operand, the AttributesPlusTerm choice:
    AttributesPlusTerm ::= [102] IMPLICIT SEQUENCE { attributes AttributeList, term Term }
    AttributeList ::= [44] IMPLICIT SEQUENCE OF AttributeElement
    Term ::= CHOICE { general [45] IMPLICIT OCTET STRING, ... }
    """
    try:
        data = term.encode(charset)
    except (UnicodeEncodeError, LookupError):
        raise UnsupportedQuery(
            f"the term {term!r} cannot be written in this library's charset {charset}"
        ) from None
    operand = ber.seq(CONTEXT, 102, [ber.seq(CONTEXT, 44, elements),
                                     ber.octets(data, CONTEXT, 45)])
    return ber.tlv(CONTEXT, 0, operand, constructed=True)


def _attribute(kind: int, value: int | str, charset: str) -> bytes:
    """AttributeElement ::= SEQUENCE { attributeSet [1] IMPLICIT AttributeSetId OPTIONAL,
        attributeType [120] IMPLICIT INTEGER, attributeValue CHOICE {
        numeric [121] IMPLICIT INTEGER, complex [224] IMPLICIT SEQUENCE { list [1]
        IMPLICIT SEQUENCE OF StringOrNumeric, ... } } }
    A text value is complex with StringOrNumeric string [1] (as YAZ sends
    ``@attr 1=_ALLRECORDS``).
    """
    if isinstance(value, int):
        encoded = ber.integer(value, CONTEXT, 121)
    else:
        text = ber.octets(value.encode(charset, "replace"), CONTEXT, 1)
        encoded = ber.seq(CONTEXT, 224, [ber.seq(CONTEXT, 1, [text])])
    return ber.seq(UNIVERSAL, ber.SEQUENCE, [ber.integer(kind, CONTEXT, 120), encoded])
