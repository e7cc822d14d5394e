"""Merging records from several libraries into clusters: one per edition of one work."""

from __future__ import annotations

import pytest

from broker.search.match import compare, evidence
from broker.search.merge import Merger, edition_key, fold
from marc import Holding, Record


def rec(rid: str, title: str, *, authors=(), year=None, edition=None, isbns=(), issns=(),
        material_type="book", fmt="unimarc", holdings=(), **more) -> Record:
    return Record(id=rid, format=fmt, title=title, authors=tuple(authors), year=year,
                  edition=edition, isbns=tuple(isbns), issns=tuple(issns),
                  material_type=material_type, holdings=tuple(holdings), **more)


def merged(*items: tuple[str, Record]) -> Merger:
    merger = Merger()
    for library, record in items:
        merger.add(library, [record])
    return merger


def groups(merger: Merger) -> list[list[str]]:
    """Each cluster as the ids of its records, in arrival order."""
    return [[r.id for _, r in cluster.records] for cluster in merger.clusters]


# --- what merges ----------------------------------------------------------------------------


def test_same_isbn_merges_across_title_spellings():
    a = rec("bnu:1", "中国发展报告", authors=["国家统计局"], year=1997,
            isbns=["9787503726231"])
    b = rec("pku:9", "97中国发展报告 : 中国的经济", authors=["国家统计局编"], year=1998,
            isbns=["9787503726231"], fmt="marc21")
    c = rec("bupt:5", "China development report", year=1997, isbns=["9787503726231"])
    merger = merged(("bnu", a), ("pku", b), ("bupt", c))
    assert groups(merger) == [["bnu:1", "pku:9", "bupt:5"]]
    (cluster,) = merger.clusters
    assert cluster.libraries == ["bnu", "pku", "bupt"]


def test_isbn_matches_whichever_of_a_records_isbns_is_shared():
    a = rec("a:1", "Programming Perl", isbns=["9780596000271", "9781565921498"])
    b = rec("b:1", "Programming Perl (3rd edition)", isbns=["9781565921498"])
    assert groups(merged(("a", a), ("b", b))) == [["a:1", "b:1"]]


def test_traditional_and_simplified_titles_merge_by_their_description():
    simplified = rec("bnu:1", "中国发展报告", authors=["国家统计局"], year=1997)
    traditional = rec("ntu:1", "中國發展報告", authors=["國家統計局"], year=1997,
                      fmt="marc21")
    assert compare(evidence(simplified), evidence(traditional)).verdict == "same"
    assert groups(merged(("bnu", simplified), ("ntu", traditional))) == [["bnu:1", "ntu:1"]]


def test_work_key_ignores_case_punctuation_spacing_and_width():
    a = rec("a:1", "Perl : the Complete Reference", authors=["Brown, Martin C."], year=1999)
    b = rec("b:1", "PERL the complete reference.", authors=["BROWN, MARTIN C"], year=1999)
    c = rec("c:1", "Ｐｅｒｌ  the  complete  reference", authors=["Brown Martin C"], year=1999)
    assert fold("中 国 发展·报告") == fold("中国发展报告")
    assert groups(merged(("a", a), ("b", b), ("c", c))) == [["a:1", "b:1", "c:1"]]


def test_non_latin_first_authors_are_compared():
    """Two different Chinese authors with the same title are two works (a key that kept
    only Latin letters would see two empty authors and merge them)."""
    a = rec("a:1", "经济学原理", authors=["张三"], year=2005)
    b = rec("b:1", "经济学原理", authors=["李四"], year=2005)
    c = rec("c:1", "经济学原理", authors=["张三"], year=2005)
    assert compare(evidence(a), evidence(b)).verdict == "unlike"
    assert groups(merged(("a", a), ("b", b), ("c", c))) == [["a:1", "c:1"], ["b:1"]]


def test_a_serial_never_merges_with_a_book():
    book = rec("a:1", "中国统计年鉴", authors=["国家统计局"], year=1999)
    serial = rec("b:1", "中国统计年鉴", authors=["国家统计局"], year=1999,
                 material_type="serial", issns=["10089721"])
    assert groups(merged(("a", book), ("b", serial))) == [["a:1"], ["b:1"]]
    # Not even when a cataloguer gave the serial the book's ISBN.
    book2 = rec("a:2", "统计手册", year=2001, isbns=["9787503737444"])
    serial2 = rec("b:2", "统计手册", year=2001, isbns=["9787503737444"],
                  material_type="serial")
    assert groups(merged(("a", book2), ("b", serial2))) == [["a:2"], ["b:2"]]


@pytest.mark.parametrize(("one", "other"), [
    ("第2版", "第3版"),
    ("第二版", "第三版"),
    ("2nd ed.", "3rd ed."),
    ("Second edition", "Third edition"),
    ("第2版", "3rd ed."),
])
def test_different_editions_never_merge(one, other):
    a = rec("a:1", "数据结构", authors=["严蔚敏"], year=2007, edition=one)
    b = rec("b:1", "数据结构", authors=["严蔚敏"], year=2007, edition=other)
    assert edition_key(one) != edition_key(other)
    assert groups(merged(("a", a), ("b", b))) == [["a:1"], ["b:1"]]


@pytest.mark.parametrize(("one", "other"), [
    ("第2版", "2nd ed."),
    ("第二版", "第2版"),
    ("2nd ed.", "Ed. 2"),
])
def test_the_same_edition_written_differently_merges(one, other):
    a = rec("a:1", "数据结构", authors=["严蔚敏"], year=2007, edition=one)
    b = rec("b:1", "数据结构", authors=["严蔚敏"], year=2007, edition=other)
    assert groups(merged(("a", a), ("b", b))) == [["a:1", "b:1"]]


@pytest.mark.parametrize("first", ["第1版", "1st ed.", "First edition", "初版", "第一版"])
def test_a_first_edition_statement_is_the_same_as_none(first):
    """merge.py: "'First edition', '初版', '1st ed' all mean the first: the same as no
    statement". LC's MARC21 of Chinese books says 第1版 where CNMARC usually says nothing."""
    assert edition_key(first) == edition_key(None)
    a = rec("a:1", "中国现代诗歌论", authors=["骆寒超"], year=1984, edition=first)
    b = rec("b:1", "中国现代诗歌论", authors=["骆寒超"], year=1984)
    assert groups(merged(("a", a), ("b", b))) == [["a:1", "b:1"]]


def test_different_isbns_keep_same_looking_records_apart():
    """Records whose ISBNs say they are different editions stay apart; a record without
    an ISBN that matches both is ambiguous, and stays on its own."""
    hard = rec("a:1", "Perl", authors=["Brown, Martin C."], year=1999,
               isbns=["9780072120004"])
    paper = rec("b:1", "Perl", authors=["Brown, Martin C."], year=1999,
                isbns=["9780072119985"])
    undated = rec("c:1", "Perl", authors=["Brown, Martin C."], year=1999)
    assert groups(merged(("a", hard), ("b", paper), ("c", undated))) == [
        ["a:1"], ["b:1"], ["c:1"]]
    # Alone with one of them, it is not ambiguous.
    assert groups(merged(("a", hard), ("c", undated))) == [["a:1", "c:1"]]


def test_subtitles_that_disagree_keep_two_books_apart():
    """The false merge the work key made: same title proper, author and year."""
    reference = rec("a:1", "Perl", subtitle="programmer's reference",
                    authors=["Brown, Martin C."], year=1999)
    complete = rec("b:1", "Perl", subtitle="the complete reference",
                   authors=["Brown, Martin C."], year=1999, isbns=["0072120002"])
    merger = merged(("a", reference), ("b", complete))
    assert groups(merger) == [["a:1"], ["b:1"]]
    # In either order, and a subtitle kept inside the title proper matches as one.
    inline = rec("c:1", "Perl : the complete reference", authors=["Brown, Martin"],
                 year=1999)
    assert groups(merged(("b", complete), ("a", reference), ("c", inline))) == [
        ["b:1", "c:1"], ["a:1"]]


def test_a_veto_holds_through_a_third_record():
    """A (ISBN 1), B (no ISBN), C (ISBN 2): B may join A, C never joins them."""
    a = rec("a:1", "数据结构", authors=["严蔚敏"], year=2007, isbns=["9787302147510"])
    b = rec("b:1", "数据结构", authors=["严蔚敏"], year=2007)
    c = rec("c:1", "数据结构", authors=["严蔚敏"], year=2007, isbns=["9787302023685"])
    merger = merged(("a", a), ("b", b), ("c", c))
    assert groups(merger) == [["a:1", "b:1"], ["c:1"]]
    # A record with ISBNs 1 and 3 shares one with A, and none with a member holding 3 only.
    d = rec("d:1", "数据结构", authors=["严蔚敏"], year=2007,
            isbns=["9787302147510", "9787040100952"])
    e = rec("e:1", "数据结构", authors=["严蔚敏"], year=2007, isbns=["9787302023685"])
    for cluster in merged(("a", a), ("d", d), ("e", e), ("c", c)).clusters:
        sets = [set(r.isbns) for _, r in cluster.records if r.isbns]
        assert all(x & y for x in sets for y in sets), sets


def test_volumes_of_a_set_do_not_merge_even_with_the_set_isbn():
    one = rec("a:1", "中国通史. 第一册", sort_title="中国通史", authors=["白寿彝"],
              year=1999, isbns=["9787208031234"])
    two = rec("b:1", "中国通史. 第2册", sort_title="中国通史", authors=["白寿彝"],
              year=1999, isbns=["9787208031234"])
    same = rec("c:1", "中國通史. 1", sort_title="中國通史", authors=["白壽彝"], year=1999)
    whole = rec("d:1", "中国通史", authors=["白寿彝"], year=1999)
    merger = merged(("a", one), ("b", two), ("c", same), ("d", whole))
    assert groups(merger) == [["a:1", "c:1"], ["b:1"], ["d:1"]]


def test_page_counts_far_apart_keep_records_apart_without_an_isbn():
    a = rec("a:1", "History", authors=["Smith, John"], year=1990, extent="xii, 320 p.")
    b = rec("b:1", "History", authors=["Smith, J."], year=1990, extent="96 p.")
    c = rec("c:1", "History", authors=["Smith, J."], year=1990, extent="322 p. ; 24 cm")
    assert groups(merged(("a", a), ("b", b), ("c", c))) == [["a:1", "c:1"], ["b:1"]]


def test_the_merged_record_says_why_its_records_were_merged():
    a = rec("a:1", "中国发展报告", authors=["国家统计局"], year=1997, isbns=["9787503726231"])
    b = rec("b:1", "中國發展報告", authors=["國家統計局"], year=1997, fmt="marc21")
    c = rec("c:1", "China development report", year=1997, isbns=["9787503726231"])
    (cluster,) = merged(("a", a), ("b", b), ("c", c)).clusters
    match = cluster.as_dict()["match"]
    assert match == [
        {"record": "b:1", "matched": "a:1", "rule": "description",
         "evidence": ["title", "author", "year"]},
        {"record": "c:1", "matched": "a:1", "rule": "identifier",
         "evidence": ["isbn 9787503726231"]},
    ]


def test_different_years_do_not_merge_without_an_isbn():
    a = rec("a:1", "中国发展报告", authors=["国家统计局"], year=1997)
    b = rec("b:1", "中国发展报告", authors=["国家统计局"], year=1998)
    assert groups(merged(("a", a), ("b", b))) == [["a:1"], ["b:1"]]


def test_records_without_a_title_stay_apart():
    a = rec("a:1", None)
    b = rec("b:1", None)
    assert groups(merged(("a", a), ("b", b))) == [["a:1"], ["b:1"]]


# --- adding the same record again -----------------------------------------------------------


def test_the_same_record_added_twice_is_not_duplicated():
    record = rec("bnu:1", "中国发展报告", authors=["国家统计局"], year=1997,
                 isbns=["9787503726231"])
    merger = Merger()
    assert merger.add("bnu", [record]) == 1
    assert merger.add("bnu", [record]) == 0  # a page asked for again
    assert merger.add("bnu", (record, record)) == 0
    (cluster,) = merger.clusters
    assert len(cluster.records) == 1
    assert cluster.libraries == ["bnu"]
    assert len(cluster.holdings) == 1


def test_the_same_record_id_from_another_library_still_joins():
    record = rec("x:1", "中国发展报告", year=1997, isbns=["9787503726231"])
    merger = merged(("a", record), ("b", record))
    (cluster,) = merger.clusters
    assert cluster.libraries == ["a", "b"]


# --- what a cluster shows -------------------------------------------------------------------


def test_cluster_carries_every_librarys_holdings_and_the_fullest_description():
    thin = rec("bnu:1", "中国发展报告", year=1997, isbns=["9787503726231"],
               holdings=[Holding("bnu", "中文书库", "F124/26", "001", "available")])
    full = rec("pku:7", "中国发展报告", authors=["国家统计局"], year=1997,
               isbns=["9787503726231", "9787503799999"], publisher="中国统计出版社",
               place="北京", subjects=("经济发展",), call_numbers=("F124.2/3",),
               holdings=[Holding("pku", "社科阅览室", "F124.2/3", "P1", "on_loan",
                                 "2024-05-01"),
                         Holding("pku", "密集书库", "F124.2/3", "P2", "available")])
    bare = rec("bupt:3", "中国发展报告", year=1997, isbns=["9787503726231"])
    merger = merged(("bnu", thin), ("pku", full), ("bupt", bare))
    (cluster,) = merger.clusters
    data = cluster.as_dict()
    assert data["libraries"] == ["bnu", "pku", "bupt"]
    assert data["publisher"] == "中国统计出版社"  # the fullest record's description
    assert [(h["library"], h["barcode"]) for h in data["holdings"]] == [
        ("bnu", "001"), ("pku", "P1"), ("pku", "P2"), ("bupt", None)]
    assert data["holdings"][1]["status"] == "on_loan"
    assert data["holdings"][1]["due"] == "2024-05-01"
    assert set(data["isbns"]) == {"9787503726231", "9787503799999"}
    assert data["sources"] == ["bnu:1", "pku:7", "bupt:3"]
    assert merger.find("pku:7") is cluster


def test_holdings_are_credited_to_the_library_that_sent_them():
    """A record's holding that names no library (or another one) belongs to the sender."""
    record = rec("a:1", "书", holdings=[Holding(None, "书库"), Holding("other", "阅览室")])
    (cluster,) = merged(("a", record)).clusters
    assert [h.library for h in cluster.holdings] == ["a", "a"]
    assert [h.location for h in cluster.holdings] == ["书库", "阅览室"]


def test_cluster_id_is_its_first_records_id():
    merger = merged(("bnu", rec("bnu:990001", "中国发展报告", year=1997)),
                    ("pku", rec("pku:42", "中国发展报告", year=1997)))
    (cluster,) = merger.clusters
    assert cluster.id == "bnu:990001"
    assert cluster.as_dict()["id"] == "bnu:990001"
