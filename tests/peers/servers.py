"""Real Z39.50 / SRU servers for the tests, started on 127.0.0.1 as subprocesses.

``ZebraServer``
    Index Data's Zebra (Debian ``idzebra-2.0``) serving Z39.50 and SRU on one port, with
    three databases built from the MARC test data: ``marc21`` (LC, OCLC, Open Library,
    pymarc and Alma records, CJK 880s included), ``unimarc`` (CNMARC from Beijing Normal
    University, and one Italian UNIMARC record) and, on demand, ``bulk`` (synthetic copies
    of the MARC21 records for harvest benchmarks). The configuration lives in ``zebra/``;
    see ``zebra/README.md`` for what is indexed and how.
``YazZtest``
    YAZ's test server: any database ``Default``, ``slow`` or ``db*``; a term that starts
    with digits gives that many hits; ``Default?search-delay=2`` makes a search take 2 s.
``RedisServer``
    A throwaway ``redis-server`` (Debian ``redis-server``) with no persistence, for the
    sessions several broker processes share (``.url``: ``redis://127.0.0.1:PORT/0``).
``yaz_client_hits`` / ``yaz_client_fetch``
    YAZ's own command-line client, the reference the project's connectors are checked
    against.

Every server runs in a private temporary directory, on a free port, in threaded mode
(``-T``: one process, so stopping it by its PID stops all its sessions), and is stopped
with SIGTERM, then SIGKILL after a timeout. Nothing else is ever signalled.
"""

from __future__ import annotations

import contextlib
import copy
import glob
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from lxml import etree

HOST = "127.0.0.1"
CONFIG_DIR = Path(__file__).resolve().parent / "zebra"
REPO = Path(__file__).resolve().parents[2]
MARC_NS = "http://www.loc.gov/MARC21/slim"
_M = f"{{{MARC_NS}}}"

ZEBRA_TAB_DIRS = ("/usr/share/idzebra-2.0/tab", "/usr/local/share/idzebra-2.0/tab")
ZEBRA_MODULE_GLOBS = (
    "/usr/lib/*/idzebra-2.0/modules",
    "/usr/lib/idzebra-2.0/modules",
    "/usr/local/lib/idzebra-2.0/modules",
)

# (file under testdata/marc, charset for yaz-marcdump; None = MARCXML or an SRU envelope)
MARC21_SOURCES: tuple[tuple[str, str | None], ...] = (
    ("yaz/marccol1.u8.marc", "utf-8"),  # 19 LC records, CJK in 880s
    ("yaz/marccol3.u8.marc", "utf-8"),  # 1 LC record, Chinese 880s
    ("yaz/marccol4.u8.marc", "utf-8"),  # 1 LC record, Japanese 880s
    ("marc4j/summerland.mrc", "marc-8"),  # 1, the classic "Summerland"
    ("pymarc/test.dat", "marc-8"),  # 10 Perl books (MARC-8, ASCII content)
    ("openlibrary/880_alternate_script.mrc", "utf-8"),  # 1, simplified Chinese 880s
    ("marc4j/oclc_63111280_export_as_UTF8_from_connexion.mrc", "utf-8"),  # 1, trad. Chinese
    ("dp2-bnu-alma-sru/sample_marcxml.xml", None),  # 10, Alma's MARC21 of Chinese books
)
UNIMARC_SOURCES: tuple[tuple[str, str | None], ...] = (
    ("derived/bnu_cnmarc.utf8.iso", "utf-8"),  # 10 CNMARC records of BNU (中国发展报告 ...)
    ("pymarc/testunimarc.dat", "utf-8"),  # 1 Italian UNIMARC record (Asimov)
)
# database name -> (DOM filter configuration, sources)
DATABASES = {
    "marc21": ("dom-marc21.xml", MARC21_SOURCES),
    "unimarc": ("dom-unimarc.xml", UNIMARC_SOURCES),
}
BULK_DATABASE = "bulk"

# Bib-1 use attributes that our bib1.att sends to another attribute's index.
_BIB1_ALIASES = {
    "1017": "Any",  # Server-choice
    "1035": "Any",  # Anywhere
    "30": "Date-of-publication",  # Date
    "53": "LC-call-number",  # Number-local-call
}


class PeerError(RuntimeError):
    """A test peer could not be prepared, started or queried."""


class YazClientError(PeerError):
    """yaz-client reported a Bib-1 diagnostic instead of a result."""

    def __init__(self, code: int, message: str, output: str):
        super().__init__(f"diagnostic {code}: {message}")
        self.code = code
        self.message = message
        self.output = output


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def free_port_range(count: int, host: str = HOST) -> int | None:
    """N such that N .. N + count - 1 are all free on ``host`` (as far as we can tell; a
    demo consortium listens on consecutive ports), or None when no range was found."""
    rng = random.Random()
    for _ in range(50):
        base = rng.randrange(30000, 60000 - count)
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind((host, port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    return None


def shared_marc_dir() -> Path:
    """The repository's MARC test data, ``tests/data/marc`` (see its SOURCES.md)."""
    return REPO / "tests" / "data" / "marc"


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text("utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


class _Server:
    """A server subprocess on HOST:port, ready when it accepts TCP connections."""

    program = ""

    def __init__(
        self,
        *,
        host: str = HOST,
        port: int | None = None,
        workdir: str | os.PathLike[str] | None = None,
        startup_timeout: float = 20.0,
    ):
        if shutil.which(self.program) is None:
            raise PeerError(f"{self.program} is not installed")
        self.host = host
        self.port = port or 0
        self._fixed_port = port is not None
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else None
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None

    # -- to be provided by subclasses
    def _prepare(self) -> None:
        """Write configuration and data into self.workdir (once)."""

    def _command(self) -> list[str]:
        raise NotImplementedError

    # -- lifecycle
    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def log_path(self) -> Path:
        assert self.workdir is not None
        return self.workdir / f"{self.program}.log"

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's log (and of its stderr, if it wrote anything there)."""
        assert self.workdir is not None
        text = _tail(self.log_path, lines)
        out = self.workdir / f"{self.program}.stderr"
        if out.is_file() and out.stat().st_size:
            text += f"\n--- stderr:\n{_tail(out, lines)}"
        return text

    def start(self) -> None:
        if self.process is not None:
            raise PeerError(f"{self.program} already started")
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix=f"balis-{self.program}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._prepare()
        for _attempt in range(5):
            if not self._fixed_port:
                self.port = free_port(self.host)
            if self._spawn_and_wait():
                return
            # Someone took the port between free_port() and bind(): try another one.
        raise PeerError(
            f"{self.program} could not bind a port on {self.host}\n{self.log_tail()}"
        )

    def _spawn_and_wait(self) -> bool:
        """True when listening; False when the port was taken; PeerError otherwise."""
        assert self.workdir is not None
        with contextlib.suppress(FileNotFoundError):
            self.log_path.unlink()
        with open(self.workdir / f"{self.program}.stderr", "wb") as err:
            self.process = subprocess.Popen(
                self._command(),
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            failed = self._start_failure()
            if failed is not None:
                return failed
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    pass
            except OSError:
                time.sleep(0.05)
                continue
            # Something accepts connections; make sure it is us: the server logs
            # "Adding ... listener", then either binds or logs [fatal] and exits.
            time.sleep(0.1)
            failed = self._start_failure()
            if failed is not None:
                return failed
            return True
        self.stop()
        raise PeerError(
            f"{self.program} did not accept connections on {self.host}:{self.port} within "
            f"{self.startup_timeout:g} s; its log ends:\n{self.log_tail()}"
        )

    def _start_failure(self) -> bool | None:
        """None while all is well; False for "port taken, try another"; else PeerError."""
        assert self.process is not None
        log = self.log_tail(200)
        if self.process.poll() is None and "[fatal]" not in log:
            return None
        self.stop()
        if not self._fixed_port and "in use" in log:
            return False
        raise PeerError(
            f"{self.program} failed to start on {self.host}:{self.port}; its log ends:\n"
            f"{self.log_tail()}"
        )

    def stop(self, timeout: float = 3.0) -> None:
        """SIGTERM our own process, SIGKILL it if it has not gone after ``timeout``.

        (A threaded YAZ server that gets SIGTERM within a few milliseconds of accepting a
        connection does not exit at all; that is what the SIGKILL is for.)"""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def close(self) -> None:
        """Stop, and remove the temporary directory if we made it."""
        self.stop()
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def z3950_url(self, database: str) -> str:
        """``z3950://host:port/database``, as a library's ``connector.url``."""
        return f"z3950://{self.host}:{self.port}/{database}"

    def sru_url(self, database: str) -> str:
        """The SRU base URL of a database: ``http://host:port/database``."""
        return f"http://{self.host}:{self.port}/{database}"


# ---------------------------------------------------------------------------------------
# Zebra


def _find_dir(candidates: Iterable[str], what: str) -> str:
    for pattern in candidates:
        for found in sorted(glob.glob(pattern)):
            if os.path.isdir(found):
                return found
    raise PeerError(f"Zebra's {what} directory not found (looked in {', '.join(candidates)})")


def marcxml_records(path: Path, charset: str | None) -> list[etree._Element]:
    """The records of a MARC file as MARC21-slim ``record`` elements.

    ISO 2709 goes through ``yaz-marcdump`` (which knows MARC-8); MARCXML and SRU
    envelopes are read directly (only records in the MARC21 slim namespace)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    if charset is None:
        root = etree.parse(str(path), parser).getroot()
    else:
        done = subprocess.run(
            ["yaz-marcdump", "-i", "marc", "-o", "marcxml", "-f", charset, "-t", "utf-8",
             str(path)],
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            reason = done.stderr.decode(errors="replace")
            raise PeerError(f"yaz-marcdump failed on {path}: {reason}")
        root = etree.fromstring(done.stdout, parser)
    records = root.findall(f".//{_M}record")
    if root.tag == f"{_M}record":
        records = [root]
    if not records:
        raise PeerError(f"no MARC21-slim records in {path}")
    return records


def write_collection(records: Iterable[etree._Element], path: Path) -> int:
    """Write records as one MARCXML collection (streaming); return how many."""
    count = 0
    with etree.xmlfile(str(path), encoding="utf-8") as out:
        out.write_declaration()
        with out.element(f"{_M}collection", nsmap={None: MARC_NS}):
            for record in records:
                out.write(record)
                count += 1
    return count


def bulk_records(originals: Sequence[etree._Element], count: int) -> Iterator[etree._Element]:
    """``count`` synthetic records cloned from ``originals`` in turn.

    Copy n (1-based) has 001 ``bulk%06d``, the 245 $a of its original followed by
    ``(copy n)``, and a 500 note "Synthetic bulk record n of count, cloned from <001>."
    (so 1=1016 ``synthetic`` finds them all). For speed one working copy per original is
    changed in place: serialize each record before asking for the next one."""
    if not originals:
        raise PeerError("no records to clone")
    templates = []
    for original in originals:
        record = copy.deepcopy(original)
        ids = record.findall(f"{_M}controlfield[@tag='001']")
        source_id = (ids[0].text or "").strip() if ids else ""
        title = record.find(f"{_M}datafield[@tag='245']/{_M}subfield[@code='a']")
        text = (title.text or "").rstrip() if title is not None else ""
        stripped = text.rstrip(" /:;=,.")
        note = etree.Element(f"{_M}datafield", tag="500", ind1=" ", ind2=" ")
        note_a = etree.SubElement(note, f"{_M}subfield", code="a")
        later = [f for f in record.findall(f"{_M}datafield") if f.get("tag", "") > "500"]
        if later:
            later[0].addprevious(note)
        else:
            record.append(note)
        templates.append((record, ids, title, stripped, text[len(stripped):], note_a, source_id))
    for n in range(1, count + 1):
        record, ids, title, stripped, tail, note_a, source_id = templates[(n - 1) % len(templates)]
        for field in ids:
            field.text = f"bulk{n:06d}"
        if title is not None:
            title.text = f"{stripped} (copy {n}){tail}"
        note_a.text = f"Synthetic bulk record {n} of {count}, cloned from {source_id}."
        yield record


class ZebraServer(_Server):
    """Zebra with the ``marc21`` and ``unimarc`` databases (and ``bulk`` on request).

    Z39.50 and SRU share ``port``. Record syntaxes: USMARC and UNIMARC (ISO 2709 in
    ``marc_charset``, UTF-8 by default), XML with element set / SRU recordSchema
    ``marcxml`` (also the default), and ``index`` (what Zebra indexed, for debugging).
    ``databases`` maps each loaded database to its number of records.
    """

    program = "zebrasrv"

    def __init__(
        self,
        marc_dir: str | os.PathLike[str] | None = None,
        *,
        bulk: int = 0,
        marc_charset: str = "utf-8",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if shutil.which("zebraidx") is None:
            raise PeerError("zebraidx is not installed")
        self.marc_dir = Path(marc_dir) if marc_dir else shared_marc_dir()
        if not self.marc_dir.is_dir():
            raise PeerError(f"MARC test data not found at {self.marc_dir}")
        self.marc_charset = marc_charset
        self.bulk = bulk
        self.databases: dict[str, int] = {}
        self._records: dict[str, list[etree._Element]] = {}
        self._prepared = False

    # -- configuration
    def _prepare(self) -> None:
        if self._prepared:
            return
        assert self.workdir is not None
        work = self.workdir
        for item in CONFIG_DIR.iterdir():
            if item.suffix in {".xml", ".xsl", ".idx", ".properties"}:
                shutil.copy(item, work / item.name)
        tab = _find_dir(ZEBRA_TAB_DIRS, "tab")
        modules = _find_dir(ZEBRA_MODULE_GLOBS, "module")
        self._write_bib1_att(Path(tab) / "bib1.att", work / "bib1.att")
        for sub in ("register", "tmp"):
            (work / sub).mkdir(exist_ok=True)
        (work / "zebra.cfg").write_text(
            "# Zebra configuration of the balis test peer (written by tests/peers).\n"
            f"profilePath: {work}:{tab}\n"
            f"modulePath: {modules}\n"
            "attset: bib1.att\n"
            "attset: explain.att\n"
            "index: balis.idx\n"
            "encoding: utf-8\n"
            f"register: {work / 'register'}:1G\n"
            f"lockDir: {work / 'tmp'}\n"
            f"keyTmpDir: {work / 'tmp'}\n"
            f"setTmpDir: {work / 'tmp'}\n"
            "memMax: 16\n",
            "utf-8",
        )
        self._zebraidx("init")
        for database, (dom, sources) in DATABASES.items():
            records: list[etree._Element] = []
            for name, charset in sources:
                records.extend(marcxml_records(self.marc_dir / name, charset))
            self._records[database] = records
            self._index(database, dom, records)
        if self.bulk:
            self.load_bulk(self.bulk)
        self._prepared = True

    @staticmethod
    def _write_bib1_att(source: Path, target: Path) -> None:
        """Zebra's Bib-1 table with a few aliases (1017/1035 -> any, 30 -> 31, 53 -> 16)."""
        lines = source.read_text("latin-1").splitlines()
        seen = set()
        for i, line in enumerate(lines):
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "att" and parts[1] in _BIB1_ALIASES:
                lines[i] = f"att {parts[1]:<15} {_BIB1_ALIASES[parts[1]]}"
                seen.add(parts[1])
        if seen != set(_BIB1_ALIASES):
            raise PeerError(f"unexpected {source}: no lines for {set(_BIB1_ALIASES) - seen}")
        target.write_text(
            "# Written by tests/peers from Zebra's own bib1.att, with aliases.\n"
            + "\n".join(lines) + "\n",
            "latin-1",
        )

    def _zebraidx(self, *args: str) -> None:
        assert self.workdir is not None
        log = self.workdir / "zebraidx.log"
        with open(log, "ab") as out:
            done = subprocess.run(
                ["zebraidx", "-c", "zebra.cfg", *args],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=600,
            )
        if done.returncode != 0 or "[fatal]" in log.read_text("utf-8", errors="replace"):
            raise PeerError(f"zebraidx {' '.join(args)} failed; its log ends:\n{_tail(log)}")

    def _index(self, database: str, dom: str, records: Iterable[etree._Element]) -> int:
        assert self.workdir is not None
        path = self.workdir / f"{database}.xml"
        count = write_collection(records, path)
        self._zebraidx("-t", f"dom.{dom}", "-d", database, "update", path.name)
        path.unlink()
        self.databases[database] = self.databases.get(database, 0) + count
        return count

    def load_bulk(self, count: int) -> int:
        """Index ``count`` synthetic MARC21 records into database ``bulk`` (once).

        May be called on a running server: Zebra picks up the new database at the next
        search. Returns the number of records in ``bulk``."""
        have = self.databases.get(BULK_DATABASE, 0)
        if count > have:
            originals = self._records.get("marc21")
            if originals is None:
                raise PeerError("load_bulk() before the server was prepared")
            clones = bulk_records(originals, count)
            for _ in range(have):  # keep the numbering: add copies have+1 .. count
                next(clones)
            self._index(BULK_DATABASE, "dom-bulk.xml", clones)
        return self.databases[BULK_DATABASE]

    def _yazgfs(self) -> str:
        charset = self.marc_charset
        explain_indexes = "\n".join(
            f'          <index><title>{name}</title><map><name set="balis">{name}</name>'
            f"</map></index>"
            for name in ("any", "title", "author", "subject", "isbn", "issn", "publisher",
                         "year", "callnumber")
        )
        return f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- YAZ front end (GFS) of the balis test peer: Z39.50 and SRU on one port. -->
<yazgfs>
  <listen id="main">tcp:{self.host}:{self.port}</listen>
  <server id="zebra" listenref="main">
    <directory>{self.workdir}</directory>
    <config>zebra.cfg</config>
    <cql2rpn>cql2pqf.properties</cql2rpn>
    <explain xmlns="http://explain.z3950.org/dtd/2.0/">
      <serverInfo protocol="SRU" version="1.2">
        <host>{self.host}</host>
        <port>{self.port}</port>
        <database>marc21</database>
      </serverInfo>
      <databaseInfo><title>balis test peer (Zebra)</title></databaseInfo>
      <indexInfo>
        <set name="balis" identifier="info:srw/cql-context-set/15/balis-test-peer"/>
{explain_indexes}
      </indexInfo>
      <schemaInfo>
        <schema identifier="info:srw/schema/1/marcxml-v1.1" name="marcxml">
          <title>MARCXML</title>
        </schema>
      </schemaInfo>
    </explain>
    <retrievalinfo>
      <retrieval syntax="xml" name="marcxml" identifier="info:srw/schema/1/marcxml-v1.1"/>
      <retrieval syntax="xml" name="index"/>
      <retrieval syntax="xml">
        <backend syntax="xml" name="marcxml"/>
      </retrieval>
      <retrieval syntax="usmarc">
        <backend syntax="xml" name="marcxml">
          <marc inputformat="xml" outputformat="marc" outputcharset="{charset}"/>
        </backend>
      </retrieval>
      <retrieval syntax="unimarc">
        <backend syntax="xml" name="marcxml">
          <marc inputformat="xml" outputformat="marc" outputcharset="{charset}"/>
        </backend>
      </retrieval>
    </retrievalinfo>
  </server>
</yazgfs>
"""

    def _command(self) -> list[str]:
        assert self.workdir is not None
        (self.workdir / "yazgfs.xml").write_text(self._yazgfs(), "utf-8")
        return ["zebrasrv", "-T", "-f", "yazgfs.xml", "-l", str(self.log_path)]


# ---------------------------------------------------------------------------------------
# yaz-ztest


class YazZtest(_Server):
    """YAZ's test server (``yaz-ztest``), Z39.50 and SRU on one port.

    Databases ``Default``, ``slow`` and any name starting with ``db`` exist; others give
    diagnostic 109. Options ride in the database name: ``Default?search-delay=2``,
    ``present-delay``, ``fetch-delay`` (seconds, or ``a:b`` for a random delay), ``seed``.
    A term that starts with digits gives that many hits (``@attr 1=4 42`` -> 42, and over
    SRU ``42`` or ``title=42``, as CQL is mapped to Bib-1 first); otherwise the count is
    random (0-24). The delays work over Z39.50 only (an SRU path cannot carry them).
    It has 24 built-in MARC records (USMARC, or MARCXML with ``format xml``) and repeats
    them for positions beyond 24.
    """

    program = "yaz-ztest"

    def _command(self) -> list[str]:
        assert self.workdir is not None
        # CQL over SRU is turned into Bib-1 with the Zebra peer's mapping, so that the
        # "digits give the hit count" rule works over SRU too (raw CQL gets random counts).
        shutil.copy(CONFIG_DIR / "cql2pqf.properties", self.workdir / "cql2pqf.properties")
        (self.workdir / "yazgfs.xml").write_text(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            "<yazgfs>\n"
            f'  <listen id="main">tcp:{self.host}:{self.port}</listen>\n'
            '  <server id="ztest" listenref="main">\n'
            f"    <directory>{self.workdir}</directory>\n"
            "    <cql2rpn>cql2pqf.properties</cql2rpn>\n"
            "  </server>\n"
            "</yazgfs>\n",
            "utf-8",
        )
        return ["yaz-ztest", "-T", "-f", "yazgfs.xml", "-l", str(self.log_path)]


# ---------------------------------------------------------------------------------------
# Redis


class RedisServer(_Server):
    """``redis-server`` on a free port: nothing saved to disk (``--save ""``, no AOF)."""

    program = "redis-server"

    def _command(self) -> list[str]:
        assert self.workdir is not None
        return ["redis-server", "--bind", self.host, "--port", str(self.port),
                "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--dir", str(self.workdir), "--logfile", str(self.log_path)]

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


# ---------------------------------------------------------------------------------------
# yaz-client, the reference client

_HITS = re.compile(r"Number of hits: (\d+)")
_DIAG = re.compile(r"\[(\d+)\]\s*([^\n]*)")


def yaz_client_run(
    host: str,
    port: int,
    database: str,
    commands: Sequence[str],
    *,
    charset: str | None = None,
    marc_file: Path | None = None,
    timeout: float = 30.0,
) -> str:
    """Run yaz-client on a command file (open, ``commands``, quit); return its output.

    ``charset`` is negotiated (yaz-client ``charset``: query terms are sent in it);
    ``marc_file`` receives the raw records yaz-client gets (its ``-m`` option)."""
    lines = []
    if charset:
        lines.append(f"charset {charset}")
    lines.append(f"open tcp:{host}:{port}/{database}")
    lines.extend(commands)
    lines.append("quit")
    with tempfile.NamedTemporaryFile("w", suffix=".yaz", encoding="utf-8", delete=False) as f:
        f.write("\n".join(lines) + "\n")
        cmdfile = f.name
    argv = ["yaz-client", "-f", cmdfile]
    if marc_file is not None:
        argv[1:1] = ["-m", str(marc_file)]
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise PeerError(f"yaz-client timed out after {timeout:g} s on {host}:{port}") from exc
    finally:
        os.unlink(cmdfile)
    output = (done.stdout + done.stderr).decode("utf-8", errors="replace")
    if "Connection accepted" not in output:
        raise PeerError(f"yaz-client could not connect to {host}:{port}:\n{output}")
    return output


def _raise_diagnostic(output: str) -> None:
    if "Diagnostic message(s)" in output:
        diag = _DIAG.search(output.split("Diagnostic message(s)", 1)[1])
        if diag:
            raise YazClientError(int(diag.group(1)), diag.group(2).strip(), output)


def yaz_client_hits(
    host: str, port: int, database: str, pqf_query: str, charset: str | None = None
) -> int:
    """The hit count yaz-client reports for a PQF query ("Number of hits: N").

    Raises YazClientError with the Bib-1 code when the server answers with a diagnostic."""
    output = yaz_client_run(host, port, database, [f"find {pqf_query}"], charset=charset)
    found = _HITS.search(output)
    if "Search was a bloomin' failure" in output or not found:
        _raise_diagnostic(output)
        raise PeerError(f"no hit count in yaz-client output:\n{output}")
    return int(found.group(1))


def yaz_client_fetch(
    host: str,
    port: int,
    database: str,
    pqf_query: str,
    *,
    start: int = 1,
    count: int = 1,
    syntax: str = "usmarc",
    elementset: str | None = None,
    charset: str | None = None,
) -> list[bytes]:
    """Search, then present records ``start``..``start+count-1`` in ``syntax``.

    Returns the records as the server sent them: ISO 2709 (``usmarc``/``unimarc``)
    or XML documents (``xml``), one ``bytes`` each."""
    commands = [f"format {syntax}"]
    if elementset:
        commands.append(f"elements {elementset}")
    commands += [f"find {pqf_query}", f"show {start}+{count}"]
    with tempfile.TemporaryDirectory(prefix="balis-yaz-client-") as tmp:
        marc_file = Path(tmp) / "records"
        output = yaz_client_run(
            host, port, database, commands, charset=charset, marc_file=marc_file
        )
        _raise_diagnostic(output)
        data = marc_file.read_bytes() if marc_file.exists() else b""
    if syntax.lower() in {"usmarc", "marc21", "unimarc"}:
        return [chunk + b"\x1d" for chunk in data.split(b"\x1d") if chunk.strip()]
    # XML documents, one after the other: Zebra starts each with an XML declaration,
    # yaz-ztest with the <record> element itself.
    boundary = rb"(?=<\?xml)" if b"<?xml" in data else rb"(?=<record[\s>])"
    return [part for part in re.split(boundary, data) if part.strip()]
