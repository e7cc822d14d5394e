"""Checking a string from outside (a config file, a query string, a command line) against a
fixed set of values that is a ``Literal`` type, and getting it back with that type."""

from __future__ import annotations

from typing import TypeVar

_V = TypeVar("_V", bound=str)


def one_of(value: str | None, choices: tuple[_V, ...]) -> _V | None:
    """The member of ``choices`` equal to ``value`` (typed as one of them), or None."""
    for choice in choices:
        if value == choice:
            return choice
    return None
