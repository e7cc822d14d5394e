"""Z39.50 Sort on the union's merged set (connectors/z3950/server_sort.py,
broker/catalogues/union_sort.py), driven by YAZ's yaz-client and zoomsh.

The union front door runs over real members (tests/peers' Zebra: ``m`` by Z39.50 and ``ms``
by SRU hold the same MARC21 books, ``za``/``zb`` the same CNMARC ones), so every sorted
record is a merged one. The expected order is worked out here from the records the client
was sent before the sort, with plain Python and pypinyin, not with the code under test.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from peers.catalogues import LoopThread
from peers.consortia import consortium, m, ms, za, zb
from peers.servers import yaz_client_run
from pypinyin import lazy_pinyin

from broker.catalogues.union import UnionCatalogue
from broker.kernel.pqf import parse_pqf
from broker.search.fanout import Broker
from connectors.z3950 import apdu, ber, pdu
from connectors.z3950.ber import CONTEXT, UNIVERSAL
from connectors.z3950.diagnostics import Bib1
from connectors.z3950.rpn import encode_pqf
from connectors.z3950.server import Z3950Server
from connectors.z3950.server_sort import read_sort_request, sort_keys
from marc import normalize, read_bytes

HOST = "127.0.0.1"
PERL = "@attr 1=4 perl"  # 9 books in m and ms: 9 merged records
CHINA = "@attr 1=4 中国发展报告"  # 9 CNMARC books in za and zb

needs_yaz = pytest.mark.skipif(shutil.which("yaz-client") is None,
                               reason="yaz-client not installed")


@pytest.fixture(scope="module")
def served(zebra):
    """Our Z39.50 server: ``union`` over m and ms (MARC21), ``cn`` over za and zb."""
    thread = LoopThread()

    async def start():
        broker = Broker(consortium(m(zebra), ms(zebra), za(zebra), zb(zebra)))
        server = Z3950Server({"union": UnionCatalogue(broker, ["m", "ms"]),
                              "cn": UnionCatalogue(broker, ["za", "zb"], name="cn",
                                                   flavour="unimarc")})
        await server.start()
        return broker, server

    broker, server = thread.call(start)
    yield server
    thread.run(server.close())
    thread.run(broker.close())
    thread.close()


def _session(port: int, database: str, commands: list[str], flavour: str = "marc21"
             ) -> tuple[str, list]:
    """yaz-client's output and the normalized records it received, in order."""
    with tempfile.TemporaryDirectory(prefix="balis-sort-") as tmp:
        marc_file = Path(tmp) / "records"
        output = yaz_client_run(HOST, port, database, ["charset UTF-8", *commands],
                                marc_file=marc_file, timeout=60)
        data = marc_file.read_bytes() if marc_file.exists() else b""
    records = [normalize(entry.record, flavour=flavour)
               for entry in read_bytes(data, flavour=flavour, encoding="utf-8")]
    return output, records


def _fold(text: str | None) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", (text or "").casefold()).split())


def _title(record) -> str:
    return _fold(record.sort_title or record.title)


def _pinyin(text: str) -> list[str]:
    return lazy_pinyin(_fold(text))


def _author(record) -> str:
    return _fold(record.authors[0]) if record.authors else ""


@needs_yaz
def test_yaz_client_sorts_by_year_descending_then_presents_in_order(served):
    output, records = _session(served.port, "union", [
        "find @attr 1=1016 中国", "show 1+13", "sort 1=31 >", "show 1+13"])
    assert "Received SortResponse: status=success" in output, output
    before, after = records[:13], records[13:]
    assert len(before) == len(after) == 13, output
    # The same merged records, now newest first (those without a year last).
    assert sorted(r.id for r in before) == sorted(r.id for r in after)
    years = [r.year for r in after]
    dated = [y for y in years if y is not None]
    assert dated == sorted(dated, reverse=True) and len(set(dated)) > 5, years
    assert years[:len(dated)] == dated
    assert [r.year for r in before] != years  # relevance order was not this


@needs_yaz
def test_yaz_client_sorts_by_title_and_by_author_then_year(served):
    output, records = _session(served.port, "union", [
        f"find {PERL}", "sort 1=4 <", "show 1+9", "sort 1=1003 < 1=31 >", "show 1+9",
        "sort title >", "show 1+9"])
    assert output.count("Received SortResponse: status=success") == 3, output
    by_title, by_author, by_title_down = records[:9], records[9:18], records[18:]
    titles = [_title(r) for r in by_title]
    assert titles == sorted(titles) and titles[0] == "cgi programming with perl", titles
    assert [(_author(r), -(r.year or 0)) for r in by_author] == sorted(
        (_author(r), -(r.year or 0)) for r in by_author)
    assert _author(by_author[0]).startswith("blank edelman"), by_author
    # A sortfield (yaz-client's "Title >": no '=') by name, descending.
    down = [_title(r) for r in by_title_down]
    assert down == sorted(titles, reverse=True), down


@needs_yaz
def test_chinese_titles_sort_in_pinyin_order(served):
    output, records = _session(served.port, "cn", [
        "format unimarc", "find @attr 1=1016 中国", "sort 1=4 <", "show 1+10"],
        flavour="unimarc")
    assert "Received SortResponse: status=success" in output, output
    assert len(records) == 10
    keys = [_pinyin(r.sort_title or r.title or "") for r in records]
    assert all(r.title for r in records)
    assert keys == sorted(keys), [r.title for r in records]


@needs_yaz
def test_a_key_we_cannot_sort_by_is_a_diagnostic_and_the_set_lives_on(served):
    output, records = _session(served.port, "union", [
        f"find {PERL}", "show 1+1", "sort 1=21 <", "show 2+1", "sort nosuchfield <",
        "show 3+1"])
    assert output.count("Received SortResponse: status=failure") == 2, output
    assert output.count("[207] Cannot sort according to sequence") == 2, output
    assert "addinfo 'use attribute 21" in output and "addinfo 'nosuchfield'" in output
    assert len(records) == 3 and "Connection closed" not in output, output


@pytest.mark.skipif(shutil.which("zoomsh") is None, reason="zoomsh not installed")
@pytest.mark.parametrize(("spec", "descending"), [("1=4 <", False), ("1=4 >", True)])
def test_zoomsh_sorts_the_union_set(served, spec, descending):
    """ZOOM's sortby (strategy z3950) sends a Sort after the search; records come sorted."""
    done = subprocess.run(
        ["zoomsh", f"connect tcp:{HOST}:{served.port}/union", f"sortby z3950 {spec}",
         f"search {PERL}", "show 0 9", "quit"], capture_output=True, text=True, timeout=60,
        check=False)
    titles = [_fold(line.split("$a", 1)[1].split("/")[0].split(":")[0])
              for line in done.stdout.splitlines() if line.startswith("245 ")]
    assert len(titles) == 9, done.stdout + done.stderr
    assert titles == sorted(titles, reverse=descending), titles


@pytest.mark.skipif(shutil.which("zoomsh") is None, reason="zoomsh not installed")
def test_zoomsh_sorts_by_two_keys(served):
    done = subprocess.run(
        ["zoomsh", f"connect tcp:{HOST}:{served.port}/union", "sortby z3950 1=31 > 1=4 <",
         f"search {PERL}", "show 0 9", "quit"], capture_output=True, text=True, timeout=60,
        check=False)
    years = re.findall(r"^008 \d{6}s(\d{4})", done.stdout, re.M)
    titles = [_fold(line.split("$a", 1)[1].split("/")[0].split(":")[0])
              for line in done.stdout.splitlines() if line.startswith("245 ")]
    pairs = list(zip((-int(y) for y in years), titles, strict=True))
    assert len(pairs) == 9 and pairs == sorted(pairs), pairs


# --- the Sort request itself, byte by byte --------------------------------------------------


def _attrs_key(use: int) -> bytes:
    """generic [1] { sortAttributes [2] { id Bib-1, list [44] { use = ``use`` } } }"""
    element = ber.seq(UNIVERSAL, ber.SEQUENCE, [ber.integer(1, CONTEXT, 120),
                                                ber.integer(use, CONTEXT, 121)])
    attributes = ber.seq(CONTEXT, 2, [ber.oid((1, 2, 840, 10003, 3, 1)),
                                      ber.seq(CONTEXT, 44, [element])])
    return ber.seq(CONTEXT, 1, [attributes])


def _spec(element: bytes, relation: int = 0, case: int = 1,
          missing: bytes | None = None) -> bytes:
    parts = [element, ber.integer(relation, CONTEXT, 1), ber.integer(case, CONTEXT, 2)]
    if missing is not None:
        parts.append(ber.seq(CONTEXT, 3, [missing]))
    return ber.seq(UNIVERSAL, ber.SEQUENCE, parts)


def _sort_request(inputs: list[bytes], output: bytes, specs: list[bytes]) -> bytes:
    return ber.seq(CONTEXT, 43, [
        ber.octets(b"ref", CONTEXT, 2),
        ber.seq(CONTEXT, 3, [ber.octets(name) for name in inputs]),
        ber.octets(output, CONTEXT, 4), ber.seq(CONTEXT, 5, specs)])


def _keys(*specs: bytes):
    return sort_keys(read_sort_request(ber.decode(_sort_request([b"a"], b"a", list(specs)))))


def test_sort_key_specs_are_read():
    field = ber.seq(CONTEXT, 1, [ber.octets(b"Date", CONTEXT, 0)])
    keys = _keys(_spec(_attrs_key(4)), _spec(_attrs_key(1003), relation=1, case=0),
                 _spec(field, missing=ber.null(CONTEXT, 1)))
    assert [(k.index, k.ascending, k.case_sensitive, k.missing) for k in keys] == [
        ("title", True, False, "last"), ("author", False, True, "last"),
        ("year", True, False, "abort")]


@pytest.mark.parametrize(("spec", "code"), [
    (_spec(_attrs_key(21)), 207),  # subject: not a sort key here
    (_spec(_attrs_key(4), relation=3), 214),  # ascending by frequency
    (_spec(_attrs_key(4), case=7), 215),
    (_spec(_attrs_key(4), missing=ber.octets(b"zzz", CONTEXT, 3)), 213),
    (_spec(ber.seq(CONTEXT, 2, [ber.seq(UNIVERSAL, ber.SEQUENCE, [])])), 210),
    (_spec(ber.seq(CONTEXT, 1, [ber.octets(b"colour", CONTEXT, 0)])), 207),
])
def test_a_sort_key_we_cannot_do_is_its_bib1_condition(spec, code):
    with pytest.raises(Bib1) as caught:
        _keys(spec)
    assert caught.value.code == code


def test_too_many_keys_and_none_are_refused():
    with pytest.raises(Bib1) as caught:
        _keys(*[_spec(_attrs_key(4))] * 6)
    assert caught.value.code == 211
    with pytest.raises(Bib1) as caught:
        _keys()
    assert caught.value.code == 207


async def _ask(reader, writer, data: bytes) -> ber.Node:
    writer.write(data)
    await writer.drain()
    framer, buffer = ber.Framer(1 << 26), bytearray()
    while True:
        size = framer.feed(buffer) if buffer else None
        if size is not None:
            return ber.decode(bytes(buffer[:size]))
        chunk = await asyncio.wait_for(reader.read(65536), 30)
        assert chunk, "the server hung up instead of answering"
        buffer += chunk


def _search(name: bytes, pqf: str) -> bytes:
    return pdu.search_request(databases=[b"union"], query=encode_pqf(parse_pqf(pqf), "utf-8"),
                              result_set=name)


def _titles(node: ber.Node) -> list[str]:
    result = pdu.read_present_response(node, 1)
    return [_title(normalize(next(read_bytes(r.data)).record)) for r in result.records]


def test_a_sort_into_a_new_name_keeps_the_input_and_reports_the_count(served):
    async def run():
        reader, writer = await asyncio.open_connection(HOST, served.port)
        try:
            await _ask(reader, writer, pdu.init_request(message_size=1 << 20,
                                                        record_size=1 << 20,
                                                        charset_proposal=False))
            found = pdu.read_search_response(await _ask(reader, writer, _search(b"a", PERL)))
            assert found.hits == 9
            present = pdu.present_request(result_set=b"a", start=1, count=9,
                                          syntax=apdu.SYNTAX["usmarc"], element_set=b"F")
            original = _titles(await _ask(reader, writer, present))
            answer = await _ask(reader, writer, _sort_request(
                [b"a"], b"by-title", [_spec(_attrs_key(4), relation=1)]))
            assert answer.is_(CONTEXT, 44)
            assert answer.context(2).as_bytes() == b"ref"
            assert answer.context(3).as_int() == 0 and answer.context(6).as_int() == 9
            assert answer.context(4) is None and answer.context(5) is None
            sorted_titles = _titles(await _ask(reader, writer, pdu.present_request(
                result_set=b"by-title", start=1, count=9, syntax=apdu.SYNTAX["usmarc"],
                element_set=b"F")))
            assert sorted_titles == sorted(original, reverse=True) != original
            assert _titles(await _ask(reader, writer, present)) == original  # kept
            # Failures: no such input (30), two inputs (230); the sets stay.
            for inputs, code, status in (([b"nosuch"], 30, 4), ([b"a", b"by-title"], 230, 3)):
                failed = await _ask(reader, writer, _sort_request(
                    inputs, b"by-title" if code == 230 else b"new", [_spec(_attrs_key(4))]))
                assert failed.context(3).as_int() == 2
                assert failed.context(4).as_int() == status
                diag = failed.context(5).children[0]
                assert diag.children[1].as_int() == code
            assert _titles(await _ask(reader, writer, present)) == original
        finally:
            writer.close()

    asyncio.run(run())
