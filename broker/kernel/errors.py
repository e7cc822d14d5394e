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


class QueryError(BalisError, ValueError):
    """A reader's query is not valid CQL, or uses an index or relation we do not know.

    The message is English, for the command line and the API's ``error``; ``code`` and
    ``params`` (position, the offending text...) let the web say the same in the reader's
    language (its catalogue keys are ``err.cql.CODE``). "invalid": no more precise code.
    """

    def __init__(self, message: str, code: str = "invalid", **params: str | int) -> None:
        super().__init__(message)
        self.code = code
        self.params: dict[str, str | int] = params


# --- a member library's failure -----------------------------------------------------------
# These end as that library's status ("error"/"timeout") with str(exc) as the reason a reader
# sees, so their messages are written for people, not for developers.


class ConnectorError(BalisError):
    """A member library could not answer a search."""


class UnsupportedQuery(ConnectorError, ValueError):
    """The query uses something this library's catalogue cannot express."""


class Unreachable(ConnectorError, ConnectionError):
    """The library's server refused the connection, or closed it."""


class ConnectorTimeout(ConnectorError, TimeoutError):
    """The library's server did not answer in time."""


class ProtocolError(ConnectorError, ValueError):
    """The server's answer is not valid Z39.50 or SRU."""


class Diagnostic(ConnectorError):
    """The server answered with a diagnostic (Bib-1 for Z39.50, SRU diagnostics for SRU)."""

    def __init__(self, code: int | str | None, message: str, detail: str | None = None,
                 *, diagnostic_set: str = "bib-1") -> None:
        self.code = code
        self.message = message
        self.detail = detail
        self.diagnostic_set = diagnostic_set
        text = f"{message} (diagnostic {code})" if code is not None else message
        super().__init__(f"{text}: {detail}" if detail else text)


# --- interlibrary loan (ill/) -------------------------------------------------------------
# Raised by the ILL service layer; the web front end turns them into 422/409/403/404/401/429.
# Their messages are for the person who acted, in Chinese.


class ValidationFailed(BalisError, ValueError):
    """A form or API payload has missing or invalid fields: ``errors`` maps field -> message.

    ``errors_en`` holds the same messages in English, for API clients that ask for it."""

    def __init__(self, errors: dict[str, str], errors_en: dict[str, str] | None = None) -> None:
        self.errors = dict(errors)
        self.errors_en = dict(errors_en or errors)
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))


class Conflict(BalisError, RuntimeError):
    """The action cannot be taken in the object's current state (or someone else was first)."""


class Forbidden(BalisError, PermissionError):
    """The acting user may not see or change this object."""


class NotFound(BalisError, LookupError):
    """No such object (request, user, closure ...)."""


class AuthenticationFailed(BalisError, PermissionError):
    """Wrong login or password, or an account that may not log in (yet)."""


class Throttled(AuthenticationFailed):
    """Too many failed logins for this account: try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class IndexFileError(BalisError, OSError):
    """A union index file is missing, unreadable, or not a union index."""
