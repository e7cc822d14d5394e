"""Batch harvest of one member's catalogue into a file, resumable after any crash.

The output only ever grows by whole batches: a batch of records is appended, the file is
synced, and then the checkpoint ``PATH.checkpoint`` (JSON: next position, hit count,
output length...) is replaced atomically and synced. A crash, a SIGKILL or Ctrl-C can
leave at most a partial batch after the checkpointed length; ``resume`` truncates the
output to that length and goes on from the checkpointed position, so the result equals an
uninterrupted harvest byte for byte (as long as the server keeps its result order).

Transient faults (timeouts, dropped connections) are retried with capped exponential
backoff; a diagnostic (the server refuses the query) ends the harvest at once. A record
the server cannot deliver, or that cannot be read, is reported and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import json
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from broker.harvest.formats import CHECKPOINT_VERSION, OutputFormat, checkpoint_path
from broker.harvest.writers import Converted, Writer
from broker.kernel.config import Library
from broker.kernel.cql import Node, parse
from broker.kernel.errors import (
    BalisError,
    ConnectorError,
    ConnectorTimeout,
    Unreachable,
    UsageError,
)
from connectors.paging import Pager, RateLimiter, RawItem
from connectors.registry import create_pager, harvestable, native_query

logger = logging.getLogger(__name__)

MAX_PROBLEMS_KEPT = 1000  # reasons kept for the summary; the count is always exact
TRANSIENT = (ConnectorTimeout, Unreachable)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class HarvestOptions:
    format: OutputFormat = "iso2709"
    query: str | None = None  # the broker's CQL; None: the library's all_records query
    rate: float | None = None  # requests a second to the member
    chunk: int = 100  # records per request
    retries: int = 5  # attempts after a transient fault, per request
    backoff: float = 1.0  # seconds before the first retry; doubles, up to backoff_cap
    backoff_cap: float = 30.0
    # Seconds to wait for each answer, at least. A member's own timeout is what a reader
    # waiting for a search tolerates; a batch job waits longer for a slow server.
    timeout: float = 60.0


@dataclass(frozen=True, slots=True)
class Checkpoint:
    library: str
    query: str  # what was sent, in the member's own language
    format: str
    hits: int
    next: int  # 1-based position of the first record not yet written
    written: int
    skipped: int
    output_length: int
    done: bool = False
    result_set: str = "default"
    elapsed: float = 0.0  # seconds spent harvesting, over every run
    problems: tuple[str, ...] = ()
    error: str | None = None  # why the last run stopped before the end (balis harvest status)

    def dumps(self) -> bytes:
        data = {"version": CHECKPOINT_VERSION, **asdict(self)}
        data["problems"] = list(self.problems)
        return json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8")

    @classmethod
    def load(cls, path: Path) -> Checkpoint | None:
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise UsageError(f"{path}: the checkpoint cannot be read ({exc}); delete it to "
                             "harvest from the start") from None
        if not isinstance(data, dict) or data.get("version") != CHECKPOINT_VERSION:
            raise UsageError(f"{path}: not a checkpoint of this version of balis")
        data.pop("version")
        try:
            return cls(**{**data, "problems": tuple(data.get("problems", ()))})
        except TypeError as exc:
            raise UsageError(f"{path}: the checkpoint is damaged ({exc})") from None

    def save(self, path: Path) -> None:
        """Replace the checkpoint atomically; synced, so it survives a power cut."""
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, self.dumps())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _sync_dir(path.parent)


@dataclass(frozen=True, slots=True)
class HarvestResult:
    library: str
    path: Path
    done: bool
    hits: int | None
    written: int  # records in the output, over every run
    skipped: int
    problems: tuple[str, ...]  # why records were skipped (the first MAX_PROBLEMS_KEPT)
    elapsed: float  # this run
    error: str | None = None  # why the harvest stopped before the end (resumable)
    already_done: bool = False


@dataclass
class Progress:
    """What a progress display needs, updated after every batch."""

    library: str
    hits: int | None = None
    position: int = 1
    written: int = 0
    skipped: int = 0
    started: float = field(default_factory=time.monotonic)
    done_at_start: int = 0  # positions already harvested when this run began


class Harvest:
    """One harvest run of one library into one file."""

    def __init__(self, library: Library, out: Path, options: HarvestOptions, *,
                 resume: bool = False, report: Callable[[str], None] | None = None,
                 progress: Callable[[Progress], None] | None = None) -> None:
        harvestable(library)  # UsageError for a library that cannot be harvested
        config = library.connector
        assert config is not None  # harvestable() said so
        if config.timeout < options.timeout:
            library = replace(library, connector=replace(config, timeout=options.timeout))
        self.library = library
        self.out = Path(out)
        self.options = options
        self.resume = resume
        self.report = report or (lambda message: logger.warning("%s", message))
        self.on_progress = progress
        config = library.connector
        assert config is not None  # harvestable() said so
        self.writer = Writer(options.format, library.id, config.format,
                             "auto" if config.encoding == "utf-8" else config.encoding)
        self.query: Node | str = (parse(options.query) if options.query
                                  else config.all_records_query)
        # The query in the member's own language: what the checkpoint identifies.
        self.sent = native_query(library, self.query)
        self.checkpoint_file = checkpoint_path(self.out)
        self.state = Progress(library.id)


    async def run(self) -> HarvestResult:
        started = time.monotonic()
        self.out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.out, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UsageError(f"another harvest is writing {self.out}") from None
            checkpoint = self._start(fd)
            if checkpoint.done:
                return self._result(checkpoint, started, already_done=True)
            return await self._harvest(fd, checkpoint, started)
        finally:
            os.close(fd)  # also releases the lock

    def _start(self, fd: int) -> Checkpoint:
        previous = Checkpoint.load(self.checkpoint_file)
        if previous is not None and not self.resume and not previous.done:
            raise UsageError(f"{self.out} is an unfinished harvest: give --resume to go on "
                             f"with it, or delete {self.checkpoint_file.name} to start over")
        if previous is not None and self.resume:
            mine = (self.library.id, self.sent, self.options.format)
            theirs = (previous.library, previous.query, previous.format)
            if mine != theirs:
                raise UsageError(f"{self.checkpoint_file} is for another harvest "
                                 f"(library, query, format {theirs}); cannot resume it")
            if previous.done:
                return previous
            size = os.fstat(fd).st_size
            if size < previous.output_length:
                raise UsageError(f"{self.out} is shorter ({size} bytes) than its checkpoint "
                                 f"says ({previous.output_length}): cannot resume")
            os.ftruncate(fd, previous.output_length)
            os.fsync(fd)
            self.state.done_at_start = previous.written + previous.skipped
            of = f" of {previous.hits}" if previous.hits >= 0 else ""
            self.report(f"{self.library.id}: resuming at record {previous.next}{of} from "
                        f"{self.checkpoint_file.name}")
            return previous
        if self.resume:
            logger.info("%s: no checkpoint at %s; starting from the beginning",
                        self.library.id, self.checkpoint_file)
        os.ftruncate(fd, 0)
        header = self.writer.header()
        _write_all(fd, header)
        os.fsync(fd)
        checkpoint = Checkpoint(self.library.id, self.sent, self.options.format, hits=-1,
                                next=1, written=0, skipped=0, output_length=len(header))
        checkpoint.save(self.checkpoint_file)
        return checkpoint

    async def _harvest(self, fd: int, checkpoint: Checkpoint, started: float
                       ) -> HarvestResult:
        options = self.options
        pager = create_pager(self.library, self.query, limiter=RateLimiter(options.rate))
        elapsed_before = checkpoint.elapsed
        # The last run's reason for stopping no longer holds once this run goes on.
        checkpoint = replace(checkpoint, error=None)
        os.lseek(fd, checkpoint.output_length, os.SEEK_SET)
        try:
            hits = await self._retrying(pager, pager.search)
            checkpoint = self._check_hits(checkpoint, hits)
            self._update(checkpoint)
            while checkpoint.next <= checkpoint.hits:
                start = checkpoint.next
                page = await self._retrying(
                    pager, functools.partial(pager.fetch, start, options.chunk))
                if not page.items:
                    raise ConnectorError(f"the server sent no records at position {start} "
                                         f"of {page.hits}")
                checkpoint = self._check_hits(checkpoint, page.hits)
                converted = await asyncio.to_thread(self._convert, page.items)
                batch = b"".join(item.data for item in converted if item.data is not None)
                problems = [f"record {item.position}: {item.problem}"
                            for item in converted if item.data is None]
                for problem in problems:
                    self.report(f"{self.library.id}: {problem} (skipped)")
                _write_all(fd, batch)
                os.fsync(fd)
                kept = (checkpoint.problems + tuple(problems))[:MAX_PROBLEMS_KEPT]
                checkpoint = replace(
                    checkpoint, next=start + len(page.items),
                    written=checkpoint.written + len(converted) - len(problems),
                    skipped=checkpoint.skipped + len(problems),
                    output_length=checkpoint.output_length + len(batch), problems=kept,
                    elapsed=elapsed_before + time.monotonic() - started)
                checkpoint.save(self.checkpoint_file)
                self._update(checkpoint)
        except (ConnectorError, BalisError) as exc:
            if isinstance(exc, UsageError):
                raise
            checkpoint = replace(checkpoint, elapsed=elapsed_before + time.monotonic() - started,
                                 error=str(exc))
            checkpoint.save(self.checkpoint_file)
            return self._result(checkpoint, started, error=str(exc))
        finally:
            await pager.close()
        footer = self.writer.footer()
        _write_all(fd, footer)
        os.fsync(fd)
        checkpoint = replace(checkpoint, done=True,
                             output_length=checkpoint.output_length + len(footer),
                             elapsed=elapsed_before + time.monotonic() - started)
        checkpoint.save(self.checkpoint_file)
        return self._result(checkpoint, started)

    def _convert(self, items: tuple[RawItem, ...]) -> list[Converted]:
        out: list[Converted] = []
        for item in items:
            if item.data is None:
                out.append(Converted(item.position, None, item.problem))
                continue
            try:
                out.append(self.writer.convert(item.position, item.data))
            except Exception as exc:  # a record no reader foresaw must not end the harvest
                logger.exception("%s: record %d", self.library.id, item.position)
                out.append(Converted(item.position, None, f"cannot be converted: {exc!r}"))
        return out

    def _check_hits(self, checkpoint: Checkpoint, hits: int) -> Checkpoint:
        if checkpoint.hits not in (-1, hits):
            self.report(f"{self.library.id}: the hit count changed from {checkpoint.hits} to "
                        f"{hits} since the harvest began; records may be missing or repeated")
        return replace(checkpoint, hits=hits)

    async def _retrying(self, pager: Pager, call: Callable[[], Awaitable[T]]) -> T:
        options = self.options
        for attempt in range(options.retries + 1):
            try:
                return await call()
            except TRANSIENT as exc:
                await pager.reset()
                if attempt == options.retries:
                    if options.retries:
                        raise ConnectorError(f"{exc} (still failing after {options.retries} "
                                             "retries)") from None
                    raise
                delay = min(options.backoff_cap, options.backoff * 2 ** attempt)
                delay *= random.uniform(0.5, 1.0)  # workers that failed together spread out
                left = options.retries - attempt - 1
                self.report(f"{self.library.id}: {exc}; will retry in {delay:.1f} s "
                            f"({attempt + 1} of {options.retries}, {left} left)")
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _update(self, checkpoint: Checkpoint) -> None:
        state = self.state
        state.hits, state.position = checkpoint.hits, checkpoint.next
        state.written, state.skipped = checkpoint.written, checkpoint.skipped
        if self.on_progress is not None:
            self.on_progress(state)

    def _result(self, checkpoint: Checkpoint, started: float, *, error: str | None = None,
                already_done: bool = False) -> HarvestResult:
        return HarvestResult(self.library.id, self.out, checkpoint.done and error is None,
                             checkpoint.hits if checkpoint.hits >= 0 else None,
                             checkpoint.written, checkpoint.skipped, checkpoint.problems,
                             time.monotonic() - started, error, already_done)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _sync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some filesystems cannot sync a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def harvest_sync(library: Library, out: Path, options: HarvestOptions, **kwargs
                 ) -> HarvestResult:
    """``Harvest(...).run()`` for callers without an event loop (the job queue)."""
    return asyncio.run(Harvest(library, out, options, **kwargs).run())
