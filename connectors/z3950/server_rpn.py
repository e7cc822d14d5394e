"""Type-1 (RPN) queries as a target reads them: back into the broker's query tree.

The mirror of ``rpn.py``, which writes the reader's tree as RPN, and on its Bib-1
vocabulary. A query the tree cannot say (proximity, an unknown use attribute...) or that is
not well formed is a ``Bib1`` diagnostic for the client, and the association goes on; only
BER that is not what the standard says (an INTEGER of kilobytes) is a ProtocolError.

The string use attribute ``_ALLRECORDS`` (``@attr 1=_ALLRECORDS``, Zebra's, which YAZ's CQL
mapping and our harvests send for ``cql.allRecords``) is the clause matching every record,
whatever its term (harvests send an empty one) and relation (103, "always matches").
"""

from __future__ import annotations

from collections.abc import Callable

from broker.kernel.cql import ALL_RECORDS_CLAUSE, Boolean, Clause, Node
from broker.kernel.errors import ProtocolError
from connectors.z3950 import ber
from connectors.z3950.apdu import BIB1_ATTRIBUTES, dotted
from connectors.z3950.ber import CONTEXT, UNIVERSAL
from connectors.z3950.diagnostics import Bib1
from connectors.z3950.rpn import (
    COMPLETENESS,
    OPERATORS,
    PHRASE,
    POSITION,
    RELATION,
    RELATIONS,
    RIGHT_TRUNCATION,
    STRUCTURE,
    TRUNCATION,
    USE,
    WORD,
)
from connectors.z3950.server_pdu import small_int

USE_ATTRIBUTES = {
    1016: "any", 1017: "any", 1035: "any", 4: "title", 1003: "author", 1004: "author",
    21: "subject", 7: "isbn", 8: "issn", 1018: "publisher", 31: "year", 30: "year",
    16: "callnumber", 20: "callnumber", 53: "callnumber",
}
YEAR_RELATIONS = {value: relation for relation, value in RELATIONS.items()}
_OPERATORS = {value: op for op, value in OPERATORS.items()}
_WORD_LISTS = {6, 105, 106}  # word list, free-form text, document text: every word
_NUMERIC = {4: ("year",), 5: ("year",), 109: ("year", "isbn", "issn")}  # year, date, numeric
ALL_RECORDS_USE = "_ALLRECORDS"


def read_query(query: ber.Node, decode: Callable[[bytes], str],
               stored: Callable[[str], Node | None]) -> Node:
    """Query ::= CHOICE { type-0 [0] ANY, type-1 [1] IMPLICIT RPNQuery, type-2 [2] ...,
        type-100 [100] ..., type-101 [101] IMPLICIT RPNQuery, type-102 [102] ...,
        type-104 [104] IMPLICIT EXTERNAL }
    RPNQuery ::= SEQUENCE { attributeSet AttributeSetId, rpn RPNStructure }
    ``decode`` turns a term into text (or raises Bib1); ``stored`` gives the query of a named
    result set used as an operand.
    """
    if query.cls != CONTEXT or query.number not in (1, 101):
        raise Bib1(107, f"type-{query.number}")
    if not query.constructed or len(query.children) != 2:
        raise Bib1(108, "RPNQuery needs an attribute set and an RPN structure")
    attribute_set, rpn = query.children
    if not attribute_set.is_(UNIVERSAL, ber.OID):
        raise Bib1(108, "RPNQuery without its attribute set")
    _check_set(attribute_set)
    return _structure(rpn, decode, stored, 0)


def _check_set(node: ber.Node) -> None:
    try:
        value = node.as_oid()
    except ProtocolError:
        raise Bib1(121, "unreadable attribute set") from None
    if value != BIB1_ATTRIBUTES:
        raise Bib1(121, dotted(value))


def _structure(node: ber.Node, decode: Callable[[bytes], str],
               stored: Callable[[str], Node | None], depth: int) -> Node:
    """RPNStructure ::= CHOICE { op [0] Operand, rpnRpnOp [1] IMPLICIT SEQUENCE {
        rpn1 RPNStructure, rpn2 RPNStructure, op Operator } }
    Operator ::= [46] CHOICE { and [0] IMPLICIT NULL, or [1] IMPLICIT NULL,
        and-not [2] IMPLICIT NULL, prox [3] IMPLICIT ProximityOperator }
    Operand ::= CHOICE { attrTerm AttributesPlusTerm, resultSet ResultSetId,
        resultAttr ResultSetPlusAttributes }   ResultSetId ::= [31] IMPLICIT InternationalString
    """
    if depth > 30:
        raise Bib1(6, "the query is nested too deeply")
    if node.is_(CONTEXT, 1) and node.constructed and len(node.children) == 3:
        left, right, operator = node.children
        if not operator.is_(CONTEXT, 46) or len(operator.children) != 1:
            raise Bib1(108, "boolean without an operator")
        op = operator.children[0]
        if op.cls != CONTEXT or op.number not in _OPERATORS:
            raise Bib1(110, "proximity" if op.number == 3 else f"operator [{op.number}]")
        return Boolean(_OPERATORS[op.number], _structure(left, decode, stored, depth + 1),
                       _structure(right, decode, stored, depth + 1))
    if not node.is_(CONTEXT, 0) or not node.constructed or len(node.children) != 1:
        raise Bib1(108, f"unexpected [{node.number}] in the RPN structure")
    operand = node.children[0]
    if operand.is_(CONTEXT, 102) and operand.constructed:
        return _clause(operand, decode)
    if operand.is_(CONTEXT, 31):
        name = operand.as_bytes().decode("utf-8", "replace")
        query = stored(name)
        if query is None:
            raise Bib1(30, name)
        return query
    if operand.is_(CONTEXT, 214):
        raise Bib1(18, "result set with attributes")
    raise Bib1(108, f"unexpected operand [{operand.number}]")


def _clause(node: ber.Node, decode: Callable[[bytes], str]) -> Clause:
    """AttributesPlusTerm ::= [102] IMPLICIT SEQUENCE { attributes AttributeList, term Term }
    AttributeList ::= [44] IMPLICIT SEQUENCE OF AttributeElement
    AttributeElement ::= SEQUENCE { attributeSet [1] IMPLICIT AttributeSetId OPTIONAL,
        attributeType [120] IMPLICIT INTEGER, attributeValue CHOICE {
        numeric [121] IMPLICIT INTEGER, complex [224] IMPLICIT ComplexAttribute } }
    Term ::= CHOICE { general [45] IMPLICIT OCTET STRING, numeric [215] IMPLICIT INTEGER,
        characterString [216] IMPLICIT InternationalString, oid [217] ..., dateTime [218]
        ..., external [219] ..., integerAndUnit [220] ..., null [221] ... }
    """
    attributes, term_node = node.context(44), None
    for child in node.children:
        if not child.is_(CONTEXT, 44):
            term_node = child
    if attributes is None or term_node is None:
        raise Bib1(108, "a term without its attribute list or term")
    attrs: dict[int, int] = {}
    all_records = False
    for element in attributes.children:
        kind, value = element.context(120), element.context(121)
        attribute_set = element.context(1)
        if attribute_set is not None:
            _check_set(attribute_set)
        if kind is None:
            raise Bib1(108, "attribute without its type")
        if value is None:
            text = _complex_string(element.context(224))
            if small_int(kind) == USE and text is not None and text.upper() == ALL_RECORDS_USE:
                all_records = True
                continue
            if small_int(kind) == USE and text:
                raise Bib1(114, text)  # another string use attribute (a Zebra index name)
            raise Bib1(1024, f"complex value of attribute type {small_int(kind)}")
        attrs[small_int(kind)] = small_int(value)
    if all_records:
        return ALL_RECORDS_CLAUSE
    if term_node.is_(CONTEXT, 45) or term_node.is_(CONTEXT, 216):
        term = decode(term_node.as_bytes()).strip()
    elif term_node.is_(CONTEXT, 215):
        term = str(small_int(term_node))
    else:
        raise Bib1(229, f"term type [{term_node.number}]")
    if not term:
        raise Bib1(125, "empty term")
    return attributes_to_clause(attrs, term)


def _complex_string(node: ber.Node | None) -> str | None:
    """ComplexAttribute ::= SEQUENCE { list [1] IMPLICIT SEQUENCE OF StringOrNumeric, ... }
    StringOrNumeric ::= CHOICE { string [1] IMPLICIT InternationalString, numeric [2] ... }
    The one string of a complex value (``@attr 1=_ALLRECORDS``); None for anything else."""
    items = node.context(1) if node is not None else None
    if items is None or len(items.children) != 1 or not items.children[0].is_(CONTEXT, 1):
        return None
    return items.children[0].as_bytes().decode("utf-8", "replace").strip()


def attributes_to_clause(attrs: dict[int, int], term: str) -> Clause:
    """Bib-1 use (1), relation (2), position (3), structure (4), truncation (5) and
    completeness (6) attributes on a term, as one clause of our query tree."""
    for kind in attrs:
        if kind not in (USE, RELATION, POSITION, STRUCTURE, TRUNCATION, COMPLETENESS):
            raise Bib1(113, str(kind))
    use = attrs.get(USE, 1016)  # any
    index = USE_ATTRIBUTES.get(use)
    if index is None:
        raise Bib1(114, str(use))
    relation_value = attrs.get(RELATION, 3)
    if index == "year" and relation_value in YEAR_RELATIONS:
        relation = YEAR_RELATIONS[relation_value]
    elif relation_value in (3, 102):  # equal, relevance
        relation = "="
    else:
        raise Bib1(117, str(relation_value))
    if attrs.get(POSITION, 3) != 3:  # any position in the field
        raise Bib1(119, str(attrs[POSITION]))
    truncation = attrs.get(TRUNCATION, 100)  # 100: none
    if (truncation not in (RIGHT_TRUNCATION, 100)
            or (truncation == RIGHT_TRUNCATION and index == "year")):
        raise Bib1(120, str(truncation))
    structure = attrs.get(STRUCTURE)
    words = len(term.split())
    if structure in _NUMERIC:
        if index not in _NUMERIC[structure]:
            raise Bib1(118, str(structure))
    elif structure in _WORD_LISTS or (structure == WORD and words > 1):
        relation = "all" if words > 1 and index != "year" else relation
    elif structure not in (None, PHRASE, WORD):
        raise Bib1(118, str(structure))
    completeness = attrs.get(COMPLETENESS, 1)  # incomplete subfield
    if completeness not in (1, 2, 3):
        raise Bib1(122, str(completeness))
    if completeness != 1 and relation == "=" and index != "year":
        relation = "=="
    if index == "year" and not (term.isdigit() and len(term) <= 4):
        raise Bib1(126, f"year {term!r}")
    if index in ("isbn", "issn"):
        term = term.replace(" ", "")
    return Clause(index, relation, term, truncation == RIGHT_TRUNCATION)
