"""The consortium directory: ``config/libraries.yaml`` (CONTRACTS section 2), validated.

Every problem is reported with its line, all at once, so a librarian fixes the file in one
pass. Unknown keys are errors (a typo must not silently become a default).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from broker.kernel.consortium import (  # noqa: F401  (re-exported: the config's values)
    CONFIG_ENCODINGS,
    DEFAULT_ALL_RECORDS,
    DEFAULT_FINE_PER_DAY,
    FORMATS,
    INDEX_NAMES,
    INSTANCE_VARIABLE,
    PROTOCOLS,
    RECORD_SYNTAXES,
    SRU_VERSIONS,
    Category,
    ConnectorConfig,
    Consortium,
    Contact,
    IllPolicy,
    Library,
    Protocol,
    instance_dir,
)
from broker.kernel.errors import ConfigError, QueryError
from broker.kernel.literals import one_of
from broker.kernel.pqf import parse_pqf

_ID = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")  # library and category ids

# --- loading ------------------------------------------------------------------------------


class _Problems:
    def __init__(self, path: str) -> None:
        self.path = path
        self.items: list[str] = []

    def add(self, node: yaml.Node | None, message: str) -> None:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        self.items.append(f"{self.path}{line}: {message}")


def load(path: str | Path) -> Consortium:
    """Read and validate a libraries file; ConfigError lists every problem with its line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (give --config or set BALIS_CONFIG)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from None
    return loads(text, str(path), path)


def loads(text: str, name: str = "<config>", path: Path | None = None) -> Consortium:
    problems = _Problems(name)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{name}{where}: not valid YAML: {reason}") from None
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{name}: the file must be a mapping with consortium, categories "
                          "and libraries")
    top = _mapping(root, problems, {"consortium", "defaults", "categories", "libraries"})
    consortium = _mapping(top.get("consortium"), problems, {"name", "max_selected"})
    defaults = _mapping(top.get("defaults"), problems, {"timeout", "max_records"})
    categories = _categories(top.get("categories"), problems)
    libraries = _libraries(top.get("libraries"), problems, defaults, {c.id for c in categories},
                           path.parent if path is not None else None)
    result = Consortium(
        name=_str(consortium.get("name"), problems, "consortium name") or "BALIS",
        max_selected=_int(consortium.get("max_selected"), problems, "max_selected", 10, 1),
        categories=tuple(categories),
        libraries=tuple(libraries),
        path=path,
    )
    if problems.items:
        raise ConfigError("\n".join(problems.items))
    return result


def _mapping(node: yaml.Node | None, problems: _Problems, allowed: set[str]
             ) -> dict[str, yaml.Node]:
    """A mapping node's values by key (still nodes); unknown and duplicate keys reported."""
    if node is None or (isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null")):
        return {}
    if not isinstance(node, yaml.MappingNode):
        problems.add(node, "expected a mapping (key: value lines)")
        return {}
    out: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if key not in allowed:
            problems.add(key_node, f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")
        elif key in out:
            problems.add(key_node, f"key {key!r} given twice")
        else:
            out[key] = value_node
    return out


def _scalar(node: yaml.Node | None) -> Any:
    if node is None:
        return None
    if not isinstance(node, yaml.ScalarNode):
        return node
    return yaml.safe_load(yaml.serialize(node))


def _str(node: yaml.Node | None, problems: _Problems, what: str, required: bool = False
         ) -> str | None:
    value = _scalar(node)
    if value is None:
        if required:
            problems.add(node, f"{what} is required")
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        problems.add(node, f"{what} must be text")
        return None
    return str(value).strip() or None


def _int(node: yaml.Node | None, problems: _Problems, what: str, default: int,
         minimum: int = 0) -> int:
    value = _scalar(node)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        problems.add(node, f"{what} must be a whole number of at least {minimum}")
        return default
    return value


def _number(node: yaml.Node | None, problems: _Problems, what: str, default: float) -> float:
    value = _scalar(node)
    if value is None:
        return default
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        problems.add(node, f"{what} must be a positive number of seconds")
        return default
    return float(value)


def _bool(node: yaml.Node | None, problems: _Problems, what: str, default: bool) -> bool:
    value = _scalar(node)
    if value is None:
        return default
    if not isinstance(value, bool):
        problems.add(node, f"{what} must be true or false")
        return default
    return value


def _fine(node: yaml.Node | None, problems: _Problems, what: str) -> float:
    value = _scalar(node)
    if value is None:
        return DEFAULT_FINE_PER_DAY
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        problems.add(node, f"{what} must be a number of yuan, 0 or more")
        return DEFAULT_FINE_PER_DAY
    return float(value)


def _categories(node: yaml.Node | None, problems: _Problems) -> list[Category]:
    if node is None:
        problems.add(None, "no categories: list them under 'categories'")
        return []
    if not isinstance(node, yaml.SequenceNode):
        problems.add(node, "categories must be a list")
        return []
    out: list[Category] = []
    for item in node.value:
        values = _mapping(item, problems, {"id", "name"})
        cid = _str(values.get("id"), problems, "category id", required=True)
        name = _str(values.get("name"), problems, "category name", required=True)
        if cid and not _ID.match(cid):
            problems.add(values.get("id"), f"category id {cid!r} must be lowercase ASCII")
        elif cid in {c.id for c in out}:
            problems.add(values.get("id"), f"category id {cid!r} given twice")
        elif cid and name:
            out.append(Category(cid, name))
    return out


def _libraries(node: yaml.Node | None, problems: _Problems, defaults: dict[str, yaml.Node],
               categories: set[str], base: Path | None = None) -> list[Library]:
    if node is None or not isinstance(node, yaml.SequenceNode):
        problems.add(node, "libraries must be a list")
        return []
    default_timeout = _number(defaults.get("timeout"), problems, "defaults timeout", 10.0)
    default_max = _int(defaults.get("max_records"), problems, "defaults max_records", 20, 1)
    out: list[Library] = []
    seen: set[str] = set()
    keys = {"id", "name", "category", "contact", "ill", "connector", "initials", "address",
            "hours"}
    for item in node.value:
        values = _mapping(item, problems, keys)
        lid = _str(values.get("id"), problems, "library id", required=True)
        where = f"library {lid!r}: " if lid else ""
        if lid and not _ID.match(lid):
            problems.add(values.get("id"), f"library id {lid!r} must be lowercase ASCII "
                                           "(letters, digits, - and _)")
        elif lid in seen:
            problems.add(values.get("id"), f"library id {lid!r} given twice")
        name = _str(values.get("name"), problems, f"{where}name", required=True)
        category = _str(values.get("category"), problems, f"{where}category", required=True)
        if category and category not in categories:
            problems.add(values.get("category"), f"{where}unknown category {category!r}")
        contact = _mapping(values.get("contact"), problems, {"name", "phone", "email"})
        ill = _mapping(values.get("ill"), problems,
                       {"cancel_window_minutes", "loan_days", "lends", "fine_per_day",
                        "direct_requests"})
        initials = _str(values.get("initials"), problems, f"{where}initials")
        if initials and not initials.isascii():
            problems.add(values.get("initials"), f"{where}initials must be ASCII letters")
        connector = None
        if "connector" in values:
            connector = _connector(values["connector"], problems, where, default_timeout,
                                   default_max, base)
        if lid and name and category:
            seen.add(lid)
            out.append(Library(
                id=lid, name=name, category=category,
                contact=Contact(*(_str(contact.get(k), problems, f"{where}contact {k}")
                                  for k in ("name", "phone", "email"))),
                ill=IllPolicy(
                    _int(ill.get("cancel_window_minutes"), problems,
                         f"{where}cancel_window_minutes", 60),
                    _int(ill.get("loan_days"), problems, f"{where}loan_days", 28, 1),
                    _bool(ill.get("lends"), problems, f"{where}lends", True),
                    _fine(ill.get("fine_per_day"), problems, f"{where}fine_per_day"),
                    _bool(ill.get("direct_requests"), problems, f"{where}direct_requests",
                          True)),
                connector=connector,
                initials=initials.lower() if initials else None,
                address=_str(values.get("address"), problems, f"{where}address"),
                hours=_str(values.get("hours"), problems, f"{where}hours"),
            ))
    return out


def _connector(node: yaml.Node, problems: _Problems, where: str, default_timeout: float,
               default_max: int, base: Path | None = None) -> ConnectorConfig | None:
    keys = {"protocol", "url", "format", "encoding", "timeout", "max_records", "indexes",
            "record_schema", "sru_version", "record_syntax", "element_set",
            "path", "all_records"}
    values = _mapping(node, problems, keys)
    protocol_name = _str(values.get("protocol"), problems, f"{where}connector protocol", True)
    local = protocol_name == "local"
    url = _str(values.get("url"), problems, f"{where}connector url", not local)
    fmt_name = _str(values.get("format"), problems, f"{where}format") or "marc21"
    encoding_name = (_str(values.get("encoding"), problems, f"{where}encoding")
                     or "utf-8").lower()
    ok = True
    protocol = one_of(protocol_name, PROTOCOLS)
    if protocol is None:
        problems.add(values.get("protocol"), f"{where}protocol must be one of "
                                             f"{', '.join(PROTOCOLS)}, not {protocol_name!r}")
        ok = False
    fmt = one_of(fmt_name, FORMATS)
    if fmt is None:
        problems.add(values.get("format"), f"{where}format must be marc21 or unimarc "
                                           f"(CNMARC is unimarc), not {fmt_name!r}")
        ok = False
    encoding = one_of(encoding_name, CONFIG_ENCODINGS)
    if encoding is None:
        problems.add(values.get("encoding"), f"{where}encoding must be one of "
                                             f"{', '.join(CONFIG_ENCODINGS)}")
        ok = False
    if url and protocol is not None and not local:
        message = _url_problem(url, protocol)
        if message:
            problems.add(values.get("url"), f"{where}{message}")
            ok = False
    version = one_of(_str(values.get("sru_version"), problems, f"{where}sru_version")
                      or "1.2", SRU_VERSIONS)
    if version is None:
        problems.add(values.get("sru_version"), f"{where}sru_version must be one of "
                                                f"{', '.join(SRU_VERSIONS)}")
        ok = False
    syntax_name = _str(values.get("record_syntax"), problems, f"{where}record_syntax")
    syntax = one_of(syntax_name, RECORD_SYNTAXES)
    if syntax_name is not None and syntax is None:
        problems.add(values.get("record_syntax"), f"{where}record_syntax must be one of "
                                                  f"{', '.join(RECORD_SYNTAXES)}")
        ok = False
    elif syntax == "opac" and protocol is not None and protocol != "z3950":
        # SRU has no OPAC syntax: availability there comes inside the MARC (952, AVA).
        problems.add(values.get("record_syntax"), f"{where}record_syntax opac is for "
                                                  "Z39.50 members only")
        ok = False
    indexes: dict[str, str] = {}
    index_node = values.get("indexes")
    if index_node is not None:
        raw = _mapping(index_node, problems, set(INDEX_NAMES))
        for key, value_node in raw.items():
            value = _str(value_node, problems, f"{where}index {key}")
            if value:
                indexes[key] = value
    all_records = _str(values.get("all_records"), problems, f"{where}all_records")
    if all_records and protocol == "z3950":
        try:
            parse_pqf(all_records)
        except QueryError as exc:
            problems.add(values.get("all_records"), f"{where}all_records must be a PQF "
                                                    f"(Bib-1) query for Z39.50: {exc}")
            ok = False
    index_path = _index_path(values, problems, where, local, base, url)
    if local and index_path is not None:
        url = Path(index_path).as_uri()
    if not (ok and url) or (local and index_path is None and not _is_postgres(url)):
        return None
    # Each of these None was reported above, which made ok false; asked again for the types.
    if protocol is None or fmt is None or encoding is None or version is None:
        return None
    return ConnectorConfig(
        protocol=protocol, url=url, format=fmt, encoding=encoding,
        timeout=_number(values.get("timeout"), problems, f"{where}timeout", default_timeout),
        max_records=_int(values.get("max_records"), problems, f"{where}max_records",
                         default_max, 1),
        indexes=indexes,
        record_schema=_str(values.get("record_schema"), problems, f"{where}record_schema")
        or "marcxml",
        sru_version=version,
        record_syntax=syntax,
        element_set=_str(values.get("element_set"), problems, f"{where}element_set") or "F",
        path=index_path,
        all_records=all_records,
    )


def _index_path(values: dict[str, yaml.Node], problems: _Problems, where: str, local: bool,
                base: Path | None, url: str | None = None) -> str | None:
    """A local library's index file, relative to the libraries file's directory."""
    value = _str(values.get("path"), problems, f"{where}connector path")
    if not local:
        if value is not None:
            problems.add(values.get("path"), f"{where}path is only for protocol local")
        return None
    # A local library's index is either a file (path) or published into PostgreSQL
    # (url: postgresql://..., balis index publish): exactly one of them.
    if url is not None and value is not None:
        problems.add(values.get("url"), f"{where}a local library takes path (its union "
                                        "index file) or url (postgresql://...), not both")
        return None
    if url is not None:
        if not _is_postgres(url):
            problems.add(values.get("url"), f"{where}a local library's url must be "
                                            "postgresql://host/database (an index published "
                                            f"with 'balis index publish'), not {url!r}; an "
                                            "index file is path")
        return None
    if value is None:
        problems.add(values.get("protocol"), f"{where}protocol local needs path: the union "
                                             "index file (balis index build --out), or url: "
                                             "its PostgreSQL copy (balis index publish)")
        return None
    path = Path(value).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    return str(path.absolute())


def _is_postgres(url: str | None) -> bool:
    """A PostgreSQL URL with a host or a socket (connectors.local.pg_index searches it)."""
    if not url:
        return False
    parts = urlsplit(url)
    return parts.scheme in ("postgresql", "postgres") and bool(parts.netloc or parts.query)


def _url_problem(url: str, protocol: Protocol) -> str | None:
    parts = urlsplit(url)
    schemes = ("z3950", "tcp") if protocol == "z3950" else ("http", "https")
    if parts.scheme not in schemes:
        return (f"url {url!r} must start with {' or '.join(s + '://' for s in schemes)} "
                f"for protocol {protocol}")
    try:
        port = parts.port
    except ValueError:
        return f"url {url!r} has an invalid port"
    if not parts.hostname:
        return f"url {url!r} has no host"
    del port
    return None
