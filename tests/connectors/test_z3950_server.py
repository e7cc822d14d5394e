"""Our Z39.50 server (connectors/z3950/server*.py) serving a Catalogue, checked from outside.

The catalogue here is the simplest one possible: a list of real records (shared test data)
and a query tree evaluated record by record on normalized fields. YAZ's yaz-client, the
reference client, and our own connector must get from the server exactly what the
catalogue gives directly: hit counts, records (USMARC, UNIMARC, MARCXML, OPAC with every
library's holdings, SUTRS), diagnostics for what cannot be done. Hostile clients
(garbage, bad BER, huge or slow requests, too many connections) lose their own association
only; the server goes on serving everyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import random
import re
import socket
import subprocess
import threading
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pymarc
import pytest
from peers.servers import yaz_client_fetch, yaz_client_hits, yaz_client_run

from broker.catalogues.marc_file import LocalCatalogue
from broker.kernel.config import ConnectorConfig, Library
from broker.kernel.consortium import DEFAULT_ALL_RECORDS, MarcFormat
from broker.kernel.cql import ALL_RECORDS_CLAUSE, Boolean, Clause, Node, parse
from broker.kernel.errors import (
    Diagnostic,
    ProtocolError,
    QueryError,
    Unreachable,
    UnsupportedQuery,
)
from broker.kernel.pqf import parse_pqf
from connectors.z3950 import apdu, ber, pdu, server_pdu, server_rpn
from connectors.z3950.ber import CONTEXT
from connectors.z3950.client import Z3950Client
from connectors.z3950.connector import Z3950Connector
from connectors.z3950.diagnostics import Bib1
from connectors.z3950.rpn import _expand, encode_pqf, encode_query, to_pqf
from connectors.z3950.server import Z3950Server
from connectors.z3950.sutrs import sutrs_text
from marc import Holding, Record, normalize, read_bytes, read_file
from marc.normalization.text import isbn13, issn
from marc.writer import holdings_of, write_record

HOST = "127.0.0.1"
INDEXES = {"callnumber": "1=16"}
SOURCES = {  # database -> (flavour, files under testdata/marc)
    "marc21": ("marc21", ("pymarc/test.dat", "marc4j/summerland.mrc", "yaz/marccol1.u8.marc")),
    "unimarc": ("unimarc", ("derived/bnu_cnmarc.utf8.iso",)),
}

# --- a catalogue over a list of records ---------------------------------------------------


def _norm(text: str) -> str:
    return re.sub(r"[\W_]+", " ", text.casefold()).strip()


def _contains(value: str, phrase: str, truncated: bool) -> bool:
    if not phrase.isascii():
        return phrase in value  # CJK: no word boundaries to respect
    end = "" if truncated else r"(?!\w)"
    return re.search(rf"(?<!\w){re.escape(phrase)}{end}", value) is not None


class ListResultSet:
    def __init__(self, records: list) -> None:
        self._records = records
        self.hits = len(records)

    async def fetch(self, start: int, count: int) -> list:
        return self._records[start - 1:start - 1 + count]


class ListCatalogue:
    """Records in a list; a query is evaluated on each one's normalized fields."""

    def __init__(self, name: str, flavour: str, records: list, encoding: str = "utf-8"
                 ) -> None:
        self.name, self.flavour, self.records = name, flavour, records
        self.encoding = encoding  # what the server sends records and takes terms in
        self._values = [self._fields(normalize(r, flavour=flavour)) for r in records]

    @staticmethod
    def _fields(rec) -> dict:
        fields = {
            "title": [rec.title, rec.subtitle], "author": [*rec.authors, rec.responsibility],
            "subject": list(rec.subjects), "isbn": list(rec.isbns), "issn": list(rec.issns),
            "publisher": [rec.publisher],
            "callnumber": [*rec.call_numbers, *(c.value for c in rec.classification)],
        }
        out: dict = {key: [_norm(v) for v in values if v] for key, values in fields.items()}
        out["any"] = [v for values in out.values() for v in values]
        out["year"] = rec.year
        return out

    async def search(self, query: Node) -> ListResultSet:
        return ListResultSet([r for r, values in zip(self.records, self._values, strict=True)
                              if self._matches(query, values)])

    def _matches(self, node: Node, values: dict) -> bool:
        if isinstance(node, Boolean):
            left = self._matches(node.left, values)
            if node.op == "and":
                return left and self._matches(node.right, values)
            if node.op == "or":
                return left or self._matches(node.right, values)
            return left and not self._matches(node.right, values)
        if node.index == "year":
            compare = {"=": operator.eq, "<": operator.lt, "<=": operator.le,
                       ">=": operator.ge, ">": operator.gt}[node.relation]
            return values["year"] is not None and compare(values["year"], int(node.term))
        term = node.term
        if node.index == "isbn":
            term = isbn13(term) or term
        elif node.index == "issn":
            term = issn(term) or term
        words, fields = _norm(term), values[node.index]
        if not words:
            raise QueryError(f"nothing to search for in {node.term!r}")
        if node.relation == "==":
            return words in fields
        if node.relation in ("all", "any"):
            test = all if node.relation == "all" else any
            return test(any(_contains(v, w, node.truncated) for v in fields)
                        for w in words.split())
        return any(_contains(v, words, node.truncated) for v in fields)


class PickyCatalogue(ListCatalogue):
    """Refuses call numbers (UnsupportedQuery) and the word 'bad' (QueryError)."""

    async def search(self, query: Node) -> ListResultSet:
        if isinstance(query, Clause) and query.index == "callnumber":
            raise UnsupportedQuery("this catalogue has no call-number index")
        if isinstance(query, Clause) and query.term == "bad":
            raise QueryError("the word 'bad' is not allowed here")
        return await super().search(query)


@pytest.fixture(scope="module")
def catalogues(marc_data) -> dict:
    found = {}
    for db, (flavour, files) in SOURCES.items():
        records = [e.record for name in files for e in read_file(marc_data / name)
                   if e.record is not None]
        found[db] = ListCatalogue(db, flavour, records)
    found["picky"] = PickyCatalogue("picky", "marc21", found["marc21"].records)
    return found


@pytest.fixture(scope="module")
def served(catalogues):
    """Our server on its own event loop in a thread (yaz-client blocks the test's thread)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = Z3950Server(catalogues)
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    yield server
    asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def _direct(catalogue, cql: str, start: int = 1, count: int = 1000) -> tuple[int, list]:
    async def run():
        results = await catalogue.search(parse(cql))
        return results.hits, await results.fetch(start, count)

    return asyncio.run(run())


# (database, CQL): every index, relation, structure, truncation and boolean.
QUERIES = [
    ("marc21", "title=perl"), ("marc21", 'title="programming perl"'),
    ("marc21", "title=prog*"), ("marc21", 'title all "perl programming"'),
    ("marc21", 'title any "summerland cgi"'), ("marc21", "author=chabon"),
    ("marc21", 'author="brown martin"'), ("marc21", "subject=fiction"),
    ("marc21", "isbn=0786808772"), ("marc21", "isbn=9780786808779"),
    ("marc21", "publisher=\"o'reilly\""), ("marc21", "perl"), ("marc21", "中国"),
    ("marc21", "出版社"),
    ("marc21", 'callnumber="QA76.73.P22"'), ("marc21", "year=1999"),
    ("marc21", "year>=2000"), ("marc21", "year>2000"), ("marc21", "year<1985"),
    ("marc21", "year<=1984"), ("marc21", "perl and year>=2000"),
    ("marc21", "perl or summerland"), ("marc21", "perl not programming"),
    ("marc21", "(title=perl or author=chabon) and year<2001"),
    ("marc21", "title=nonexistentword"),
    ("unimarc", "title=中国发展报告"), ("unimarc", "author=国家统计局"),
    ("unimarc", "publisher=中国统计出版社 and year>=1997"), ("unimarc", "isbn=9787503717444"),
    ("unimarc", "subject=经济发展 not year=1994"), ("unimarc", "callnumber=F124"),
]


def test_the_queries_are_not_trivial(catalogues):
    counts = {(db, cql): _direct(catalogues[db], cql)[0] for db, cql in QUERIES}
    assert counts["marc21", "title=perl"] == 9
    assert counts["marc21", "author=chabon"] == 1
    assert counts["unimarc", "author=国家统计局"] == 9
    assert counts["marc21", "title=nonexistentword"] == 0
    assert len(set(counts.values())) > 10


# --- the query tree survives the trip through RPN ----------------------------------------


@pytest.mark.parametrize(("db", "cql"), QUERIES)
def test_our_rpn_reads_back_as_the_same_tree(db, cql):
    tree = parse(cql)
    query = ber.decode(encode_query(tree, INDEXES, "utf-8"))
    assert server_rpn.read_query(query, bytes.decode, lambda name: None) == _expand(tree)


@pytest.mark.parametrize(("attrs", "term", "expected"), [
    ({}, "perl", Clause("any", "=", "perl")),
    ({1: 1016, 4: 1}, "cgi programming", Clause("any", "=", "cgi programming")),
    ({1: 4, 4: 6}, "perl programming", Clause("title", "all", "perl programming")),
    ({1: 4, 4: 2}, "perl programming", Clause("title", "all", "perl programming")),
    ({1: 4, 4: 1, 6: 3}, "summerland", Clause("title", "==", "summerland")),
    ({1: 4, 5: 1, 3: 3}, "prog", Clause("title", "=", "prog", True)),
    ({1: 31, 2: 4, 4: 4}, "2000", Clause("year", ">=", "2000")),
    ({1: 31, 2: 1, 4: 109}, "2000", Clause("year", "<", "2000")),
    ({1: 1003, 2: 102}, "wall", Clause("author", "=", "wall")),
    ({1: 20}, "QA76", Clause("callnumber", "=", "QA76")),
    ({1: 53}, "QA76", Clause("callnumber", "=", "QA76")),
    ({1: 7, 4: 109}, "0 7868 0877 2", Clause("isbn", "=", "0786808772")),
    ({1: 8}, "0028-0836", Clause("issn", "=", "0028-0836")),
    ({1: 21}, "fiction", Clause("subject", "=", "fiction")),
    ({1: 1018}, "o'reilly", Clause("publisher", "=", "o'reilly")),
    ({1: 9999}, "x", 114), ({1: 4, 2: 1}, "x", 117), ({1: 31, 2: 6}, "2000", 117),
    ({1: 4, 4: 3}, "x", 118), ({1: 4, 4: 4}, "x", 118), ({1: 4, 5: 2}, "x", 120),
    ({1: 31, 5: 1}, "19", 120), ({1: 4, 3: 1}, "x", 119), ({7: 1}, "x", 113),
    ({1: 4, 6: 9}, "x", 122), ({1: 31}, "last year", 126),
])
def test_bib1_attributes_become_clauses(attrs, term, expected):
    if isinstance(expected, int):
        with pytest.raises(Bib1) as caught:
            server_rpn.attributes_to_clause(attrs, term)
        assert caught.value.code == expected
    else:
        assert server_rpn.attributes_to_clause(attrs, term) == expected


def _rpn(attribute_set: tuple[int, ...], structure: bytes, query_type: int = 1) -> ber.Node:
    return ber.decode(ber.seq(CONTEXT, query_type, [ber.oid(attribute_set), structure]))


def _element_term(*element: bytes) -> bytes:
    """An operand whose one AttributeElement is made of ``element``, on the term 'x'."""
    attributes = ber.seq(CONTEXT, 44, [ber.seq(0, ber.SEQUENCE, element)])
    return ber.seq(CONTEXT, 0, [ber.seq(CONTEXT, 102, [attributes,
                                                       ber.octets(b"x", CONTEXT, 45)])])


def _term(text: bytes, attrs: tuple[tuple[int, int], ...] = ((1, 4),)) -> bytes:
    elements = [ber.seq(0, ber.SEQUENCE, [ber.integer(k, CONTEXT, 120),
                                          ber.integer(v, CONTEXT, 121)]) for k, v in attrs]
    return ber.seq(CONTEXT, 0, [ber.seq(CONTEXT, 102, [ber.seq(CONTEXT, 44, elements),
                                                       ber.octets(text, CONTEXT, 45)])])


@pytest.mark.parametrize(("query", "code"), [
    (_rpn((1, 2, 840, 10003, 3, 2), _term(b"perl")), 121),
    (_rpn(apdu.BIB1_ATTRIBUTES, _term(b"perl"), query_type=2), 107),
    (_rpn(apdu.BIB1_ATTRIBUTES, ber.seq(CONTEXT, 1, [_term(b"a"), _term(b"b"), ber.tlv(
        CONTEXT, 46, ber.seq(CONTEXT, 3, [ber.integer(1)]), True)])), 110),
    (_rpn(apdu.BIB1_ATTRIBUTES, ber.seq(CONTEXT, 7, [_term(b"a")])), 108),
    (_rpn(apdu.BIB1_ATTRIBUTES, ber.seq(CONTEXT, 0, [ber.octets(b"x", CONTEXT, 31)])), 30),
    (_rpn(apdu.BIB1_ATTRIBUTES, _term(b"  ")), 125),
    (_rpn(apdu.BIB1_ATTRIBUTES, _element_term(ber.oid((1, 2, 840, 10003, 3, 2), CONTEXT, 1),
                                              ber.integer(1, CONTEXT, 120),
                                              ber.integer(4, CONTEXT, 121))), 121),
    (_rpn(apdu.BIB1_ATTRIBUTES, _element_term(ber.integer(4, CONTEXT, 121))), 108),
    (_rpn(apdu.BIB1_ATTRIBUTES, _element_term(ber.integer(1, CONTEXT, 120))), 1024),
])
def test_queries_we_cannot_run_are_diagnostics(query, code):
    with pytest.raises(Bib1) as caught:
        server_rpn.read_query(query, bytes.decode, lambda name: None)
    assert caught.value.code == code


@pytest.mark.parametrize("pqf", [DEFAULT_ALL_RECORDS["z3950"], "@attr 1=_ALLRECORDS x",
                                 '@attr 1=_allrecords @attr 2=103 @attr 4=1 ""'])
def test_all_records_use_attribute_is_every_record(pqf):
    query = ber.decode(encode_pqf(parse_pqf(pqf), "utf-8"))
    assert server_rpn.read_query(query, bytes.decode, lambda name: None) == ALL_RECORDS_CLAUSE
    both = ber.decode(encode_pqf(parse_pqf(f"@not {pqf} @attr 1=4 perl"), "utf-8"))
    assert server_rpn.read_query(both, bytes.decode, lambda name: None) == Boolean(
        "not", ALL_RECORDS_CLAUSE, Clause("title", "=", "perl"))


def test_another_string_use_attribute_is_an_unsupported_use():
    query = ber.decode(encode_pqf(parse_pqf("@attr 1=_NOSUCH x"), "utf-8"))
    with pytest.raises(Bib1) as caught:
        server_rpn.read_query(query, bytes.decode, lambda name: None)
    assert (caught.value.code, caught.value.addinfo) == (114, "_NOSUCH")


@pytest.fixture(scope="module")
def local_served(marc_data):
    """A LocalCatalogue, as the demo's Z39.50 members serve it, behind our server."""
    catalogue = LocalCatalogue(marc_data / "pymarc" / "test.dat", name="local")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = Z3950Server({"local": catalogue})
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    yield server, len(catalogue)
    asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


YAZ_CQL_MAP = Path("/usr/share/yaz/etc/pqf.properties")  # YAZ's CQL -> Bib-1 mapping


@pytest.mark.parametrize("commands", [
    [f"find {DEFAULT_ALL_RECORDS['z3950']}"],
    pytest.param([f"set_cqlfile {YAZ_CQL_MAP}", "querytype cql2rpn", "find cql.allRecords=1"],
                 marks=pytest.mark.skipif(not YAZ_CQL_MAP.exists(),
                                          reason="YAZ's pqf.properties not installed")),
])
def test_yaz_client_gets_every_record_with_allrecords(local_served, commands):
    server, size = local_served
    output = yaz_client_run(HOST, server.port, "local", [*commands, f"show {size}"])
    assert f"Number of hits: {size}" in output, output
    assert "Records: 1" in output and "Diagnostic" not in output, output


# --- requests taken apart by hand: what is missing is a ProtocolError, never a crash ------


def _apdu(tag: int, *parts: bytes) -> ber.Node:
    return ber.decode(ber.seq(CONTEXT, tag, parts))


@pytest.mark.parametrize(("read", "received", "error"), [
    (server_pdu.read_present_request,
     _apdu(apdu.PRESENT_REQUEST, ber.octets(b"a", CONTEXT, 31), ber.integer(1, CONTEXT, 30)),
     r"\[24\] lacks its mandatory field \[29\]"),
    (server_pdu.read_present_request,
     _apdu(apdu.PRESENT_REQUEST, ber.integer(1, CONTEXT, 30), ber.integer(1, CONTEXT, 29)),
     "without a result set name"),
    (server_pdu.read_search_request,
     _apdu(apdu.SEARCH_REQUEST, ber.boolean(True, CONTEXT, 16), ber.octets(b"a", CONTEXT, 17),
           ber.seq(CONTEXT, 18, [ber.octets(b"marc21", CONTEXT, 105)])),
     "Search request without its databases, query"),
    (server_pdu.read_search_request,
     _apdu(apdu.SEARCH_REQUEST, ber.boolean(True, CONTEXT, 16), ber.octets(b"a", CONTEXT, 17),
           ber.seq(CONTEXT, 18, []), ber.seq(CONTEXT, 21, [])),
     r"expected one element inside \[21\]"),
    (server_pdu.read_init_request, _apdu(apdu.INIT_REQUEST, ber.tlv(CONTEXT, 3, b"")),
     "BIT STRING without its unused-bits octet"),
    (server_pdu.read_init_request,
     _apdu(apdu.INIT_REQUEST, ber.tlv(CONTEXT, 5, b"\x01" * 9)), r"INTEGER \[5\] of 9 bytes"),
])
def test_a_request_missing_a_part_is_a_protocol_error(read, received, error):
    with pytest.raises(ProtocolError, match=error):
        read(received)


def _other_info(*units: bytes) -> bytes:
    return ber.seq(CONTEXT, 201, units)


def _negotiation(*encoding: bytes) -> bytes:
    """A unit of otherInfo: externallyDefinedInfo [4] naming charset negotiation."""
    external = ber.seq(CONTEXT, 4, [ber.oid(apdu.CHARSET_NEGOTIATION), *encoding])
    return ber.seq(0, ber.SEQUENCE, [external])


_ISO10646 = ber.seq(CONTEXT, 2, [ber.oid(apdu.UTF8_ENCODING, CONTEXT, 2)])


@pytest.mark.parametrize("other_info", [
    ber.octets(b"", CONTEXT, 201),  # primitive: no units at all
    _other_info(ber.seq(0, ber.SEQUENCE, [])),  # a unit without its information
    _other_info(ber.seq(0, ber.SEQUENCE, [ber.seq(CONTEXT, 4, [])])),  # EXTERNAL, empty
    _other_info(ber.seq(0, ber.SEQUENCE, [ber.seq(CONTEXT, 4, [ber.tlv(CONTEXT, 0, _ISO10646,
                                                                       True)])])),  # no OID
    _other_info(_negotiation()),  # no encoding
    _other_info(_negotiation(ber.seq(CONTEXT, 0, []))),  # single-ASN1-type, empty
    _other_info(_negotiation(ber.seq(CONTEXT, 0, [ber.seq(CONTEXT, 1, [])]))),  # no charsets
    _other_info(_negotiation(ber.seq(CONTEXT, 0, [ber.seq(CONTEXT, 1, [ber.seq(
        CONTEXT, 1, [ber.seq(CONTEXT, 2, [])])])]))),  # iso10646 without its encodingLevel
])
def test_a_broken_charset_proposal_proposes_nothing(other_info):
    request = _apdu(apdu.INIT_REQUEST, ber.integer(1 << 16, CONTEXT, 5), other_info)
    assert not server_pdu.read_init_request(request).utf8_proposed
    whole = _negotiation(ber.seq(CONTEXT, 0, [ber.seq(CONTEXT, 1, [ber.seq(
        CONTEXT, 1, [_ISO10646])])]))
    proposal = _apdu(apdu.INIT_REQUEST, ber.integer(1 << 16, CONTEXT, 5), _other_info(whole))
    assert server_pdu.read_init_request(proposal).utf8_proposed


# --- yaz-client, the reference -----------------------------------------------------------


@pytest.mark.parametrize(("db", "cql"), QUERIES)
def test_yaz_client_gets_the_catalogues_hit_counts(served, catalogues, db, cql):
    pqf = to_pqf(parse(cql), INDEXES)
    charset = "UTF-8" if not cql.isascii() else None
    hits = yaz_client_hits(HOST, served.port, db, pqf, charset=charset)
    assert hits == _direct(catalogues[db], cql)[0], pqf


@pytest.mark.parametrize(("db", "cql", "syntax"), [
    ("marc21", "perl", "usmarc"), ("marc21", "perl", "xml"),
    ("marc21", "中国 or summerland", "usmarc"), ("marc21", "出版社", "xml"),
    ("unimarc", "title=中国发展报告", "unimarc"), ("unimarc", "title=中国发展报告", "xml"),
])
def test_yaz_client_gets_the_catalogues_records(served, catalogues, db, cql, syntax):
    flavour = SOURCES[db][0]
    hits, expected = _direct(catalogues[db], cql)
    assert hits > 1
    got = yaz_client_fetch(HOST, served.port, db, to_pqf(parse(cql), INDEXES), start=1,
                           count=hits, syntax=syntax, charset="UTF-8")
    assert len(got) == hits
    for data, record in zip(got, expected, strict=True):
        if syntax == "usmarc":
            assert data[9:10] == b"a"  # leader/09: UTF-8
        entries = list(read_bytes(data, flavour=flavour, encoding="utf-8"))
        assert len(entries) == 1 and entries[0].record is not None, entries
        assert (normalize(entries[0].record, flavour=flavour).as_dict()
                == normalize(record, flavour=flavour).as_dict())


def test_yaz_client_has_utf8_accepted(served):
    output = yaz_client_run(HOST, served.port, "marc21", [], charset="UTF-8")
    assert "Accepted character set : UTF-8" in output
    assert "Accepted records in ...: 1" in output
    plain = yaz_client_run(HOST, served.port, "marc21", [])
    assert "Accepted character set" not in plain
    assert "Connection accepted by v3 target" in plain


@pytest.mark.parametrize(("db", "commands", "code", "addinfo"), [
    ("marc21", ["find @attr 1=9999 perl"], 114, "9999"),
    ("nosuchdb", ["find @attr 1=4 perl"], 109, "nosuchdb"),
    ("marc21", ["find @attr 1=4 perl", "show 100+1"], 13, "start 100 of 9"),
    ("marc21", ["find @attr 1=4 @attr 2=6 perl"], 117, "6"),
    ("marc21", ["find @attr 1=4 @attr 4=3 perl"], 118, "3"),
    ("marc21", ["find @attr 1=4 @attr 5=2 perl"], 120, "2"),
    ("marc21", ["find @attrset 1.2.840.10003.3.2 @attr 1=4 perl"], 121, "1.2.840.10003.3.2"),
    ("marc21", ["querytype cql", "find title=perl"], 107, "type-104"),
    ("marc21", ["format grs-1", "find @attr 1=4 perl", "show 1+1"], 239,
     "1.2.840.10003.5.105"),
    # A catalogue that has only its own flavour says which it has, never relabels.
    ("marc21", ["format unimarc", "find @attr 1=4 perl", "show 1+1"], 238,
     "1.2.840.10003.5.10"),
    ("unimarc", ["format usmarc", "find @attr 1=7 9787503717444", "show 1+1"], 238,
     "1.2.840.10003.5.1"),
    ("picky", ["find @attr 1=16 QA76"], 3, "no call-number index"),
    ("picky", ["find @attr 1=4 bad"], 108, "'bad' is not allowed"),
])
def test_yaz_client_sees_bib1_diagnostics(served, db, commands, code, addinfo):
    # After the diagnostic the same association searches on.
    again = ["querytype prefix", "base marc21", "find @attr 1=4 perl"]
    output = yaz_client_run(HOST, served.port, db, commands + again)
    found = re.search(r"\[(\d+)\][^\n]*addinfo '([^\n]*)'", output)
    assert found, output
    assert int(found.group(1)) == code
    assert addinfo in found.group(2)
    if code == 238:  # the syntax the catalogue has, whole: 5.1 is a prefix of 5.10
        assert found.group(2) == addinfo
    assert "Number of hits: 9" in output[found.end():]


def test_yaz_client_keeps_its_result_sets_after_scan_and_sort(served):
    """Scan and Sort are refused with their own responses and Bib-1 1025, not a Close:
    the result set searched before them is still there to present, and Delete works."""
    output = yaz_client_run(HOST, served.port, "marc21", [
        "find @attr 1=4 perl", "scan @attr 1=4 perl", "sort 1=4 i", "show 1+2",
        "delete 1", "delete nosuch", "show 1+1"])
    assert "Options: search present delSet scan sort namedResultSets" in output, output
    assert "Scan returned code 6" in output, output  # scanStatus failure
    assert "Received SortResponse: status=failure" in output, output
    assert output.count("[1025] Service not supported for this database") == 2, output
    assert "v2 addinfo 'scan'" in output and "v2 addinfo 'sort'" in output, output
    after = output[output.index("Received SortResponse"):]
    assert "Records: 2" in after and "nextResultSetPosition = 3" in after, output
    assert "Got deleteResultSetResponse status=0" in after, output
    assert "Got deleteResultSetResponse status=9\nnosuch status=1" in after, output
    assert "[30] Specified result set does not exist -- v2 addinfo '1'" in after, output


# --- our own client -----------------------------------------------------------------------


def _library(port: int, db: str, **options) -> Library:
    options.setdefault("format", SOURCES.get(db, ("marc21",))[0])
    config = ConnectorConfig(protocol="z3950", url=f"z3950://{HOST}:{port}/{db}", timeout=10,
                             max_records=100, indexes=INDEXES, **options)
    return Library("peer", "Peer", "test", connector=config)


def _search(library: Library, cql: str, **kwargs):
    async def run():
        connector = Z3950Connector(library)
        try:
            return await connector.search(parse(cql), **kwargs)
        finally:
            await connector.close()

    return asyncio.run(run())


@pytest.mark.parametrize(("db", "cql"), QUERIES)
def test_our_connector_gets_what_the_catalogue_has(served, catalogues, db, cql):
    hits, records = _direct(catalogues[db], cql)
    page = _search(_library(served.port, db), cql, count=100)
    assert page.hits == hits
    assert not page.problems
    flavour = SOURCES[db][0]
    assert ([r.as_dict() for r in page.records]
            == [normalize(r, flavour=flavour, library="peer").as_dict() for r in records])


@pytest.mark.parametrize("syntax", ["xml", None])
def test_our_connector_pages_in_any_syntax(served, catalogues, syntax):
    _hits, records = _direct(catalogues["marc21"], "中国 or perl", start=3, count=7)
    page = _search(_library(served.port, "marc21", record_syntax=syntax), "中国 or perl",
                   start=3, count=7)
    assert [r.as_dict() for r in page.records] == [
        normalize(r, flavour="marc21", library="peer").as_dict() for r in records]


def test_our_client_negotiates_utf8_and_presents_in_chunks(served, catalogues):
    hits, records = _direct(catalogues["marc21"], "perl")
    expected = [normalize(r, flavour="marc21").as_dict() for r in records]

    async def run():
        client = Z3950Client(HOST, served.port, "marc21", charset="gb18030", timeout=5)
        await client.open()
        try:
            assert client.negotiated_utf8
            assert client.server.startswith("balis-broker Z39.50 server")
            assert await client.search(encode_query(parse("perl"), INDEXES, "utf-8")) == hits
            got: list[pdu.RetrievedRecord] = []
            for start, count in ((1, 1), (2, 3), (5, 100)):
                result = await client.present(start, count)
                got.extend(result.records)
            assert result.next_position == 0 and result.status == 0
            return got
        finally:
            await client.close()

    got = asyncio.run(run())
    assert [normalize(_record(r.data), flavour="marc21").as_dict() for r in got] == expected


@pytest.mark.parametrize(("db", "cql", "code", "detail"), [
    ("nosuchdb", "perl", 109, "nosuchdb"),
    ("picky", "callnumber=QA76", 3, "this catalogue has no call-number index"),
    ("picky", "title=bad", 108, "the word 'bad' is not allowed here"),
])
def test_our_connector_reads_the_diagnostics(served, db, cql, code, detail):
    with pytest.raises(Diagnostic) as caught:
        _search(_library(served.port, db), cql)
    assert caught.value.code == code
    assert caught.value.detail == detail


# --- the protocol, message by message ----------------------------------------------------


class Raw:
    """A bare Z39.50 connection: send any bytes, read whole APDUs."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buffer = bytearray()

    @classmethod
    async def connect(cls, port: int) -> Raw:
        return cls(*await asyncio.open_connection(HOST, port))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def receive(self, timeout: float = 5.0) -> ber.Node | None:
        """The next APDU, or None when the server has closed the connection."""
        framer = ber.Framer(1 << 26)
        async with asyncio.timeout(timeout):
            while True:
                size = framer.feed(self.buffer) if self.buffer else None
                if size is not None:
                    message = bytes(self.buffer[:size])
                    del self.buffer[:size]
                    return ber.decode(message)
                with contextlib.suppress(ConnectionError):
                    chunk = await self.reader.read(65536)
                    if chunk:
                        self.buffer += chunk
                        continue
                return None

    async def ask(self, data: bytes) -> ber.Node:
        """Send a request and read its answer, which must come."""
        await self.send(data)
        answer = await self.receive()
        assert answer is not None, "the server hung up instead of answering"
        return answer

    async def init(self, message_size: int = 1 << 20, record_size: int = 1 << 20) -> None:
        answer = await self.ask(pdu.init_request(message_size=message_size,
                                                 record_size=record_size,
                                                 charset_proposal=True))
        assert pdu.read_init_response(answer).charset_utf8

    async def closed_with(self, reason: str) -> str:
        """Expect Close with this reason, then the end of the connection."""
        node = await self.receive()
        assert node is not None and node.is_(CONTEXT, apdu.CLOSE), node
        text = apdu.read_close(node)
        assert text.startswith(reason), text
        assert await self.receive() is None
        return text

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def _search_request(name: bytes, cql: str | bytes, *, db: bytes = b"marc21", replace=True,
                    small=0, large=1, medium=0, syntax=None) -> bytes:
    query = cql if isinstance(cql, bytes) else encode_query(parse(cql), INDEXES, "utf-8")
    parts = [ber.integer(small, CONTEXT, 13), ber.integer(large, CONTEXT, 14),
             ber.integer(medium, CONTEXT, 15), ber.boolean(replace, CONTEXT, 16),
             ber.octets(name, CONTEXT, 17),
             ber.seq(CONTEXT, 18, [ber.octets(db, CONTEXT, 105)])]
    if syntax:
        parts.append(ber.oid(apdu.SYNTAX[syntax], CONTEXT, 104))
    parts.append(ber.tlv(CONTEXT, 21, query, True))
    return ber.seq(CONTEXT, apdu.SEARCH_REQUEST, parts)


def _present(name: bytes, start: int, count: int, syntax: str = "usmarc") -> bytes:
    return pdu.present_request(result_set=name, start=start, count=count,
                               syntax=apdu.SYNTAX[syntax], element_set=b"F")


def _record(data: bytes | None) -> pymarc.Record:
    """The one record in an ISO 2709 record's bytes."""
    assert data is not None
    record = next(read_bytes(data)).record
    assert record is not None
    return record


def _titles(result: pdu.PresentResult) -> list[str | None]:
    return [normalize(_record(r.data)).title for r in result.records]


def test_named_result_sets_replace_and_piggyback(served, catalogues):
    perl = [normalize(r).title for r in _direct(catalogues["marc21"], "perl")[1]]

    async def run():
        raw = await Raw.connect(served.port)
        await raw.init()
        a = pdu.read_search_response(await raw.ask(_search_request(b"a", "perl")))
        b = pdu.read_search_response(await raw.ask(_search_request(b"b", "summerland")))
        assert (a.hits, b.hits) == (10, 1)
        # Interleaved presents from both sets, in chunks.
        first = pdu.read_present_response(await raw.ask(_present(b"a", 1, 4)), 1)
        other = pdu.read_present_response(await raw.ask(_present(b"b", 1, 1)), 1)
        rest = pdu.read_present_response(await raw.ask(_present(b"a", 5, 50)), 5)
        assert _titles(first) + _titles(rest) == perl and _titles(other) == ["Summerland"]
        assert (first.next_position, rest.next_position, rest.status) == (5, 0, 0)
        # replaceIndicator off on an existing name: 21; the set is kept.
        kept = pdu.read_search_response(await raw.ask(_search_request(b"a", "x", replace=False)))
        assert [d.code for d in kept.diagnostics] == [21]
        # A result set as an operand: its query; a missing one is 30.
        operand = ber.seq(CONTEXT, 0, [ber.octets(b"b", CONTEXT, 31)])
        either = ber.seq(CONTEXT, 1, [_term(b"nonexistentword"), operand,
                                      ber.tlv(CONTEXT, 46, ber.null(CONTEXT, 1), True)])
        both = ber.seq(CONTEXT, 1, [ber.oid(apdu.BIB1_ATTRIBUTES), either])
        union = pdu.read_search_response(await raw.ask(_search_request(b"c", both)))
        assert union.hits == 1
        # A failed search under an existing name (replace on) deletes that set.
        failed = pdu.read_search_response(await raw.ask(_search_request(b"b", "x", db=b"no")))
        assert [d.code for d in failed.diagnostics] == [109]
        gone = pdu.read_present_response(await raw.ask(_present(b"b", 1, 1)), 1)
        assert [d.code for d in gone.diagnostics] == [30] and gone.status == 5
        # Piggyback: a small set comes with its records, in the syntax asked for.
        answer = await raw.ask(_search_request(b"d", "perl", small=10, syntax="xml"))
        small = pdu.read_present_response(
            ber.Node(CONTEXT, apdu.PRESENT_RESPONSE, True, b"", answer.children), 1)
        assert small.returned == 10 and small.records[0].syntax == apdu.SYNTAX["xml"]
        medium = await raw.ask(_search_request(b"e", "perl", small=2, large=20, medium=3))
        returned = medium.context(24)
        assert returned is not None and returned.as_int() == 3
        assert await raw.ask(apdu.close(0)) is not None
        assert await raw.receive() is None

    asyncio.run(run())


def _part(node: ber.Node, *path: int) -> ber.Node:
    """The [n] inside the [m] ... of a response, which must be there."""
    for number in path:
        found = node.context(number)
        assert found is not None, (node, number)
        node = found
    return node


def _diagnostic_codes(node: ber.Node) -> list[int]:
    """The conditions of a SEQUENCE OF DiagRec (defaultFormat)."""
    return [rec.children[1].as_int() for rec in node.children]


def test_refused_services_are_answered_and_sets_live_on(served):
    """Every request the standard gives a response gets that response, a failure with a
    Bib-1 diagnostic, and the association with its result sets goes on."""
    ref = ber.octets(b"r1", CONTEXT, 2)

    async def run():
        raw = await Raw.connect(served.port)
        await raw.init()
        assert pdu.read_search_response(await raw.ask(_search_request(b"a", "perl"))).hits == 10
        # A catalogue that cannot browse (tests/connectors/test_z3950_scan.py: one that can).
        databases = ber.seq(CONTEXT, 3, [ber.octets(b"marc21", CONTEXT, 105)])
        scan = await raw.ask(ber.seq(CONTEXT, 35, [ref, databases,
                                                   ber.integer(20, CONTEXT, 6)]))
        assert scan.is_(CONTEXT, 36) and _part(scan, 2).as_bytes() == b"r1"
        assert (_part(scan, 4).as_int(), _part(scan, 5).as_int()) == (6, 0)
        assert _diagnostic_codes(_part(scan, 7, 2)) == [1025]
        names = ber.seq(CONTEXT, 3, [ber.octets(b"a")])
        for output, status in ((b"a", 3), (b"sorted", 4)):  # unchanged / none
            sort = await raw.ask(ber.seq(CONTEXT, 43, [ref, names,
                                                       ber.octets(output, CONTEXT, 4)]))
            assert sort.is_(CONTEXT, 44) and _part(sort, 2).as_bytes() == b"r1"
            assert (_part(sort, 3).as_int(), _part(sort, 4).as_int()) == (2, status)
            assert _diagnostic_codes(_part(sort, 5)) == [1025]
        es = await raw.ask(ber.seq(CONTEXT, 46, [ref, ber.integer(1, CONTEXT, 3)]))
        assert es.is_(CONTEXT, 47) and _part(es, 3).as_int() == 3
        assert _diagnostic_codes(_part(es, 4)) == [221]
        dedup = await raw.ask(ber.seq(CONTEXT, 49, [ref]))
        assert dedup.is_(CONTEXT, 50) and _part(dedup, 3).as_int() == 1
        assert _diagnostic_codes(_part(dedup, 5)) == [1025]
        after = pdu.read_present_response(await raw.ask(_present(b"a", 1, 10)), 1)
        assert after.returned == 10 and after.status == 0
        # Delete all: every set gone, the association still there.
        gone = await raw.ask(ber.seq(CONTEXT, 26, [ref, ber.integer(1, CONTEXT, 32)]))
        assert gone.is_(CONTEXT, 27) and _part(gone, 0).as_int() == 0
        missing = pdu.read_present_response(await raw.ask(_present(b"a", 1, 1)), 1)
        assert [d.code for d in missing.diagnostics] == [30]
        assert pdu.read_search_response(await raw.ask(_search_request(b"a", "perl"))).hits == 10
        await raw.close()

    asyncio.run(run())


def test_message_sizes_are_respected(served):
    async def run():
        raw = await Raw.connect(served.port)
        await raw.init(message_size=3000, record_size=3000)
        await raw.ask(_search_request(b"a", "perl"))
        result = pdu.read_present_response(await raw.ask(_present(b"a", 1, 10)), 1)
        assert 1 <= result.returned < 10 and result.status == 2  # partial-2
        assert result.next_position == 1 + result.returned
        await raw.close()
        raw = await Raw.connect(served.port)
        await raw.init(message_size=100, record_size=100)
        await raw.ask(_search_request(b"a", "perl"))
        result = pdu.read_present_response(await raw.ask(_present(b"a", 1, 1)), 1)
        diagnostic = result.records[0].diagnostic
        assert diagnostic is not None and diagnostic.code == 17
        await raw.close()

    asyncio.run(run())


def test_a_term_that_is_not_utf8_after_negotiation(served):
    query = ber.seq(CONTEXT, 1, [ber.oid(apdu.BIB1_ATTRIBUTES), _term(b"\xff\xfe")])

    async def run():
        raw = await Raw.connect(served.port)
        await raw.init()
        answer = pdu.read_search_response(await raw.ask(_search_request(b"a", query)))
        assert [(d.code, d.addinfo) for d in answer.diagnostics] == [
            (125, b"the term is not valid utf-8")]
        await raw.close()

    asyncio.run(run())


# --- hostile clients: each loses its own association, nobody else's ------------------------


async def _still_serves(port: int) -> None:
    """A well-behaved client searches and fetches normally."""
    client = Z3950Client(HOST, port, "marc21", timeout=5)
    await client.open()
    try:
        assert await client.search(encode_query(parse("title=perl"), INDEXES, "utf-8")) == 9
        assert len((await client.present(1, 9)).records) == 9
    finally:
        await client.close()


def _serve(catalogues, check, **options) -> None:
    """Run ``check(server)`` against a server of its own; then it must still serve."""
    async def run():
        async with Z3950Server(catalogues, **options) as server:
            await check(server)
            await _still_serves(server.port)
            await asyncio.sleep(0.05)
            assert server.connections == 0  # every association ended

    asyncio.run(run())


@pytest.fixture
def no_errors(caplog):
    """Nothing a client sends may be logged as an error of ours (a traceback)."""
    caplog.set_level(logging.INFO, logger="connectors.z3950")
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors[0].getMessage()


INIT = pdu.init_request(message_size=1 << 20, record_size=1 << 20, charset_proposal=False)


@pytest.mark.parametrize(("before", "data", "expected"), [
    ([], b"GET / HTTP/1.0\r\n\r\n", "protocol error: not a Z39.50 request"),
    ([], b"\xb4\x03\x04\x05\x06", "protocol error: truncated BER"),
    ([], b"\xb4\x84\x7f\xff\xff\xff", "protocol error: message declares"),
    ([], b"\xb4\x85\x01\x00\x00\x00\x00", "protocol error: BER length of 5 bytes"),
    ([], b"\xb4\x80" + b"\xa0\x80" * 100, "protocol error: BER nested too deeply"),
    ([], b"\xb4\x01\x04", "protocol error: truncated BER: missing length"),
    ([], _search_request(b"a", "perl"),
     "protocol error: the first request must be Init, not searchRequest"),
    ([INIT], INIT, "protocol error: Init again"),
    ([INIT], ber.seq(CONTEXT, 33, [ber.integer(1)]),
     "protocol error: resourceReportRequest is not supported"),
    ([INIT], ber.seq(CONTEXT, 25, [ber.integer(1)]),
     "protocol error: presentResponse is not supported"),
    ([INIT], ber.seq(CONTEXT, 99, []), "protocol error: [99] is not supported"),
    ([INIT], b"\x94\x00", "protocol error: not a Z39.50 request (first byte 0x94)"),
    ([INIT], ber.seq(CONTEXT, apdu.PRESENT_REQUEST, [ber.integer(1, CONTEXT, 30)]),
     "protocol error: Present request without a result set name"),
    ([INIT], ber.seq(CONTEXT, apdu.PRESENT_REQUEST, [ber.octets(b"a", CONTEXT, 31),
                                                     ber.integer(1, CONTEXT, 30)]),
     "protocol error: [24] lacks its mandatory field [29]"),
    ([INIT], ber.seq(CONTEXT, apdu.SEARCH_REQUEST, [ber.octets(b"x", CONTEXT, 17)]),
     "protocol error: Search request without"),
    ([INIT], ber.seq(CONTEXT, apdu.PRESENT_REQUEST, [ber.octets(b"a", CONTEXT, 31),
                                                    ber.octets(b"", CONTEXT, 30)]),
     "protocol error"),
    ([INIT], ber.seq(CONTEXT, apdu.PRESENT_REQUEST, [
        ber.octets(b"a", CONTEXT, 31), ber.tlv(CONTEXT, 30, b"\x01" * 3000),
        ber.integer(1, CONTEXT, 29)]), "protocol error: INTEGER [30] of 3000 bytes"),
    ([INIT], ber.seq(CONTEXT, apdu.CLOSE, [ber.tlv(CONTEXT, 211, b"\x7f" * 3000)]),
     "finished"),
    ([INIT], b"\xb6\x80\x8d\x01", None),  # cut short: the client hangs up
])
def test_bad_input_closes_only_that_association(catalogues, no_errors, before, data,
                                                expected):
    async def check(server):
        raw = await Raw.connect(server.port)
        for message in before:
            assert (await raw.ask(message)).is_(CONTEXT, apdu.INIT_RESPONSE)
        await raw.send(data)
        if expected is None:
            raw.writer.write_eof()
            assert await raw.receive() is None
        else:
            await raw.closed_with(expected)
        await raw.close()

    _serve(catalogues, check)


def test_a_huge_request_is_refused(catalogues, no_errors):
    async def check(server):
        raw = await Raw.connect(server.port)
        await raw.init()
        # A search whose term alone is over the cap: refused before it is all sent.
        query = ber.seq(CONTEXT, 1, [ber.oid(apdu.BIB1_ATTRIBUTES), _term(b"x" * 100_000)])
        with contextlib.suppress(ConnectionError):
            await raw.send(_search_request(b"a", query))
        await raw.closed_with("protocol error: message declares")
        await raw.close()
        # The same with an indefinite length that only grows.
        raw = await Raw.connect(server.port)
        await raw.init()
        with contextlib.suppress(ConnectionError):
            await raw.send(b"\xb6\x80" + b"\x04\x82\x03\xe8" + b"y" * 1000 + b"\x04\x00" * 50)
            for _ in range(20):
                await raw.send(b"\x04\x82\x03\xe8" + b"y" * 1000)
        await raw.closed_with("protocol error: message")
        await raw.close()

    _serve(catalogues, check, max_message=16384)


def test_random_damage_never_hurts_the_server(catalogues, no_errors):
    valid = [INIT, _search_request(b"a", 'title="programming perl" and year>=2000'),
             _present(b"a", 1, 3)]
    rng = random.Random(20260101)

    async def check(server):
        for _ in range(300):
            messages = list(valid)
            i = rng.randrange(len(messages))
            damaged = bytearray(messages[i])
            for _ in range(rng.randint(1, 4)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            messages[i] = bytes(damaged)
            raw = await Raw.connect(server.port)
            for message in messages:
                with contextlib.suppress(ConnectionError):
                    await raw.send(message)
                answer = await raw.receive()
                if answer is None or answer.is_(CONTEXT, apdu.CLOSE):
                    break
            await raw.close()

    _serve(catalogues, check, max_message=4096, idle_timeout=0.2)


def test_idle_and_slow_clients_are_closed(catalogues, no_errors):
    async def check(server):
        idle = await Raw.connect(server.port)
        await idle.init()
        silent = await Raw.connect(server.port)  # never even says Init
        slow = await Raw.connect(server.port)
        await slow.init()
        started = asyncio.get_running_loop().time()
        closing = asyncio.create_task(slow.closed_with("lack of activity"))
        request = _search_request(b"a", "perl")
        for byte in request:  # a byte every 0.05 s: the request takes too long
            if closing.done():
                break
            slow.writer.write(bytes([byte]))
            await asyncio.sleep(0.05)
        await _still_serves(server.port)  # meanwhile, others are served
        texts = [await closing] + [await raw.closed_with("lack of activity")
                                   for raw in (idle, silent)]
        assert all("no complete request for 0.4 seconds" in text for text in texts)
        assert asyncio.get_running_loop().time() - started < 3
        for raw in (idle, silent, slow):
            await raw.close()

    _serve(catalogues, check, idle_timeout=0.4)


def test_a_client_that_does_not_read_is_dropped(catalogues, no_errors):
    async def check(server):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (HOST, server.port))
        raw = Raw(*await asyncio.open_connection(sock=sock))
        await raw.init()
        await raw.ask(_search_request(b"a", "perl or 出版社"))
        started = asyncio.get_running_loop().time()
        for _ in range(500):  # megabytes of answers that are never read
            raw.writer.write(_present(b"a", 1, 30))
        await _still_serves(server.port)
        async with asyncio.timeout(10):
            while server.connections:
                await asyncio.sleep(0.05)
        assert asyncio.get_running_loop().time() - started < 2.5  # no lingering for it
        raw.writer.transport.abort()

    _serve(catalogues, check, idle_timeout=0.5)


def test_too_many_connections_are_refused_politely(catalogues, no_errors):
    async def check(server):
        first, second = await Raw.connect(server.port), await Raw.connect(server.port)
        await first.init()
        await second.init()
        third = await Raw.connect(server.port)
        await third.closed_with("resources: too many connections")
        await third.close()
        with pytest.raises(Unreachable, match="too many connections"):
            await _still_serves(server.port)
        await first.ask(apdu.close(0))
        await first.close()
        await asyncio.sleep(0.05)
        await _still_serves(server.port)
        await second.close()

    _serve(catalogues, check, max_connections=2)


def test_close_says_shutdown_to_open_associations(catalogues, no_errors):
    async def run():
        server = Z3950Server(catalogues)
        await server.start()
        raw = await Raw.connect(server.port)
        await raw.init()
        await server.close()
        await raw.closed_with("shutdown: server shutdown")
        await raw.close()
        with pytest.raises(OSError):
            await asyncio.open_connection(HOST, server.port)

    asyncio.run(run())


# --- a member that speaks GB18030, and the real LocalCatalogue ----------------------------


def _gb_library(port: int, db: str, fmt: MarcFormat) -> Library:
    config = ConnectorConfig(protocol="z3950", url=f"z3950://{HOST}:{port}/{db}", format=fmt,
                             encoding="gb18030", timeout=10, max_records=100)
    return Library("peer", "Peer", "test", connector=config)


def test_a_gb18030_catalogue_is_served_in_gb18030(catalogues, no_errors):
    gbk = ListCatalogue("gbk", "unimarc", catalogues["unimarc"].records, encoding="gb18030")
    cql = "title=中国发展报告 and year>=1995"
    hits, records = _direct(gbk, cql)
    assert hits == 6

    async def run():
        async with Z3950Server({"gbk": gbk}) as server:
            client = Z3950Client(HOST, server.port, "gbk", timeout=5)
            await client.open()
            assert not client.negotiated_utf8  # a GB18030 target declines UTF-8
            await client.close()
            connector = Z3950Connector(_gb_library(server.port, "gbk", "unimarc"))
            page = await connector.search(parse(cql), count=10)
            await connector.close()
            output = await asyncio.to_thread(
                yaz_client_run, HOST, server.port, "gbk",
                ["format unimarc", "find @attr 1=7 9787503720208", "show 1+1"],
                charset="UTF-8")
            return page, output

    page, output = asyncio.run(run())
    assert page.hits == hits and not page.problems
    assert [r.as_dict() for r in page.records] == [
        normalize(r, flavour="unimarc", library="peer").as_dict() for r in records]
    assert "Accepted character set" not in output and "Number of hits: 1" in output
    assert "95中国发展报告" not in output  # yaz-client shows GB18030 as it is, not UTF-8


@pytest.fixture(scope="module")
def local_catalogues(marc_data):
    local = pytest.importorskip("broker.catalogues.marc_file")
    return {
        "local21": local.LocalCatalogue(marc_data / "pymarc/test.dat", name="local21"),
        "localcn": local.LocalCatalogue(marc_data / "derived/bnu_cnmarc.utf8.iso",
                                        name="localcn"),
        "localgb": local.LocalCatalogue(marc_data / "derived/bnu_cnmarc.gbk.iso",
                                        name="localgb", encoding="gb18030"),
    }


LOCAL_QUERIES = [
    ("local21", "title=perl"), ("local21", 'title="programming perl"'),
    ("local21", "title=prog*"), ("local21", "perl and year>=2000"),
    ("local21", "publisher=\"o'reilly\" not title=cgi"), ("local21", "isbn=0596000278"),
    ("local21", 'callnumber="QA76.73.P22"'), ("localcn", "title=中国发展报告"),
    ("localcn", "author=国家统计局 and year<1998"), ("localgb", "title=中国发展报告"),
    ("localgb", "subject=经济发展 or year=1999"),
]


def test_local_catalogues_are_served_as_they_answer(local_catalogues, no_errors):
    async def run():
        found = []
        async with Z3950Server(local_catalogues) as server:
            for db, cql in LOCAL_QUERIES:
                catalogue = local_catalogues[db]
                results = await catalogue.search(parse(cql))
                expected = await results.fetch(1, 100)
                if db == "localgb":
                    library = _gb_library(server.port, db, "unimarc")
                else:
                    library = _library(server.port, db, format=catalogue.flavour)
                connector = Z3950Connector(library)
                page = await connector.search(parse(cql), count=100)
                await connector.close()
                pqf = to_pqf(parse(cql), INDEXES)
                hits = None
                if db != "localgb":  # yaz-client's UTF-8 terms would be GB18030 there
                    hits = await asyncio.to_thread(yaz_client_hits, HOST, server.port, db,
                                                   pqf, "UTF-8")
                found.append((db, cql, results.hits, expected, page, hits))
        return found

    for db, cql, hits, expected, page, yaz_hits in asyncio.run(run()):
        assert hits > 0, cql
        assert page.hits == hits and yaz_hits in (None, hits), cql
        flavour = local_catalogues[db].flavour
        assert [r.as_dict() for r in page.records] == [
            normalize(r, flavour=flavour, library="peer").as_dict() for r in expected], cql


# --- OPAC and SUTRS -----------------------------------------------------------------------

UNION_HOLDINGS = (
    Holding("bupt", "中文书库", "I242.4/3", "0123456", "available"),
    Holding("pku", "总馆", "I242.4/3a", "P998877", "on_loan", "2027-01-15"),
    Holding("ruc", "社科阅览室", "I242.4/3", "R0001", "not_for_loan"),
)
UNION_RECORD = Record(
    id="c1", format="marc21", title="红楼梦", subtitle="程乙本", responsibility="曹雪芹著",
    authors=("曹雪芹",), publisher="人民文学出版社", place="北京", year=2008, extent="2册",
    language="chi", material_type="book", isbns=("9787020065875",),
    subjects=("章回小说 -- 中国 -- 清代",))
UNION_QUERY = "@attr 1=7 9787020065875"


def _demo_cnmarc_records() -> list[pymarc.Record]:
    """BNU's records in the demo consortium (CNMARC, 905/906 holdings) with two copies."""
    from broker.demo import catalogues as demo
    from broker.demo import members

    consortium = members.load_members()
    plans = [p for p in members.plan([lib.id for lib in consortium.libraries])
             if p.id == "bnu"]
    records = demo.generate(plans, consortium).records["bnu"]
    return [r for r in records if len(r.get_fields("906")) > 1][:3]


@pytest.fixture(scope="module")
def opac_served():
    """A union-shaped catalogue (records as the union front door writes them: every
    library's holdings in 852, with status and due date) and a demo CNMARC member."""
    union = ListCatalogue("union", "marc21", [
        write_record(UNION_RECORD, "marc21", record_id="c1", holdings=UNION_HOLDINGS)])
    member = LocalCatalogue(_demo_cnmarc_records(), name="bnu", flavour="unimarc")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = Z3950Server({"union": union, "bnu": member})
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    yield server, member
    asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def _yaz_text(output: str) -> str:
    """yaz-client's output with its \\XHH escapes of non-ASCII bytes read back as UTF-8."""
    def bytes_of(match: re.Match[str]) -> str:
        data = bytes(int(h, 16) for h in re.findall(r"\\X([0-9A-F]{2})", match.group(0)))
        return data.decode("utf-8", "replace")

    return re.sub(r"(?:\\X[0-9A-F]{2})+", bytes_of, output)


def _zoomsh(port: int, database: str, syntax: str, query: str = UNION_QUERY) -> str:
    argv = ["zoomsh", f"set preferredRecordSyntax {syntax}",
            f"connect tcp:{HOST}:{port}/{database}", f"search {query}", "show 0 9", "quit"]
    done = subprocess.run(argv, capture_output=True, timeout=30, check=False)
    return (done.stdout + done.stderr).decode("utf-8", "replace")


def _yaz_holdings(output: str) -> list[dict[str, str]]:
    """yaz-client's print of an OPAC record's holdings: one dict per 'Data holdings'."""
    found = []
    for block in output.split("Data holdings ")[1:]:
        block = block.split("nextResultSetPosition")[0].split("\n[")[0]
        found.append(dict(re.findall(r"^ ?(\w+): ([^\n]*)$", block, re.M)))
    return found


def test_yaz_client_gets_opac_records_of_the_union(opac_served):
    server, _member = opac_served
    output = yaz_client_run(HOST, server.port, "union",
                            ["format opac", f"find {UNION_QUERY}", "show 1+1"], charset="UTF-8")
    assert "Record type: OPAC" in output and "Record type: USmarc" in output, output
    assert "245 10 $a 红楼梦 $b 程乙本 $c 曹雪芹著" in output, output
    holdings = _yaz_holdings(output)
    assert [(h["nucCode"], h["localLocation"], h["callNumber"], h["itemId"])
            for h in holdings] == [
        ("bupt", "bupt 中文书库", "I242.4/3", "0123456"),
        ("pku", "pku 总馆", "I242.4/3a", "P998877"),
        ("ruc", "ruc 社科阅览室", "I242.4/3", "R0001")]
    assert [h["availableNow"] != "0" for h in holdings] == [True, False, True]
    assert holdings[1]["availabiltyDate"] == "2027-01-15"  # (YAZ's spelling)
    assert "availabiltyDate" not in holdings[0] and "availabiltyDate" not in holdings[2]
    assert holdings[1]["publicNote"] == "on loan, due 2027-01-15"
    assert holdings[2]["publicNote"] == "not for loan"


def test_yaz_client_gets_opac_records_of_a_demo_cnmarc_member(opac_served):
    server, member = opac_served
    output = yaz_client_run(HOST, server.port, "bnu",
                            ["format opac", f"find {DEFAULT_ALL_RECORDS['z3950']}",
                             f"show 1+{len(member)}"])
    assert output.count("Record type: OPAC") == len(member) >= 1, output
    assert output.count("Record type: Unimarc") == len(member), output
    holdings = _yaz_holdings(output)
    copies = [(f["a"], f["b"]) for r in member.records for f in r.get_fields("906")]
    # The demo's CNMARC says each copy's status in 906 $z (在架, 借出 with 应还日期, 不外借):
    # it travels as a circulation record with the barcode as itemId.
    served = [normalize(r, flavour="unimarc").holdings for r in member.records]
    statuses = [h.status for held in served for h in held]
    assert None not in statuses
    notes = {"available": "available", "on_loan": "on loan", "not_for_loan": "not for loan"}
    assert [(h["nucCode"], h["itemId"], h["publicNote"].split(",")[0]) for h in holdings] == [
        (library, barcode, notes[status])
        for (library, barcode), status in zip(copies, statuses, strict=True)]
    assert all(h["localLocation"].startswith("BNU ") and h["callNumber"]
               and (h["availableNow"] == "0") == (status == "on_loan")
               for h, status in zip(holdings, statuses, strict=True)), holdings


def test_zoomsh_renders_opac_holdings_and_sutrs(opac_served):
    server, _member = opac_served
    opac = _zoomsh(server.port, "union", "opac")
    assert "syntax=OPAC" in opac, opac
    xml = opac[opac.index("<holdings>"):opac.index("</holdings>") + len("</holdings>")]
    holdings = ET.fromstring(xml).findall("holding")
    assert [h.findtext("nucCode") for h in holdings] == ["bupt", "pku", "ruc"]
    loans = [h.find("circulations/circulation") for h in holdings]
    assert [c.find("availableNow").get("value") for c in loans] == ["1", "0", "1"]
    assert loans[1].findtext("availabilityDate") == "2027-01-15"
    assert [c.findtext("itemId") for c in loans] == ["0123456", "P998877", "R0001"]

    sutrs = _zoomsh(server.port, "union", "sutrs")
    assert "syntax=SUTRS" in sutrs, sutrs
    for line in ("Title: 红楼梦 : 程乙本 / 曹雪芹著", "Author: 曹雪芹",
                 "Published: 北京 : 人民文学出版社, 2008", "Extent: 2册",
                 "ISBN: 9787020065875", "Subject: 章回小说 -- 中国 -- 清代",
                 "Holding: bupt 中文书库 I242.4/3 [0123456]: available",
                 "Holding: pku 总馆 I242.4/3a [P998877]: on loan, due 2027-01-15",
                 "Holding: ruc 社科阅览室 I242.4/3 [R0001]: not for loan"):
        assert f"\n{line}\n" in sutrs, sutrs


def test_yaz_client_gets_sutrs_of_a_demo_cnmarc_member(opac_served):
    server, member = opac_served
    output = _yaz_text(yaz_client_run(HOST, server.port, "bnu", [
        "format sutrs", f"find {DEFAULT_ALL_RECORDS['z3950']}", "show 1+1"]))
    assert "Record type: SUTRS" in output, output
    first = normalize(member.records[0], flavour="unimarc")
    assert f"Title: {first.title}" in output, output
    barcodes = [f["b"] for f in member.records[0].get_fields("906")]
    # Each copy with the status its 906 $z gives (the demo's CNMARC reports every one).
    held = re.findall(r"^Holding: BNU [^\n]*\[(\w+)\]: (?:available|not for loan|"
                      r"on loan, due \d{4}-\d\d-\d\d)$", output, re.M)
    assert held == barcodes, output


def test_sutrs_lines_fit_a_terminal():
    long = replace(UNION_RECORD, title="中华人民共和国" * 12,
                   subtitle="a rather long subtitle " * 5, subjects=("x" * 100,))
    text = sutrs_text(long, UNION_HOLDINGS)
    lines = text.splitlines()
    width = [sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)
             for line in lines]
    assert max(width) <= 78, lines
    assert lines[1].startswith("    ") and "".join(
        line.strip() for line in lines[:4]).startswith("Title: " + "中华人民共和国" * 12)


def test_union_852s_read_back_whole():
    written = write_record(UNION_RECORD, "unimarc", holdings=UNION_HOLDINGS)
    assert holdings_of(written) == UNION_HOLDINGS
    other = pymarc.Record()
    other.add_field(pymarc.Field("852", pymarc.Indicators(" ", " "), [
        pymarc.Subfield("a", "X"), pymarc.Subfield("z", "Ask at the desk")]))
    assert holdings_of(other) == (Holding("X"),)


def test_our_connector_reads_opac_records(opac_served):
    server, member = opac_served
    hits, records = _direct(member, "year>0")
    page = _search(_library(server.port, "bnu", format="unimarc", record_syntax="opac"),
                   "year>0", count=10)
    assert not page.problems, page.problems
    assert page.hits == hits >= 1 and [r.as_dict() for r in page.records] == [
        normalize(r, flavour="unimarc", library="peer").as_dict() for r in records]
    assert page.records[0].holdings
