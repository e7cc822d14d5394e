"""The one error hierarchy of balis-broker.

Every error the project raises on purpose is a ``BalisError``. Each also subclasses the
builtin it resembles, so callers that only know Python's own exceptions still catch it.
The command line turns a ``BalisError`` into a one-line message and exit status 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class BalisError(Exception):
    """Base of every deliberate error in balis-broker."""


class UsageError(BalisError, ValueError):
    """The person at the command line asked for something that cannot be done."""


class ConfigError(BalisError, ValueError):
    """A configuration file is missing, unreadable or invalid."""


class MarcError(BalisError, ValueError):
    """A MARC record or file could not be read."""


class SourceOpenError(MarcError, OSError):
    """A MARC input file could not be opened at all."""
