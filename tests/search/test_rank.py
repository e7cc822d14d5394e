"""Ordering merged records (relevance, year, pinyin title), facets and narrowing."""

from __future__ import annotations

import pytest
from pypinyin import Style, lazy_pinyin

from broker.kernel.cql import parse
from broker.search import rank
from broker.search.merge import Cluster, Merger
from marc import Record


def rec(rid: str, title: str | None, *, year=None, subjects=(), authors=(), isbns=(),
        material_type="book", language="chi", subtitle=None) -> Record:
    return Record(id=rid, format="marc21", title=title, subtitle=subtitle, year=year,
                  subjects=tuple(subjects), authors=tuple(authors), isbns=tuple(isbns),
                  material_type=material_type, language=language)


def clusters(*items: tuple[str, Record]) -> list[Cluster]:
    merger = Merger()
    for library, record in items:
        merger.add(library, [record])
    return list(merger.clusters)


def titles(ordered: list[Cluster]) -> list[str]:
    return [c.best.title for c in ordered]


# --- relevance ------------------------------------------------------------------------------


def test_a_title_match_ranks_above_a_subject_only_match():
    found = clusters(
        ("a", rec("a:1", "Scripting for system administrators", year=2001,
                  subjects=["Perl (Computer program language)"])),
        ("a", rec("a:2", "Learning Perl", year=2001, subjects=["Programming"])),
        ("a", rec("a:3", "Gardening", year=2001, subjects=["Plants"])),
    )
    ordered = rank.order(found, "relevance", rank.query_terms(parse("perl")))
    assert titles(ordered) == ["Learning Perl", "Scripting for system administrators",
                               "Gardening"]


def test_a_chinese_title_match_ranks_above_a_subject_only_match():
    terms = rank.query_terms(parse("经济发展"))
    assert "经济" in terms and "发展" in terms  # CJK bigrams: no spaces between words
    found = clusters(
        ("a", rec("a:1", "中国统计年鉴", year=1999, subjects=["经济发展 -- 中国"])),
        ("a", rec("a:2", "经济发展研究", year=1999, subjects=["统计"])),
    )
    assert titles(rank.order(found, "relevance", terms)) == ["经济发展研究", "中国统计年鉴"]


def test_held_by_more_libraries_ranks_higher():
    # Same text; different years keep them apart; the 2002 one is held by two libraries.
    found = clusters(
        ("a", rec("a:1", "Learning Perl", year=2001, isbns=["9780596001322"])),
        ("a", rec("a:2", "Learning Perl", year=2002, isbns=["9780596001327"])),
        ("b", rec("b:9", "Learning Perl", year=2002, isbns=["9780596001327"])),
    )
    assert [c.libraries for c in found] == [["a"], ["a", "b"]]
    for terms in (rank.query_terms(parse("perl")), []):
        ordered = rank.order(found, "relevance", terms)
        assert [c.best.year for c in ordered] == [2002, 2001]
    scores = rank.relevance(found, rank.query_terms(parse("perl")))
    one, two = (scores[c.id] for c in found)
    assert two - one == pytest.approx(rank.HOLDERS_BOOST)


def test_terms_of_a_not_clause_do_not_count():
    assert "java" not in rank.query_terms(parse("perl not java"))
    assert set(rank.query_terms(parse("title=perl and year>=2000 and isbn=123"))) == {"perl"}


def test_relevance_keeps_arrival_order_between_equals():
    found = clusters(*[("a", rec(f"a:{i}", f"Book {i}", year=2000 + i)) for i in range(5)])
    assert rank.order(found, "relevance", []) == found


# --- year and title -------------------------------------------------------------------------


def test_year_both_ways_with_undated_last():
    found = clusters(("a", rec("a:1", "B", year=1999)), ("a", rec("a:2", "C")),
                     ("a", rec("a:3", "D", year=2010)), ("a", rec("a:4", "E", year=1984)))
    assert [c.best.year for c in rank.order(found, "year", [])] == [1984, 1999, 2010, None]
    assert [c.best.year for c in rank.order(found, "-year", [])] == [2010, 1999, 1984, None]


def _pinyin_key(text: str) -> list[str]:
    """Dictionary order: character by character, each by its pinyin and then its tone."""
    cleaned = "".join(ch for ch in text.lower() if ch.isalnum())
    return lazy_pinyin(cleaned, style=Style.TONE3)


TITLES = ["中国发展报告", "北京大学学报", "长城", "重庆大学学报", "阿Q正传", "安徒生童话",
          "zebra crossings", "Apple pie", "银行会计", "音乐欣赏", "红楼梦", "行政法学",
          "Beijing guide", "Xiandai Hanyu cidian", "现代汉语词典", "数据结构", "Perl"]


def test_title_order_is_pinyin_interleaved_with_latin():
    found = clusters(*[("a", rec(f"a:{i}", t, year=2000 + i)) for i, t in enumerate(TITLES)])
    ordered = titles(rank.order(found, "title", []))
    expected = sorted(TITLES, key=_pinyin_key)
    assert ordered == expected
    # Polyphonic characters read as in their words: 长城 is chang, 重庆 chong, 银行 hang,
    # 行政 xing, 音乐 yue.
    assert ordered.index("长城") < ordered.index("重庆大学学报") < ordered.index("数据结构")
    assert ordered.index("红楼梦") < ordered.index("Perl") < ordered.index("行政法学")
    assert ordered.index("现代汉语词典") < ordered.index("行政法学") < ordered.index("音乐欣赏")
    assert ordered.index("音乐欣赏") < ordered.index("银行会计")  # yin1 before yin2
    assert ordered.index("Xiandai Hanyu cidian") < ordered.index("行政法学")


def test_traditional_titles_sort_with_simplified_ones():
    found = clusters(("a", rec("a:1", "中國發展報告", year=1)),
                     ("a", rec("a:2", "北京", year=2)),
                     ("a", rec("a:3", "资本论", year=3)))
    assert titles(rank.order(found, "title", [])) == ["北京", "中國發展報告", "资本论"]


def test_unknown_sort():
    with pytest.raises(ValueError, match="sort"):
        rank.order([], "author", [])


# --- facets ---------------------------------------------------------------------------------


def _sample() -> list[Cluster]:
    return clusters(
        ("a", rec("a:1", "One", year=1995, isbns=["9787503726231"])),
        ("b", rec("b:1", "One", year=1995, isbns=["9787503726231"])),
        ("a", rec("a:2", "Two", year=1999, material_type="serial")),
        ("b", rec("b:2", "Three", year=2004, language="eng")),
        ("c", rec("c:1", "Four", year=None, material_type="electronic", language=None)),
    )


def test_facets_count_merged_records():
    facets = rank.facets(_sample())
    assert facets["library"] == [{"value": "a", "count": 2}, {"value": "b", "count": 2},
                                 {"value": "c", "count": 1}]
    assert facets["decade"] == [{"value": "1990s", "count": 2}, {"value": "2000s", "count": 1}]
    assert facets["material_type"] == [{"value": "book", "count": 2},
                                       {"value": "electronic", "count": 1},
                                       {"value": "serial", "count": 1}]
    assert facets["language"] == [{"value": "chi", "count": 2}, {"value": "eng", "count": 1}]


def test_narrow_by_facets():
    sample = _sample()
    assert titles(rank.narrow(sample, {"library": ["b"]})) == ["One", "Three"]
    assert titles(rank.narrow(sample, {"library": ["a", "c"]})) == ["One", "Two", "Four"]
    assert titles(rank.narrow(sample, {"library": ["b"], "decade": ["1990s"]})) == ["One"]
    assert titles(rank.narrow(sample, {"material_type": ["serial"]})) == ["Two"]
    assert titles(rank.narrow(sample, {"language": ["eng"]})) == ["Three"]
    assert rank.narrow(sample, {"library": []}) == sample
    assert rank.narrow(sample, {"decade": ["1880s"]}) == []
