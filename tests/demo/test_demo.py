"""The bundled demo consortium: its generated catalogues, its libraries file, `balis demo`."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from peers.servers import free_port, free_port_range

from broker.demo import catalogues as demo_catalogues
from broker.demo import members as demo_members
from broker.kernel import config as config_module
from broker.kernel.consortium import ConnectorConfig, Library
from marc import Record, normalize, read_file
from marc.normalization.text import isbn13, issn

BALIS = ["balis"] if shutil.which("balis") else [sys.executable, "-m", "balis"]


@pytest.fixture(scope="module")
def directory():
    return demo_members.load_members()


@pytest.fixture(scope="module")
def plans(directory):
    return demo_members.plan(lib.id for lib in directory.libraries)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, plans, directory) -> Path:
    path = tmp_path_factory.mktemp("demo")
    demo_catalogues.write(path, plans, directory)
    return path


@pytest.fixture(scope="module")
def catalogues(data_dir, plans) -> dict[str, list]:
    """Every member's records as read back from its file: (entry, normalized record)."""
    out = {}
    for p in plans:
        entries = list(read_file(data_dir / p.file_name))
        out[p.id] = [(e, normalize(e.record, flavour=e.flavour, library=p.id))
                     for e in entries if e.record is not None]
        assert len(out[p.id]) == len(entries), [e.problems for e in entries if not e.ok]
    return out


def _connector(lib: Library) -> ConnectorConfig:
    assert lib.connector is not None, lib.id
    return lib.connector


def free_port_base(count: int = 46) -> int:
    """A port N with N .. N + count - 1 all free on 127.0.0.1 (as far as we can tell)."""
    base = free_port_range(count)
    if base is None:
        pytest.skip("no free range of ports for the demo")
    return base


def balis(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "BALIS_CONFIG"}
    return subprocess.run([*BALIS, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, check=False)


# --- the generator ----------------------------------------------------------------------


def test_same_seed_same_bytes(tmp_path, data_dir, plans, directory):
    again = tmp_path / "again"
    manifest = demo_catalogues.write(again, plans, directory)
    for p in plans:
        assert (again / p.file_name).read_bytes() == (data_dir / p.file_name).read_bytes(), p.id
    assert manifest == demo_catalogues.ensure(data_dir, plans, directory)[0]
    other = demo_catalogues.generate(plans[:3], directory, seed=demo_catalogues.SEED + 1)
    first = demo_catalogues.generate(plans[:3], directory)
    assert [str(r) for r in other.records[plans[0].id]] != \
        [str(r) for r in first.records[plans[0].id]]


def test_cache_is_reused_and_refreshed(tmp_path, plans, directory):
    plans = plans[:3]
    manifest, made = demo_catalogues.ensure(tmp_path, plans, directory)
    assert made and manifest["records"] > 0
    again, made = demo_catalogues.ensure(tmp_path, plans, directory)
    assert not made and again == manifest
    (tmp_path / plans[0].file_name).unlink()
    _, made = demo_catalogues.ensure(tmp_path, plans, directory)
    assert made and (tmp_path / plans[0].file_name).is_file()


def test_sizes_and_overlap(catalogues):
    assert len(catalogues) == 46
    sizes = {lid: len(records) for lid, records in catalogues.items()}
    assert all(50 <= n <= 150 for n in sizes.values()), sizes
    assert 3000 <= sum(sizes.values()) <= 7000
    holders: dict[object, set[str]] = {}  # by ISBN, else by (title, year)
    for lid, records in catalogues.items():
        for _, record in records:
            key = record.isbns[0] if record.isbns else (record.title, record.year)
            holders.setdefault(key, set()).add(lid)
    counts = Counter(len(v) for v in holders.values())
    assert 1300 <= len(holders) <= 1500
    assert max(counts) == 8 and counts[1] < len(holders) / 2  # most works are shared


def test_records_are_clean_and_as_planned(catalogues, plans):
    by_id = {p.id: p for p in plans}
    kinds: Counter[tuple[str, str | None]] = Counter()
    for lid, records in catalogues.items():
        for entry, record in records:
            assert not entry.problems and not record.warnings, (lid, record.id)
            assert record.format == by_id[lid].format
            assert record.title and record.year and 1950 <= record.year <= 2025
            assert record.holdings and all(h.library == lid for h in record.holdings)
            assert all(h.call_number and h.barcode and h.location for h in record.holdings)
            kinds[(record.material_type, record.language)] += 1
            if record.language == "chi" and record.material_type == "book":
                assert re.fullmatch(r"[A-Z]+[\d.\-]*/\d+(=\d+)?", record.call_numbers[0])
                assert any(c.scheme == "clc" for c in record.classification)
    assert kinds[("book", "chi")] > kinds[("book", "eng")] > kinds[("serial", "chi")] > 0
    assert kinds[("serial", "eng")] > 0


def test_identifiers_have_valid_check_digits(catalogues):
    seen_isbn = seen_issn = 0
    for records in catalogues.values():
        for entry, record in records:
            raw = entry.record
            for tag in ("020", "010"):
                for f in raw.get_fields(tag):
                    value = f.get_subfields("a")[0]
                    assert isbn13(value), value
                    seen_isbn += 1
            for tag in ("022", "011"):
                for f in raw.get_fields(tag):
                    value = f.get_subfields("a")[0]
                    assert issn(value) == value
                    seen_issn += 1
            if record.year >= 1987 and record.material_type == "book":
                assert len(record.isbns) == 1  # Chinese books have ISBNs from 1987
                assert record.isbns[0].startswith(("9787", "9780", "9781", "9783"))
    assert seen_isbn > 2000 and seen_issn > 100


def test_flavours_and_encodings_on_disk(data_dir, plans):
    formats = Counter(p.format for p in plans)
    assert formats["unimarc"] >= 4 and formats["marc21"] > formats["unimarc"]
    for p in plans:
        data = (data_dir / p.file_name).read_bytes()
        if p.file_encoding == "gb18030":
            assert p.format == "unimarc"
            with pytest.raises(UnicodeDecodeError):
                data.decode("utf-8")
            assert "中".encode("gb18030") in data
        else:
            data.decode("utf-8")
    assert sum(p.file_encoding == "gb18030" for p in plans) >= 3


def test_same_book_merges_across_flavours(catalogues):
    """A book held by a MARC21 and a CNMARC member: the two descriptions agree, so they
    would merge even without the ISBN."""
    import dataclasses

    from broker.search.match import compare, evidence

    def described(record: Record):
        return evidence(dataclasses.replace(record, isbns=()))

    by_isbn: dict[str, dict[str, Record]] = {}
    for records in catalogues.values():
        for _, record in records:
            if record.isbns:
                by_isbn.setdefault(record.isbns[0], {})[record.format] = record
    both = [v for v in by_isbn.values() if len(v) == 2]
    assert len(both) > 100
    for pair in both:
        decision = compare(described(pair["marc21"]), described(pair["unimarc"]))
        assert decision.verdict == "same", (pair["marc21"].title, decision)
    undated: dict[str, dict[str, Record]] = {}
    for records in catalogues.values():  # books from before ISBNs merge on the description
        for _, record in records:
            if not record.isbns and record.material_type == "book" and record.title:
                undated.setdefault(record.title, {})[record.format] = record
    pairs = [v for v in undated.values() if len(v) == 2]
    assert pairs
    assert any(compare(evidence(p["marc21"]), evidence(p["unimarc"])).verdict == "same"
               for p in pairs)


# --- the libraries file -----------------------------------------------------------------


def test_committed_demo_config_is_the_generated_one(directory, plans):
    text = demo_members.render_config(directory, plans)
    assert demo_members.DEMO_CONFIG.read_text("utf-8") == text, \
        "config/demo.yaml is out of date: run python -m broker.demo"


def test_python_m_broker_demo_writes_the_libraries_file(tmp_path):
    out = tmp_path / "demo.yaml"
    done = subprocess.run([sys.executable, "-m", "broker.demo", "--out", str(out)],
                          capture_output=True, text=True, timeout=60, check=False,
                          cwd=demo_members.DEMO_CONFIG.parents[1])
    assert done.returncode == 0, done.stderr
    assert out.read_text("utf-8") == demo_members.DEMO_CONFIG.read_text("utf-8")
    assert "python -m broker.demo rewrites" in out.read_text("utf-8")


def test_demo_config_mirrors_the_real_directory(directory, plans):
    demo = config_module.load(demo_members.DEMO_CONFIG)
    assert [(c.id, c.name) for c in demo.categories] == \
        [(c.id, c.name) for c in directory.categories]
    assert [(lib.id, lib.name, lib.category) for lib in demo.libraries] == \
        [(lib.id, lib.name, lib.category) for lib in directory.libraries]
    assert len(demo.libraries) == 46 and all(lib.searchable for lib in demo.libraries)
    protocols = Counter(_connector(lib).protocol for lib in demo.libraries)
    assert protocols == {"sru": 23, "z3950": 23}
    ports = [_connector(lib).port for lib in demo.libraries]
    assert ports == list(range(demo_members.PORT_BASE, demo_members.PORT_BASE + 46))
    assert all(_connector(lib).host == "127.0.0.1" for lib in demo.libraries)
    slow = [p for p in plans if p.delay]
    assert len(slow) == 1 and _connector(demo.library(slow[0].id)).timeout < slow[0].delay
    assert sum(p.down for p in plans) == 1


def test_moved_ports(directory, plans):
    text = demo_members.render_config(directory, plans, port_base=30000)
    demo = config_module.loads(text)
    assert [_connector(lib).port for lib in demo.libraries] == list(range(30000, 30046))
    assert "30000-30045" in text


# --- balis demo -------------------------------------------------------------------------


def test_balis_demo_check(data_dir):
    pytest.importorskip("connectors.sru.server")
    pytest.importorskip("connectors.z3950.server")
    base = free_port_base()
    done = balis("demo", "--check", "--data-dir", str(data_dir), "--port-base", str(base))
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "46 member libraries" in out and "cached in" in out
    assert re.search(r"ok 44 \(\d+ hits\), timeout 1, error 1", out), out
    assert re.search(r"timeout\s+cafa .*within 2 s", out), out
    assert re.search(r"error\s+buu .*(connect|refused)", out, re.I), out
    found = re.search(r"(\d+) records fetched, merged into (\d+) \((\d+) held by more", out)
    assert found, out
    fetched, merged, shared = map(int, found.groups())
    assert 0 < merged < fetched and shared > 0
    assert "OK: the demo consortium works" in out
    assert (data_dir / f"demo-{base}.yaml").is_file()  # the libraries file with moved ports


def test_balis_demo_runs_until_interrupted(data_dir, tmp_path):
    pytest.importorskip("connectors.sru.server")
    pytest.importorskip("connectors.z3950.server")
    base = free_port_base()
    web_port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "BALIS_CONFIG"}
    # The demo's ILL accounts go into DATABASE_URL when set (else the instance folder).
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'demo-ill.sqlite3'}"
    proc = subprocess.Popen([*BALIS, "demo", "--data-dir", str(data_dir), "--port-base",
                             str(base), "--port", str(web_port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        text = "".join(lines)
        assert "46 member libraries" in text, text + proc.stderr.read()
        assert f"127.0.0.1:{base}-{base + 45}" in text
        assert f"balis search --config {data_dir / f'demo-{base}.yaml'}" in text or \
            f"demo-{base}.yaml" in text
        assert f"Web:    http://127.0.0.1:{web_port}/" in text
        with socket.create_connection(("127.0.0.1", base + 1), timeout=2):
            pass  # a member answers
        # The web front end serves the demo: the directory of its 46 members.
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/api/libraries",
                                    timeout=10) as answer:
            assert len(json.load(answer)["libraries"]) == 46
        # The demo accounts it printed log in to the ILL it serves.
        reader = re.search(r"^  reader: (\S+) / (\S+) \(home library (\w+)\)$", text, re.M)
        assert reader and reader.groups() == ("reader", "balis-demo", "bupt"), text
        assert re.search(r"^  admin:  admin / balis-demo$", text, re.M), text
        assert re.search(r"^  staff:  staff-<library id> / balis-demo, e\.g\. staff-nlc "
                         r"\(46 libraries\)$", text, re.M), text
        login = urllib.request.Request(
            f"http://127.0.0.1:{web_port}/api/tokens", method="POST",
            data=json.dumps({"login": "reader", "password": "balis-demo"}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(login, timeout=30) as answer:
            assert answer.status == 200 and json.load(answer)["token"]
        assert (tmp_path / "demo-ill.sqlite3").is_file()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopped" in out


def test_port_in_use_is_a_user_error(data_dir):
    pytest.importorskip("connectors.sru.server")
    pytest.importorskip("connectors.z3950.server")
    base = free_port_base()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", base + 2))
        blocker.listen()
        done = balis("demo", "--check", "--data-dir", str(data_dir), "--port-base", str(base))
    assert done.returncode == 2
    assert "--port-base" in done.stderr and "Traceback" not in done.stderr


def test_the_merge_puts_each_demo_work_in_one_cluster_of_its_own(plans, directory):
    """Every member's whole catalogue merged (MARC21 and CNMARC, UTF-8 and GB18030, with
    and without ISBNs): each work the generator shared out is one cluster, and no cluster
    holds two works: the demo consortium merges every shared work and nothing else."""
    from broker.search.merge import Merger

    data = demo_catalogues.generate(plans, directory)
    merger = Merger()
    work_of: dict[tuple[str, str | None], int] = {}
    for p in plans:
        records = [normalize(r, flavour=p.format, library=p.id) for r in data.records[p.id]]
        for record, work in zip(records, data.works_of[p.id], strict=True):
            work_of[(p.id, record.id)] = work.number
        merger.add(p.id, records)
    clusters_of_work: dict[int, set[str]] = {}
    for cluster in merger.clusters:
        works = {work_of[(library, r.id)] for library, r in cluster.records}
        assert len(works) == 1, (cluster.id, sorted(works))
        clusters_of_work.setdefault(works.pop(), set()).add(cluster.id)
    split = {w: c for w, c in clusters_of_work.items() if len(c) > 1}
    assert not split, split
    shared = sum(1 for holders in _holders_by_work(data).values() if len(holders) > 1)
    assert shared > 500
    assert len(merger.clusters) == len(clusters_of_work)


def _holders_by_work(data) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for member, works in data.works_of.items():
        for work in works:
            out.setdefault(work.number, set()).add(member)
    return out
