"""The reader's CQL: what parses to what, and clear errors for the rest."""

from __future__ import annotations

import pytest

from broker.kernel.cql import Boolean, Clause, parse, to_cql
from broker.kernel.errors import QueryError


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
