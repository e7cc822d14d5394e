"""The labelled matching set (tests/data/matching/) loads whole, and the merger scores on it."""

from __future__ import annotations

import functools

from bench.matching_set import MatchingSet, load, score, worse


@functools.cache
def _data() -> MatchingSet:
    return load()


def test_the_set_loads_with_enough_pairs_of_each_kind():
    data = _data()
    same = [p for p in data.pairs if p.label == "same"]
    different = [p for p in data.pairs if p.label == "different"]
    assert len(same) >= 60
    assert len(different) >= 100
    assert all(p.why for p in data.pairs)


def test_every_id_in_the_pairs_is_a_record_of_the_set():
    data = _data()
    ids = data.ids
    assert {i for p in data.pairs for i in (p.a, p.b)} <= ids
    assert len(ids) == len(data.records)  # ids are unique, library-qualified
    assert all(p.a != p.b for p in data.pairs)


def test_the_hard_cases_are_labelled():
    pairs = {frozenset((p.a, p.b)): p.label for p in _data().pairs}
    # The Perl pair: one author, one year, another subtitle.
    assert pairs[frozenset(("pymarc:fol05843555", "pymarc:fol05843579"))] == "different"
    assert pairs[frozenset(("variants:camel-v1", "variants:camel-v2"))] == "different"
    assert pairs[frozenset(("variants:perl-reprint", "pymarc:fol05843579"))] == "same"


def test_the_merger_has_no_false_merges_and_misses_few():
    data = _data()
    judged = worse(score(data, order) for order in ("forward", "reversed"))
    assert judged.precision == 1.0, [(p.a, p.b, p.why) for p in judged.false_merges]
    assert judged.recall >= 0.98, [(p.a, p.b, p.why) for p in judged.missed_merges]
