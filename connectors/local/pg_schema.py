"""The union index in PostgreSQL: where it lives, its tables, and its text as tsvectors.

``balis index build`` writes the SQLite file (the build's working state: the matcher's keys
and evidence live there); ``broker.union_index.publish`` copies it into PostgreSQL, where
readers' processes on several machines share one index; ``connectors.local.pg_index``
searches it. The format lives here, below both, as ``index_file`` does for SQLite.

Where: a URL ``postgresql://user@host:port/database``, with an optional ``schema=NAME``
query parameter (default ``balis_union``): each index is a schema of its own, so several
can share a database. The other query parameters are libpq's (``sslmode``...).

Text: the 'simple' configuration would re-parse our text, so the tsvectors are written
here, from the folding the SQLite engine uses (``keys.phrase_form``, see ``pg_form``), with
every CJK character one position: at each position the token is the character's bigram
(it and the next one of its run) or, for a run's last character, the character alone. A
CJK word of n characters is then the phrase of its n-1 bigrams (``中国经济``: 中国 <-> 国经
<-> 经济), one character is the prefix ``中:*`` (every token that starts with it), and the
semantics are the SQLite engine's: adjacent characters anywhere in a value. A field's
values are ``GAP`` positions apart, so no phrase runs from one value into the next.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from broker.kernel.errors import UsageError
from connectors.local.keys import phrase_form

PG_SCHEMA_VERSION = 1
DEFAULT_SCHEMA = "balis_union"
TEXT_COLUMNS = ("title", "author", "subject", "publisher")  # searchable by name
VALUE_COLUMNS = (*TEXT_COLUMNS, "extra")  # each field's folded values, for ==
ANY = "any_text"  # every field's text (``any`` is a reserved word in SQL)
GAP = 3  # positions between two values of a field (more than any phrase step, 2)
MAX_POSITION = 16383  # PostgreSQL's largest tsvector position
MAX_POSITIONS = 256  # positions kept per lexeme (PostgreSQL's limit)
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# The characters written one to a position, as index_file.text_form writes them for FTS5
# (kana, CJK ideographs, hangul): the two engines must agree on what a character is.
_CJK_CHAR = re.compile("[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uac00-\ud7af"
                       "\U00020000-\U0003134f]")


@dataclass(frozen=True, slots=True)
class PgTarget:
    """A published index's place: libpq's connection string, the schema, and the URL as
    it may be shown (without its password)."""

    conninfo: str
    schema: str
    shown: str


def parse_url(url: str) -> PgTarget:
    """``postgresql://...[?schema=NAME]`` (or SQLAlchemy's ``postgresql+psycopg://``) as a
    PgTarget; UsageError (one sentence, no password) for anything else."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise UsageError(f"{_hide(url)} is not a PostgreSQL URL (postgresql://host/database)")
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = DEFAULT_SCHEMA
    rest = []
    for key, value in query:
        if key == "schema":
            schema = value
        else:
            rest.append((key, value))
    if not _SCHEMA_NAME.match(schema):
        raise UsageError(f"schema {schema!r} in {_hide(url)} must be lowercase letters, digits "
                         "and _ (at most 63)")
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(rest), ""))
    return PgTarget(conninfo, schema, _hide(url))


def _hide(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


# --- tables ------------------------------------------------------------------------------

def tables_ddl() -> list[str]:
    """The tables, in the schema ``search_path`` names; indexes come after the first load."""
    tsv = ", ".join(f"{c} tsvector NOT NULL" for c in (*TEXT_COLUMNS, ANY))
    values = ", ".join(f"{c}_values text[] NOT NULL" for c in VALUE_COLUMNS)
    return [
        "CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)",
        # digest: of the cluster's name, best record and records, so a later publish
        # rewrites only the clusters whose digest changed.
        "CREATE TABLE clusters (id bigint PRIMARY KEY, name text NOT NULL, best bigint, "
        "digest bytea NOT NULL)",
        "CREATE TABLE records (id bigint PRIMARY KEY, library text NOT NULL, record_id text, "
        "cluster bigint NOT NULL, year integer, data text NOT NULL, marc bytea, flavour text, "
        f"{tsv}, {values})",
        # "C": byte order, so a truncated identifier (LIKE 'prefix%') uses the B-tree.
        'CREATE TABLE identifiers (kind text COLLATE "C" NOT NULL, '
        'value text COLLATE "C" NOT NULL, record bigint NOT NULL)',
    ]


def indexes_ddl() -> list[str]:
    gin = [f"CREATE INDEX records_{c} ON records USING gin ({c})" for c in (*TEXT_COLUMNS, ANY)]
    return [*gin,
            "CREATE INDEX records_cluster ON records (cluster, id)",
            "CREATE INDEX records_year ON records (year, cluster)",
            "CREATE INDEX identifiers_key ON identifiers (kind, value)",
            "CREATE INDEX identifiers_record ON identifiers (record)"]


# --- text --------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1 << 17)
def pg_form(value: str) -> str:
    """A value as the PostgreSQL index holds it (and a term as it is looked for): folded by
    ``keys.phrase_form`` (the SQLite engine's folding), each CJK character a word of its
    own. Ours, not ``index_file.text_form``, so the SQLite file's own layout may change."""
    form = phrase_form(value)
    if _CJK_CHAR.search(form):
        form = " ".join(_CJK_CHAR.sub(lambda m: f" {m.group()} ", form).split())
    return form


@functools.lru_cache(maxsize=65536)
def value_tokens(form: str) -> tuple[str, ...]:
    """A folded value's tokens, one per position (see the module's docstring)."""
    words = form.split()
    cjk = [len(w) == 1 and _CJK_CHAR.match(w) is not None for w in words]
    return tuple(word + words[i + 1] if cjk[i] and i + 1 < len(words) and cjk[i + 1]
                 else word for i, word in enumerate(words))


def _is_cjk(token: str) -> bool:
    return len(token) == 1 and _CJK_CHAR.match(token) is not None


def bigram_form(forms: Iterable[str]) -> str:
    """The tsvector (PostgreSQL's input syntax) of a field's folded values."""
    positions: dict[str, list[int]] = {}
    position = 1
    for form in forms:
        for token in value_tokens(form):
            at = positions.get(token)
            if at is None:
                positions[token] = [position]
            elif len(at) < MAX_POSITIONS and position <= MAX_POSITION:
                at.append(position)
            position += 1
        position += GAP
    return " ".join(f"{_lexeme(token)}:{','.join(map(str, at))}"
                    for token, at in positions.items())


@functools.lru_cache(maxsize=65536)
def _lexeme(token: str) -> str:
    return "'" + token.replace("\\", "\\\\").replace("'", "''") + "'"


def phrase_query(form: str, truncated: bool) -> str | None:
    """The tsquery of a folded term: its positions in order, each step the distance from
    the last position matched to the next item's. A CJK run of n > 1 characters is its
    n-1 bigrams (its last character lies inside the last bigram, so the next item is two
    positions on); one CJK character is a prefix; right truncation extends a Latin word
    (a CJK term is found anywhere in a value already)."""
    words = form.split()
    if not words:
        return None
    items: list[tuple[str, int]] = []  # (tsquery, distance to the next item)
    i = 0
    while i < len(words):
        run = i
        while run < len(words) and _is_cjk(words[run]):
            run += 1
        if run - i >= 2:
            bigrams = [_lexeme(words[j] + words[j + 1]) for j in range(i, run - 1)]
            items.append((_chain(bigrams, [1] * (len(bigrams) - 1)), 2))
            i = run
        elif run - i == 1:
            items.append((f"{_lexeme(words[i])}:*", 1))
            i += 1
        else:
            last = i == len(words) - 1
            star = ":*" if truncated and last else ""
            items.append((f"{_lexeme(words[i])}{star}", 1))
            i += 1
    return _chain([q for q, _ in items], [d for _, d in items[:-1]])


def _chain(parts: Sequence[str], steps: Sequence[int]) -> str:
    out = parts[0]
    for part, step in zip(parts[1:], steps, strict=True):
        op = "<->" if step == 1 else f"<{step}>"
        out = f"({out} {op} {part})"
    return out
