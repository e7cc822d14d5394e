"""Third-party SRU clients against a member's SRU front door (``connectors.sru.server``
over ``broker.catalogues.marc_file.LocalCatalogue``, as every SRU member of the demo runs):
PyPI ``sruthi`` and plain SRU 2.0 requests page through whole results, and the count each
is told is the count of records it gets. (The union's SRU front door, ``/sru`` of
``balis serve``, is checked the same way in tests/peers/test_union_counts.py.)
"""

from __future__ import annotations

import urllib.parse
import urllib.request

import pytest
from lxml import etree
from peers.catalogues import LoopThread

from broker.catalogues.marc_file import LocalCatalogue
from connectors.sru.server import SruServer

sruthi = pytest.importorskip("sruthi")

# The records in each catalogue's file (as yaz-marcdump counts them too).
FILE_RECORDS = {"austen": 4, "bnu": 10}
SRU2 = "{http://docs.oasis-open.org/ns/search-ws/sruResponse}"
PRECISION = "info:srw/vocabulary/resultCountPrecision/1/"


@pytest.fixture(scope="module")
def member_url(marc_data):
    loop = LoopThread()
    catalogues = {
        "austen": LocalCatalogue(marc_data / "marc4j" / "chinese_mangled_multibyte.mrc",
                                 name="austen"),
        "bnu": LocalCatalogue(marc_data / "derived" / "bnu_cnmarc.utf8.iso", name="bnu",
                              flavour="unimarc"),
        "perl": LocalCatalogue(marc_data / "pymarc" / "test.dat", name="perl"),
    }
    server = SruServer(catalogues)
    loop.run(server.start())
    yield f"http://127.0.0.1:{server.port}"
    loop.run(server.close())
    loop.close()


def sru2(url: str, cql: str, maximum: int) -> tuple[set[int], int, set[str], list[str]]:
    """SRU 2.0 from record 1, following nextRecordPosition until it is absent."""
    counts, precisions, titles, start = set(), set(), [], 1
    while True:
        query = urllib.parse.urlencode({"version": "2.0", "query": cql, "startRecord": start,
                                        "maximumRecords": maximum})
        with urllib.request.urlopen(f"{url}?{query}", timeout=30) as reply:
            root = etree.fromstring(reply.read())
        assert root.tag == f"{SRU2}searchRetrieveResponse", etree.tostring(root)[:300]
        counts.add(int(root.findtext(f"{SRU2}numberOfRecords")))
        precisions.add(root.findtext(f"{SRU2}resultCountPrecision"))
        positions = [int(p.text) for p in root.iter(f"{SRU2}recordPosition")]
        assert positions == list(range(start, start + len(positions)))
        titles += [etree.tostring(r) for r in root.iter(f"{SRU2}recordData")]
        following = root.findtext(f"{SRU2}nextRecordPosition")
        if following is None:
            return counts, len(titles), precisions, titles
        assert positions, "a next position with no records on this page"
        start = int(following)


@pytest.mark.parametrize(("database", "cql"), [
    ("austen", "cql.allRecords=1"),
    ("austen", "title=pride"),
    ("bnu", "cql.allRecords=1"),
    ("bnu", "title=中国"),
    ("perl", "title=perl"),
    ("perl", "author=nobodyatall"),
])
def test_sruthi_and_sru2_page_to_the_count(member_url, database, cql):
    url = f"{member_url}/{database}"
    records = sruthi.searchretrieve(url, query=cql, record_schema="marcxml",
                                    sru_version="1.2", maximum_records=3)
    iterated = sum(1 for _ in records)
    assert records.count == iterated
    counts, read, precisions, _ = sru2(url, cql, maximum=4)
    assert counts == {iterated} and read == iterated
    assert precisions == {PRECISION + "exact"}
    if cql.startswith("cql.allRecords"):  # every record of the file, paged through
        assert iterated == FILE_RECORDS[database] > 3


def test_sruthi_reads_the_explain_record(member_url):
    info = sruthi.explain(f"{member_url}/perl")
    assert info.database  # the ZeeRex databaseInfo sruthi reads
    assert "title" in str(info.index).lower()
