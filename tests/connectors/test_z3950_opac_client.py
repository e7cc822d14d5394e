"""Our Z39.50 client asking for OPAC records (a library's ``record_syntax: opac``): the MARC
inside is the record, and each copy's circulation (availableNow, availabilityDate,
itemId, localLocation, callNumber) becomes its holdings' status and due date. Checked
against our own server (connectors/z3950/server*.py) and against yaz-ztest, which serves
OPAC records of its own."""

from __future__ import annotations

import asyncio
import threading

import pytest

from broker.catalogues.marc_file import LocalCatalogue
from broker.kernel.config import ConnectorConfig, Library, loads
from broker.kernel.cql import parse
from broker.kernel.errors import ConfigError
from connectors.z3950 import apdu
from connectors.z3950.connector import Z3950Connector
from connectors.z3950.opac import OpacCopy, opac_copies, opac_record, with_circulation
from marc import Holding, Record
from marc.writer import iso2709, write_record

HOST = "127.0.0.1"
COPIES = (
    Holding("BUPT", "中文书库", "I242.4/3", "0123456", "available"),
    Holding("BUPT", "中文书库", "I242.4/3", "0123457", "on_loan", "2027-01-15"),
    Holding("BUPT", "阅览室", "I242.4/3", "0123458", "not_for_loan"),
    Holding("BUPT", "中文书库", "I242.4/3", "0123459"),  # status not reported
)
BOOK = Record(id="b1", format="unimarc", title="红楼梦", responsibility="曹雪芹著",
              authors=("曹雪芹",), publisher="人民文学出版社", place="北京", year=2008,
              language="chi", material_type="book", isbns=("9787020065875",))


def test_opac_copies_read_back_what_our_server_writes():
    data = opac_record(b"00000nam  2200000   4500", apdu.SYNTAX["unimarc"], COPIES)
    assert opac_copies(data) == (
        OpacCopy("BUPT", "中文书库", "I242.4/3", "0123456", "available", None),
        OpacCopy("BUPT", "中文书库", "I242.4/3", "0123457", "on_loan", "2027-01-15"),
        OpacCopy("BUPT", "阅览室", "I242.4/3", "0123458", "not_for_loan", None),
        OpacCopy("BUPT", "中文书库", "I242.4/3", "0123459", None, None))


def test_gb18030_strings_of_a_member_that_did_not_negotiate():
    data = opac_record(b"x", apdu.SYNTAX["unimarc"], COPIES[:1], encoding="gb18030")
    assert opac_copies(data, "gb18030")[0].location == "中文书库"


def test_circulation_is_laid_over_the_marc_holdings():
    marc = (Holding("bupt", "中文书库", "I242.4/3", "0123457"),
            Holding("bupt", None, None, None))
    copies = [OpacCopy("BUPT", "书库", "I242.4/3", "0123457", "on_loan", "2027-01-15"),
              OpacCopy("BUPT", "新书架", "I242.4/3b", "X9", "available", None)]
    assert with_circulation(marc, copies, "bupt") == (
        Holding("bupt", "中文书库", "I242.4/3", "0123457", "on_loan", "2027-01-15"),
        Holding("bupt", None, None, None),
        Holding("bupt", "新书架", "I242.4/3b", "X9", "available"))
    assert with_circulation(marc, [], "bupt") == marc


def test_record_syntax_opac_is_a_z3950_setting():
    def config(protocol: str, url: str) -> str:
        return (f"consortium: {{name: T}}\ncategories: [{{id: u, name: U}}]\nlibraries:\n"
                f"  - id: a\n    name: A\n    category: u\n    connector: {{protocol: "
                f"{protocol}, url: \"{url}\", record_syntax: opac}}\n")

    (lib,) = loads(config("z3950", "z3950://h:210/db")).libraries
    assert lib.connector is not None and lib.connector.record_syntax == "opac"
    with pytest.raises(ConfigError, match=r"record_syntax opac is for Z39\.50 members only"):
        loads(config("sru", "http://h/sru"))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Our Z39.50 server over a CNMARC catalogue whose copies' status is in 852 $z (the
    union's way): plain UNIMARC gives a reader no holdings (CNMARC holdings are 905/906),
    OPAC gives each copy with its circulation."""
    path = tmp_path_factory.mktemp("opac") / "books.iso"
    path.write_bytes(iso2709(write_record(BOOK, "unimarc", record_id="b1", holdings=COPIES)))
    catalogue = LocalCatalogue(str(path), name="books", flavour="unimarc")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    from connectors.z3950.server import Z3950Server

    server = Z3950Server({"books": catalogue})
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    yield server
    asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def _library(url: str, **options) -> Library:
    config = ConnectorConfig(protocol="z3950", url=url, timeout=10, max_records=10, **options)
    return Library("bupt", "北京邮电大学图书馆", "test", connector=config)


def _search(library: Library, cql: str):
    async def run():
        connector = Z3950Connector(library)
        try:
            return await connector.search(parse(cql))
        finally:
            await connector.close()

    return asyncio.run(run())


def test_our_client_reads_availability_from_our_server(served):
    url = f"z3950://{HOST}:{served.port}/books"
    plain = _search(_library(url, format="unimarc"), "title=红楼梦")
    assert plain.hits == 1 and plain.records[0].holdings == ()
    page = _search(_library(url, format="unimarc", record_syntax="opac"), "title=红楼梦")
    assert not page.problems, page.problems
    (record,) = page.records
    assert record.title == "红楼梦"
    assert [(h.library, h.location, h.barcode, h.status, h.due) for h in record.holdings] == [
        ("bupt", "中文书库", "0123456", "available", None),
        ("bupt", "中文书库", "0123457", "on_loan", "2027-01-15"),
        ("bupt", "阅览室", "0123458", "not_for_loan", None),
        ("bupt", "中文书库", "0123459", None, None)]
    assert record.call_numbers == ("I242.4/3",)


def test_our_client_reads_yaz_ztest_opac_records(ztest):
    # yaz-ztest answers OPAC with a USMARC record and its own holdings (nucCode s-FM/GC,
    # availableNow 1, an itemId): the only holdings there are, since its MARC has no 852.
    page = _search(_library(ztest.z3950_url("Default"), record_syntax="opac"), "computer")
    assert not page.problems, page.problems
    assert page.hits >= 1 and page.records
    for record in page.records:
        assert record.title
        assert record.holdings, record
        for holding in record.holdings:
            assert holding.library == "bupt" and holding.barcode
            assert holding.status == "available" and holding.due is None
            assert holding.location and holding.call_number
