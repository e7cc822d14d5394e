"""The reader's CQL: what parses to what, and clear errors for the rest."""

from __future__ import annotations

import pytest

from broker.kernel.cql import Boolean, Clause, parse, parse_with_sort, to_cql
from broker.kernel.errors import QueryError
from broker.kernel.sorting import SortError, SortKey


def test_bare_term_searches_any():
    assert parse("python") == Clause("any", "=", "python")


def test_booleans_are_left_associative_with_equal_precedence():
    # CQL: a or b and c == (a or b) and c
    tree = parse("a or b and c")
    assert tree == Boolean("and", Boolean("or", Clause("any", "=", "a"),
                                          Clause("any", "=", "b")), Clause("any", "=", "c"))


def test_parentheses_group():
    tree = parse("a or (b and c)")
    assert isinstance(tree, Boolean) and tree.op == "or"
    assert tree.right == Boolean("and", Clause("any", "=", "b"), Clause("any", "=", "c"))


def test_phrase_truncation_and_escapes():
    assert parse('title="红楼梦 研究"').is_phrase
    assert parse("title=pyth*") == Clause("title", "=", "pyth", truncated=True)
    assert parse(r'title="a \"quoted\" word"').term == 'a "quoted" word'
    assert parse(r'title="star\*"') == Clause("title", "=", "star*", truncated=False)


def test_context_set_names_map_to_our_indexes():
    assert parse("dc.title=x").index == "title"
    assert parse("cql.serverChoice=x").index == "any"
    assert parse("bath.isbn=978-7-02-006587-5").index == "isbn"


def test_year_relations():
    assert parse("year>=1990") == Clause("year", ">=", "1990")
    assert parse("year < 2000").relation == "<"


def test_word_relations():
    assert parse('title all "red book"').relation == "all"
    assert parse('title any "red book"').relation == "any"


@pytest.mark.parametrize(("query", "message"), [
    ("", "empty"),
    ("title=", "missing"),
    ("colour=red", "unknown index 'colour'"),
    ("year=19x0", "year must be a number"),
    ("year all 1990", "year takes the relations"),
    ("title<abc", "title takes the relations"),
    ("(a and b", "missing ')'"),
    ('title="abc', "unterminated"),
    ("a and", "ends where a search term"),
    ("and b", "needs a search term before it"),
    ("title=*abc", "only right truncation"),
    ("title=ab?c", "only right truncation"),
    ("a prox b", "prox"),
    ("title=/x", "modifiers"),
    ("a ) b", "unexpected ')'"),
    ("x" * 2001, "longer than 2000"),
])
def test_errors_say_what_is_wrong(query, message):
    with pytest.raises(QueryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(query)


def test_to_cql_renames_indexes_and_escapes_terms():
    tree = parse('title="say \\"hi\\"" and author=li*')
    assert to_cql(tree, {"title": "alma.title"}) == (
        '(alma.title = "say \\"hi\\"" and author = "li*")')


# --- sortBy (parse_with_sort) ----------------------------------------------------------------


def test_sort_by_gives_the_tree_and_its_keys():

    tree, keys = parse_with_sort("title=fish sortBy dc.date/sort.descending dc.title")
    assert tree == Clause("title", "=", "fish")
    assert keys == (SortKey("year", ascending=False), SortKey("title"))
    assert parse_with_sort("fish") == (Clause("any", "=", "fish"), ())
    # Modifiers with or without the sort. prefix (CQL 1.2 and 2.0); case; missing values.
    _, keys = parse_with_sort("a and b sortby author/descending/respectCase "
                              "year/sort.missingHigh/sort.ascending title/missingFail")
    assert keys == (SortKey("author", False, True), SortKey("year", missing="high"),
                    SortKey("title", missing="abort"))


def test_sort_by_honours_prefix_maps_and_stays_out_of_parentheses():

    dc = "info:srw/cql-context-set/1/dc-v1.1"
    _, keys = parse_with_sort(f'> d = "{dc}" d.title = x sortby d.creator')
    assert keys == (SortKey("author"),)
    with pytest.raises(QueryError, match="missing '\\)'"):
        parse_with_sort("(a sortby title)")


@pytest.mark.parametrize(("query", "problem", "detail"), [
    ("fish sortby subject", "index", "subject"),
    ("fish sortby dc.subject", "index", "dc.subject"),
    ("fish sortby title/sort.missingOmit", "missing", "sort.missingOmit"),
    ("fish sortby title/sort.missingValue=x", "missing", "sort.missingValue=x"),
    ("fish sortby title/sort.locale=en", "syntax", "sort.locale"),
    ("fish sortby " + " ".join(["title"] * 6), "too_many", "6"),
])
def test_a_sort_we_cannot_do_says_which_part(query, problem, detail):

    with pytest.raises(SortError) as caught:
        parse_with_sort(query)
    assert (caught.value.problem, caught.value.detail) == (problem, detail)


def test_parse_still_refuses_sort_by_and_a_bare_sortby_is_a_syntax_error():

    with pytest.raises(QueryError, match="sortBy is not supported"):
        parse("title=fish sortBy dc.date")
    with pytest.raises(QueryError, match="needs at least one index") as caught:
        parse_with_sort("fish sortby")
    assert not isinstance(caught.value, SortError)


# --- error codes: the web words them in the reader's language ----------------------------

@pytest.mark.parametrize("query, code, params, english", [
    ("title=", "term_missing", {"text": "=", "position": 7}, "missing after '=' at position 7"),
    ('title="中国" and title=', "term_missing", {"text": "=", "position": 22}, "position 22"),
    ("a and", "ends_early", {}, "ends where a search term"),
    ("title = )", "term_missing", {"text": "=", "position": 9}, "missing after '='"),
    ("   ", "empty", {}, "empty"),
    ("x" * 2001, "too_long", {"limit": 2000}, "longer than 2000"),
    ('title="abc', "unterminated_quote", {"position": 7}, "unterminated"),
    ("(a or b", "missing_paren", {"position": 1}, "missing ')'"),
    ("a )", "unexpected", {"text": ")", "position": 3}, "unexpected ')'"),
    ("colour=red", "unknown_index", {"text": "colour", "position": 1}, "unknown index"),
    ("and a", "term_before_boolean", {"text": "and", "position": 1}, "needs a search term"),
    ("title=a*b", "truncation", {"text": "a*b", "position": 7}, "right truncation"),
    ("year=abc", "year_number", {"text": "abc", "position": 6}, "a number like 2008"),
    ("year any 2008", "year_relation", {"text": "any"}, "year takes"),
    ("title > a", "text_relation", {"text": ">"}, "title takes"),
    ("a prox b", "prox", {}, "prox"),
    ("title=/x a", "relation_modifier", {"text": "=", "position": 6}, "relation modifiers"),
])
def test_query_errors_carry_a_code_and_their_position(query, code, params, english):
    with pytest.raises(QueryError) as caught:
        parse(query)
    assert caught.value.code == code, str(caught.value)
    assert caught.value.params == params
    assert english in str(caught.value)  # the English sentence stays for the command line


def test_sort_errors_are_query_errors_with_the_sort_code():
    with pytest.raises(SortError) as caught:
        parse_with_sort("title=a sortBy colour")
    assert caught.value.code == "sort" and caught.value.problem == "index"
    assert QueryError("plain words").code == "invalid"
