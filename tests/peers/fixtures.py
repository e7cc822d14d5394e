"""Session-wide test peers, and the probe queries whose hit counts are known.

Use from any test module below ``tests/`` once ``tests/conftest.py`` has
``pytest_plugins = ["peers.fixtures"]``:

    def test_something(zebra, ztest): ...

``zebra`` is a running ``ZebraServer`` (databases ``marc21`` and ``unimarc``; call
``zebra.load_bulk(n)`` for ``bulk``), ``ztest`` a running ``YazZtest``. Both listen on
127.0.0.1 (``.host``, ``.port``, ``.z3950_url(db)``, ``.sru_url(db)``) and are stopped at
the end of the session. ``redis_server`` is a private ``RedisServer`` (``.url``) for
sessions shared between broker processes, stopped the same way. ``postgres`` is a private
PostgreSQL server (tests/peers/postgres.py; ``.create_database(name, template)`` gives a
URL). Each is skipped, with the reason, if its program is not installed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import TypedDict

import pytest

from peers.postgres import PostgresServer, postgres_bindir
from peers.servers import PeerError, RedisServer, YazZtest, ZebraServer, shared_marc_dir


class Probe(TypedDict):
    db: str  # Zebra database
    pqf: str  # Z39.50 type-1 query (Bib-1)
    cql: str  # the same search over SRU
    hits: int  # the count, checked by reading the records


# Every count below was checked against the records themselves (field by field, with the
# indexing rules of zebra/README.md), not just copied from Zebra's answer.
# marc21: 44 records; unimarc: 11 (10 CNMARC of BNU + 1 Italian UNIMARC).
PROBES: dict[str, Probe] = {
    # -- marc21: titles, structure and truncation
    "title_summerland": {"db": "marc21", "pqf": "@attr 1=4 summerland",
                         "cql": "title=summerland", "hits": 1},
    "title_perl": {"db": "marc21", "pqf": "@attr 1=4 perl", "cql": "title=perl", "hits": 9},
    "title_phrase": {"db": "marc21", "pqf": '@attr 1=4 @attr 4=1 "programming perl"',
                     "cql": 'title="programming perl"', "hits": 1},
    "title_word_list": {"db": "marc21", "pqf": '@attr 1=4 @attr 4=6 "perl programming"',
                        "cql": 'title all "perl programming"', "hits": 3},
    "title_complete_field": {"db": "marc21", "pqf": "@attr 1=4 @attr 4=1 @attr 6=3 summerland",
                             "cql": "title==summerland", "hits": 1},
    "title_right_truncation": {"db": "marc21", "pqf": "@attr 1=4 @attr 5=1 prog",
                               "cql": "title=prog*", "hits": 5},
    # -- marc21: other indexes
    "author_chabon": {"db": "marc21", "pqf": "@attr 1=1003 chabon", "cql": "author=chabon",
                      "hits": 1},
    "author_phrase": {"db": "marc21", "pqf": '@attr 1=1003 @attr 4=1 "brown martin"',
                      "cql": 'author="brown martin"', "hits": 2},
    "isbn10": {"db": "marc21", "pqf": "@attr 1=7 0786808772", "cql": "isbn=0786808772",
               "hits": 1},
    "isbn13_of_isbn10": {"db": "marc21", "pqf": "@attr 1=7 9780786808779",
                         "cql": "isbn=9780786808779", "hits": 1},
    "isbn10_of_isbn13": {"db": "marc21", "pqf": "@attr 1=7 7-04-024765-8",
                         "cql": "isbn=7-04-024765-8", "hits": 1},
    "subject_phrase": {"db": "marc21",
                       "pqf": '@attr 1=21 @attr 4=1 "perl (computer program language)"',
                       "cql": 'subject="perl (computer program language)"', "hits": 10},
    "subject_fiction": {"db": "marc21", "pqf": "@attr 1=21 fiction", "cql": "subject=fiction",
                        "hits": 4},
    "publisher_oreilly": {"db": "marc21", "pqf": "@attr 1=1018 \"o'reilly\"",
                          "cql": "publisher=\"o'reilly\"", "hits": 5},
    "any_perl": {"db": "marc21", "pqf": "@attr 1=1016 perl", "cql": "perl", "hits": 10},
    "callnumber_lc": {"db": "marc21", "pqf": '@attr 1=16 "QA76.73.P22"',
                      "cql": 'callnumber="QA76.73.P22"', "hits": 10},
    "local_number": {"db": "marc21", "pqf": "@attr 1=12 12883376", "cql": "rec.id=12883376",
                     "hits": 1},
    "nothing": {"db": "marc21", "pqf": "@attr 1=4 nonexistentword",
                "cql": "title=nonexistentword", "hits": 0},
    # -- marc21: years (008/07-10; relations need 4=109 numeric, which the CQL map adds)
    "year_eq_1999": {"db": "marc21", "pqf": "@attr 1=31 1999", "cql": "year=1999", "hits": 3},
    "year_ge_2000": {"db": "marc21", "pqf": "@attr 1=31 @attr 2=4 @attr 4=109 2000",
                     "cql": "year>=2000", "hits": 17},
    "year_gt_2000": {"db": "marc21", "pqf": "@attr 1=31 @attr 2=5 @attr 4=109 2000",
                     "cql": "year>2000", "hits": 10},
    "year_lt_1984": {"db": "marc21", "pqf": "@attr 1=31 @attr 2=1 @attr 4=109 1984",
                     "cql": "year<1984", "hits": 5},
    "year_range_1984_1985": {
        "db": "marc21",
        "pqf": "@and @attr 1=31 @attr 2=4 @attr 4=109 1984 @attr 1=31 @attr 2=2 @attr 4=109 1985",
        "cql": "year>=1984 and year<=1985", "hits": 15},
    # -- marc21: Chinese (880 fields and Alma's Chinese MARC21)
    "zh_any_zhongguo": {"db": "marc21", "pqf": "@attr 1=1016 中国", "cql": "中国", "hits": 13},
    "zh_traditional_not_folded": {"db": "marc21", "pqf": "@attr 1=1016 中國", "cql": "中國",
                                  "hits": 4},
    "zh_title_880": {"db": "marc21", "pqf": "@attr 1=4 乔布斯的秘密日记",
                     "cql": "title=乔布斯的秘密日记", "hits": 1},
    "zh_title_across_spaces": {"db": "marc21", "pqf": "@attr 1=4 中国现代诗歌论",
                               "cql": "title=中国现代诗歌论", "hits": 1},
    "zh_title_alma": {"db": "marc21", "pqf": "@attr 1=4 排行榜", "cql": "title=排行榜",
                      "hits": 5},
    "zh_publisher_alma": {"db": "marc21", "pqf": "@attr 1=1018 北京工业大学出版社",
                          "cql": "publisher=北京工业大学出版社", "hits": 5},
    # -- unimarc (CNMARC)
    "zh_title_fazhan_baogao": {"db": "unimarc", "pqf": "@attr 1=4 中国发展报告",
                               "cql": "title=中国发展报告", "hits": 9},
    "zh_title_truncated": {"db": "unimarc", "pqf": "@attr 1=4 @attr 5=1 中国发",
                           "cql": "title=中国发*", "hits": 10},
    "zh_subject_jingji_fazhan": {"db": "unimarc", "pqf": "@attr 1=21 经济发展",
                                 "cql": "subject=经济发展", "hits": 9},
    "zh_publisher": {"db": "unimarc", "pqf": "@attr 1=1018 中国统计出版社",
                     "cql": "publisher=中国统计出版社", "hits": 9},
    "zh_author_corporate": {"db": "unimarc", "pqf": "@attr 1=1003 国家统计局",
                            "cql": "author=国家统计局", "hits": 8},
    "pinyin_only_in_any": {"db": "unimarc", "pqf": '@attr 1=1016 @attr 4=1 "zhang sai"',
                           "cql": '"zhang sai"', "hits": 2},
    "pinyin_not_in_author": {"db": "unimarc", "pqf": "@attr 1=1003 zhang",
                             "cql": "author=zhang", "hits": 0},
    "unimarc_isbn_hyphens": {"db": "unimarc", "pqf": "@attr 1=7 7-5037-1744-0",
                             "cql": "isbn=7-5037-1744-0", "hits": 1},
    "unimarc_isbn13": {"db": "unimarc", "pqf": "@attr 1=7 9787503717444",
                       "cql": "isbn=9787503717444", "hits": 1},
    "unimarc_callnumber": {"db": "unimarc", "pqf": "@attr 1=16 F124/26",
                           "cql": 'callnumber="F124/26"', "hits": 7},
    "unimarc_year_eq_1997": {"db": "unimarc", "pqf": "@attr 1=31 1997", "cql": "year=1997",
                             "hits": 2},
    "unimarc_year_le_1994": {"db": "unimarc", "pqf": "@attr 1=31 @attr 2=2 @attr 4=109 1994",
                             "cql": "year<=1994", "hits": 3},
    "unimarc_author_asimov": {"db": "unimarc", "pqf": "@attr 1=1003 asimov",
                              "cql": "author=asimov", "hits": 1},
    "unimarc_title_nsb_nse": {"db": "unimarc", "pqf": '@attr 1=4 @attr 4=1 "faccia della spirale"',
                              "cql": 'title="faccia della spirale"', "hits": 1},
}


def _require(*programs: str, packages: str = "idzebra-2.0 / yaz") -> None:
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (Debian {packages})")


@pytest.fixture(scope="session")
def zebra() -> Iterator[ZebraServer]:
    """Zebra on 127.0.0.1 with databases ``marc21`` and ``unimarc`` (Z39.50 + SRU)."""
    _require("zebrasrv", "zebraidx", "yaz-marcdump")
    marc_dir = shared_marc_dir()
    if not (marc_dir / "SOURCES.md").is_file():
        pytest.fail(f"MARC test data not found at {marc_dir}", pytrace=False)
    with ZebraServer(marc_dir) as server:
        yield server


@pytest.fixture(scope="session")
def ztest() -> Iterator[YazZtest]:
    """yaz-ztest on 127.0.0.1 (Z39.50 + SRU; databases Default, slow, db*)."""
    _require("yaz-ztest")
    with YazZtest() as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A private ``redis-server`` on 127.0.0.1 (``.url``), without persistence."""
    _require("redis-server", packages="redis-server")
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL server on 127.0.0.1 (Debian ``postgresql``), thrown away after."""
    if postgres_bindir() is None:
        pytest.skip("PostgreSQL is not installed (Debian package postgresql)")
    server = PostgresServer()
    try:
        server.start()
    except PeerError as exc:
        server.close()
        pytest.skip(f"PostgreSQL could not be started: {exc}")
    try:
        yield server
    finally:
        server.close()
