"""Shared pieces of the harvest tests: the balis command, configs, Zebra databases."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lxml import etree
from peers.servers import MARC_NS, ZebraServer, marcxml_records, shared_marc_dir, yaz_client_run

BALIS = ["balis"] if shutil.which("balis") else [sys.executable, "-m", "balis"]
ALL_RECORDS_PQF = '@attr 1=_ALLRECORDS @attr 2=103 ""'
_ISO_ID = re.compile(rb"\x1e(bulk\d{6})\x1e")


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "BALIS_CONFIG"}


def balis(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*BALIS, *args], capture_output=True, text=True, timeout=timeout,
                          env=env(), check=False)


def start_balis(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([*BALIS, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env(), **kwargs)


def config_text(members: dict[str, tuple[str, str]]) -> str:
    """A libraries file: id -> (protocol, url)."""
    lines = ["consortium: {name: Harvest test}", "categories: [{id: c, name: 测试}]",
             "libraries:"]
    for lid, (protocol, url) in members.items():
        lines.append(f'  - {{id: {lid}, name: "{lid} 图书馆", category: c, connector: '
                     f'{{protocol: {protocol}, url: "{url}", timeout: 20}}}}')
    return "\n".join(lines) + "\n"


def write_config(path: Path, members: dict[str, tuple[str, str]]) -> str:
    path.write_text(config_text(members), "utf-8")
    return str(path)


def members(zebra: ZebraServer, database: str) -> dict[str, tuple[str, str]]:
    return {"z": ("z3950", zebra.z3950_url(database)), "s": ("sru", zebra.sru_url(database))}


def iso_ids(data: bytes) -> list[bytes]:
    return _ISO_ID.findall(data)


def jsonl_ids(data: bytes) -> list[str]:
    return [json.loads(line)["id"] for line in data.decode("utf-8").splitlines()]


def checkpoint(out: Path) -> dict | None:
    try:
        return json.loads(out.with_name(out.name + ".checkpoint").read_bytes())
    except (FileNotFoundError, ValueError):
        return None  # not written yet, or caught between write and rename (never: atomic)


def wait_for(predicate, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def yaz_client_dump(zebra: ZebraServer, database: str, hits: int, chunk: int = 500) -> bytes:
    """What yaz-client fetches of every record (USMARC), in the server's order."""
    shows = [f"show {start}+{min(chunk, hits - start + 1)}"
             for start in range(1, hits + 1, chunk)]
    with tempfile.TemporaryDirectory(prefix="balis-harvest-yaz-") as tmp:
        marc_file = Path(tmp) / "records"
        yaz_client_run(zebra.host, zebra.port, database,
                       ["format usmarc", f"find {ALL_RECORDS_PQF}", *shows],
                       marc_file=marc_file, timeout=120)
        return marc_file.read_bytes()


def index_database(zebra: ZebraServer, database: str, records: list[etree._Element]) -> None:
    """Add records to a Zebra database of its own (the bulk database's light indexing).

    ZebraServer indexes its own databases only; this reuses its indexer (a private method)
    for the small databases these tests need."""
    zebra._index(database, "dom-bulk.xml", records)


def sample_records(count: int) -> list[etree._Element]:
    """Real LC records (yaz/marccol1.u8.marc), MARCXML."""
    records = marcxml_records(shared_marc_dir() / "yaz" / "marccol1.u8.marc", "utf-8")
    return records[:count]


def empty_record() -> etree._Element:
    """A MARCXML record with a leader and no field at all: Zebra stores and serves it, and
    no reader can make a record of it (ISO 2709: a directory without entries)."""
    record = etree.Element(f"{{{MARC_NS}}}record", nsmap={None: MARC_NS})
    etree.SubElement(record, f"{{{MARC_NS}}}leader").text = "00000nam a2200000 a 4500"
    return record
