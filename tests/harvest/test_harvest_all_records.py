"""``balis harvest --all`` with each protocol's default all_records query
(broker.kernel.consortium.DEFAULT_ALL_RECORDS: ``cql.allRecords=1`` over SRU, Bib-1
``@attr 1=_ALLRECORDS @attr 2=103 ""`` over Z39.50) against our own SRU and Z39.50 servers
over LocalCatalogue: what the demo consortium's members are. Every member is harvested
whole; a member nobody listens for fails, and is named."""

from __future__ import annotations

import socket

import pytest
from harvest_helpers import balis, config_text
from peers.catalogues import LoopThread

from broker.catalogues.marc_file import LocalCatalogue
from connectors.sru.server import SruServer
from connectors.z3950.server import Z3950Server
from marc import read_bytes


@pytest.fixture(scope="module")
def members(marc_data):
    sources = {"sru21": marc_data / "pymarc" / "test.dat",
               "z21": marc_data / "marc4j" / "summerland.mrc",
               "zuni": marc_data / "derived" / "bnu_cnmarc.utf8.iso"}
    catalogues = {name: LocalCatalogue(path, name=name) for name, path in sources.items()}
    thread = LoopThread()
    sru = SruServer({"sru21": catalogues["sru21"]})
    z3950 = Z3950Server({"z21": catalogues["z21"], "zuni": catalogues["zuni"]})
    thread.run(sru.start())
    thread.run(z3950.start())
    with socket.socket() as probe:  # a port nobody listens on: the "down" member
        probe.bind(("127.0.0.1", 0))
        down = probe.getsockname()[1]
    config = {"sru21": ("sru", sru.url("sru21")),
              "z21": ("z3950", f"z3950://127.0.0.1:{z3950.port}/z21"),
              "zuni": ("z3950", f"z3950://127.0.0.1:{z3950.port}/zuni"),
              "down": ("z3950", f"z3950://127.0.0.1:{down}/down")}
    yield config, catalogues
    thread.run(sru.close())
    thread.run(z3950.close())
    thread.close()


def test_harvest_all_gets_every_record_of_every_live_member(members, tmp_path):
    config, catalogues = members
    # The UNIMARC member says so: our server sends a catalogue's records in the syntax they
    # are in (Bib-1 238 for the other), never relabelled.
    path = tmp_path / "libraries.yaml"
    path.write_text(config_text(config).replace('/zuni", timeout: 20}',
                                                '/zuni", timeout: 20, format: unimarc}'),
                    "utf-8")
    assert "format: unimarc" in path.read_text("utf-8")
    out = tmp_path / "out"
    done = balis("harvest", "--all", "--config", str(path), "--out", str(out), "-q",
                 "--chunk", "7", timeout=180)
    assert done.returncode == 1, done.stderr  # the down member failed
    assert "3 of 4 members harvested" in done.stderr + done.stdout, done.stderr
    assert "failed: down" in done.stderr + done.stdout, done.stderr
    for name, catalogue in catalogues.items():
        data = (out / f"{name}.mrc").read_bytes()
        records = [entry.record for entry in read_bytes(data)]
        assert len(records) == len(catalogue) > 0, name
        assert all(record is not None for record in records), name
        assert _ids(records) == _ids(catalogue.records), name  # all of them, in order


def _ids(records) -> list[str | None]:
    return [record["001"].data if record["001"] else None for record in records]


def test_a_slow_member_is_harvested_with_the_batch_timeout(marc_data, tmp_path):
    """A member slower than its search timeout (the demo's cafa: 3 s a search, 2 s timeout)
    times out readers' searches, but a harvest waits --timeout (default 60 s) for it.
    (A member slower than both is a timeout, retried and resumable: test_harvest_faults.)"""
    catalogue = LocalCatalogue(marc_data / "pymarc" / "test.dat", name="slow", delay=1.5)
    thread = LoopThread()
    sru = SruServer({"slow": catalogue})
    thread.run(sru.start())
    try:
        path = tmp_path / "libraries.yaml"
        path.write_text(config_text({"slow": ("sru", sru.url("slow"))}).replace(
            "timeout: 20", "timeout: 1"), "utf-8")
        out = tmp_path / "slow.mrc"
        done = balis("harvest", "slow", "--config", str(path), "--out", str(out), "-q",
                     "--chunk", "5", timeout=180)
        assert done.returncode == 0, done.stderr
        records = [entry.record for entry in read_bytes(out.read_bytes())]
        assert _ids(records) == _ids(catalogue.records)
        bad = balis("harvest", "slow", "--config", str(path), "--out", str(out),
                    "--timeout", "0")
        assert bad.returncode == 2 and "--timeout must be a positive" in bad.stderr
    finally:
        thread.run(sru.close())
        thread.close()
