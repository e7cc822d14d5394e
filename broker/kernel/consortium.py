"""The consortium's directory as values: libraries, their connectors and ILL terms, and
the consortium around them (what ``broker.kernel.config`` builds from ``libraries.yaml``).

Frozen dataclasses, no I/O; ``broker.kernel.config`` re-exports every name, so callers import
them from there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import urlsplit

from broker.kernel.errors import ConfigError

INSTANCE_VARIABLE = "BALIS_INSTANCE"


def instance_dir() -> Path:
    """This installation's own files (the ILL database, the web's secret key, portal
    pages if it has its own): $BALIS_INSTANCE, else ``instance/`` in the current directory.
    ``balis serve``, ``balis demo`` and ``balis user add`` all use it, so run them from the
    same directory (or set the variable) and they share one database."""
    return Path(os.environ.get(INSTANCE_VARIABLE) or "instance").resolve()

# The protocols a connector speaks; ``connectors.registry`` maps each to its code.
Protocol = Literal["z3950", "sru", "local"]
PROTOCOLS: tuple[Protocol, ...] = get_args(Protocol)
# The MARC flavour a member sends (marc.flavour.Flavour, named here again: the kernel
# imports nothing above it).
MarcFormat = Literal["marc21", "unimarc"]
FORMATS: tuple[MarcFormat, ...] = get_args(MarcFormat)
ConfigEncoding = Literal["utf-8", "marc-8", "gb18030"]
CONFIG_ENCODINGS: tuple[ConfigEncoding, ...] = get_args(ConfigEncoding)
SruVersion = Literal["1.1", "1.2", "2.0"]
SRU_VERSIONS: tuple[SruVersion, ...] = get_args(SruVersion)
# Z39.50 record syntaxes a member can be asked for; "opac" is the bibliographic MARC with
# each copy's circulation (availability, due date), from members that serve it.
RecordSyntax = Literal["usmarc", "marc21", "unimarc", "xml", "opac"]
RECORD_SYNTAXES: tuple[RecordSyntax, ...] = get_args(RecordSyntax)
# A harvest's query when neither --query nor the connector's all_records says otherwise:
# CQL's own "every record", and the Bib-1 form YAZ's CQL mapping gives it (Zebra knows it;
# a server that does not answers with a diagnostic, and the library then needs all_records).
DEFAULT_ALL_RECORDS = {"sru": "cql.allRecords=1", "z3950": '@attr 1=_ALLRECORDS @attr 2=103 ""'}
INDEX_NAMES = ("any", "title", "author", "subject", "isbn", "issn", "publisher", "year",
               "callnumber")


@dataclass(frozen=True, slots=True)
class Contact:
    name: str | None = None
    phone: str | None = None
    email: str | None = None


DEFAULT_FINE_PER_DAY = 0.1  # yuan per overdue day, charged on the lender's behalf


@dataclass(frozen=True, slots=True)
class IllPolicy:
    cancel_window_minutes: int = 60
    loan_days: int = 28
    lends: bool = True  # false: the library borrows for its readers but lends to nobody
    fine_per_day: float = 0.1  # yuan per overdue day (DEFAULT_FINE_PER_DAY)
    # false: readers may ask it only from one of its records, never by the direct request
    # form (BALIS: the National Library takes no request typed in without a record).
    direct_requests: bool = True


@dataclass(frozen=True, slots=True)
class ConnectorConfig:
    protocol: Protocol
    url: str
    format: MarcFormat = "marc21"
    encoding: ConfigEncoding = "utf-8"
    timeout: float = 10.0
    max_records: int = 20
    indexes: dict[str, str] = field(default_factory=dict)
    # SRU only: the record schema to ask for, and the protocol version.
    record_schema: str = "marcxml"
    sru_version: SruVersion = "1.2"
    # Z39.50 only: the record syntax (default: usmarc or unimarc, from format) and the
    # element set name (F; XML servers such as Zebra want e.g. marcxml).
    record_syntax: RecordSyntax | None = None
    element_set: str = "F"
    # local only: the union index file (balis index build), made absolute when loaded.
    path: str | None = None
    # The member's own query for "every record" (SRU: its CQL; Z39.50: PQF), for harvests.
    all_records: str | None = None

    @property
    def all_records_query(self) -> str:
        """What ``balis harvest`` sends when not given ``--query``."""
        return self.all_records or DEFAULT_ALL_RECORDS[self.protocol]

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        default = {"z3950": 210, "http": 80, "https": 443}.get(parts.scheme, 210)
        return parts.port or default

    @property
    def database(self) -> str:
        """Everything after the first '/' following host:port, literally (YAZ's rule)."""
        rest = self.url.split("://", 1)[-1]
        return rest.split("/", 1)[1] if "/" in rest else "Default"


@dataclass(frozen=True, slots=True)
class Library:
    id: str
    name: str
    category: str
    contact: Contact = Contact()
    ill: IllPolicy = IllPolicy()
    connector: ConnectorConfig | None = None
    initials: str | None = None  # pinyin initials override (polyphonic names)
    # For the reader's member directory (portal): where the library is and when it opens.
    address: str | None = None
    hours: str | None = None

    @property
    def searchable(self) -> bool:
        return self.connector is not None


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Consortium:
    name: str
    max_selected: int
    categories: tuple[Category, ...]
    libraries: tuple[Library, ...]
    path: Path | None = None

    def library(self, library_id: str) -> Library:
        for library in self.libraries:
            if library.id == library_id:
                return library
        raise ConfigError(f"no library {library_id!r} in {self.path or 'the configuration'}")
