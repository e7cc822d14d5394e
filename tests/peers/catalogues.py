"""In-process servers for the consortium's own protocol servers, and a small catalogue.

``MemoryCatalogue``
    A ``connectors.catalogue.Catalogue`` over records read with ``marc.read_file``: a plain
    word match over the normalized records (a CJK term matches as a substring; right
    truncation on the last word; year relations), enough to give the protocol servers
    known answers. Not the project's local catalogue (broker/catalogues/marc_file.py).
``LoopThread``
    An asyncio event loop in a daemon thread, so a server built on it answers while the
    test blocks in ``yaz-client`` or in ``asyncio.run`` of its own client.
``yaz_client_sru``
    YAZ's ``yaz-client`` over SRU (``open http://...``), the reference client.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

import pymarc

from broker.kernel.cql import Boolean, Clause, Node
from marc import Record, normalize, read_file
from marc.normalization.text import isbn13

T = TypeVar("T")
_WORD = re.compile(r"\w+")


class MemoryResultSet:
    def __init__(self, records: list[pymarc.Record]) -> None:
        self.records = records
        self.hits = len(records)

    async def fetch(self, start: int, count: int) -> list[pymarc.Record]:
        return self.records[max(0, start - 1):max(0, start - 1) + max(0, count)]


class MemoryCatalogue:
    """Records from MARC files, searched by a plain match over their normalized form."""

    def __init__(self, name: str, flavour: str, files: Iterable[Path],
                 encoding: str = "auto") -> None:
        self.name = name
        self.flavour = flavour
        self.entries: list[tuple[Record, pymarc.Record]] = []
        for path in files:
            for entry in read_file(path, flavour=flavour, encoding=encoding):
                if entry.record is not None:
                    self.entries.append((normalize(entry.record, flavour=flavour),
                                         entry.record))

    def matching(self, query: Node) -> list[Record]:
        return [norm for norm, _ in self.entries if matches(query, norm)]

    async def search(self, query: Node) -> MemoryResultSet:
        return MemoryResultSet([marc for norm, marc in self.entries if matches(query, norm)])


def _texts(index: str, r: Record) -> list[str]:
    title = [r.title or "", r.subtitle or ""]
    authors = [*r.authors, r.responsibility or ""]
    return {
        "title": title, "author": authors, "subject": list(r.subjects),
        "publisher": [r.publisher or ""], "isbn": list(r.isbns), "issn": list(r.issns),
        "callnumber": list(r.call_numbers),
        "any": [*title, *authors, *r.subjects, r.publisher or "", *r.isbns, *r.issns],
    }[index]


def matches(node: Node, r: Record) -> bool:
    if isinstance(node, Boolean):
        left = matches(node.left, r)
        if node.op == "and":
            return left and matches(node.right, r)
        if node.op == "or":
            return left or matches(node.right, r)
        return left and not matches(node.right, r)
    return _clause(node, r)


def _clause(c: Clause, r: Record) -> bool:
    if c.index == "year":
        if r.year is None:
            return False
        year = int(c.term)
        return {"=": r.year == year, "<": r.year < year, ">": r.year > year,
                "<=": r.year <= year, ">=": r.year >= year}[c.relation]
    if c.index == "isbn":
        wanted = isbn13(c.term) or c.term
        return wanted in r.isbns
    texts = [t.casefold() for t in _texts(c.index, r) if t]
    term = c.term.casefold()
    if not term.isascii():
        squeezed = term.replace(" ", "")
        return any(squeezed in t.replace(" ", "") for t in texts)
    words = _WORD.findall(term)
    have = {w for t in texts for w in _WORD.findall(t)}
    if c.truncated and words:
        *whole, last = words
        return all(w in have for w in whole) and any(w.startswith(last) for w in have)
    if c.relation in ("=", "adj", "==") and len(words) > 1:
        return any(" ".join(words) in " ".join(_WORD.findall(t)) for t in texts)
    if c.relation == "any":
        return any(w in have for w in words)
    return all(w in have for w in words)


class LoopThread:
    """An event loop running in a daemon thread; ``run(coro)`` waits for a result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                        name="test-loop")
        self._thread.start()

    def run(self, coroutine: Awaitable[T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def call(self, factory: Callable[[], Awaitable[T]], timeout: float = 120) -> T:
        async def wrapper() -> T:
            return await factory()
        return self.run(wrapper(), timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def yaz_client_sru(url: str, commands: Sequence[str], *, timeout: float = 60,
                   marc_file: Path | None = None) -> str:
    """yaz-client over SRU: ``open URL``, the commands, ``quit``; its whole output."""
    lines = [f"open {url}", *commands, "quit"]
    with tempfile.NamedTemporaryFile("w", suffix=".yaz", encoding="utf-8",
                                     delete=False) as f:
        f.write("\n".join(lines) + "\n")
        name = f.name
    argv = ["yaz-client", "-f", name]
    if marc_file is not None:
        argv[1:1] = ["-m", str(marc_file)]
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout, check=False)
    finally:
        os.unlink(name)
    return (done.stdout + done.stderr).decode("utf-8", errors="replace")
