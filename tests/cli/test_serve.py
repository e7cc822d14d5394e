"""balis serve: the union front door over Z39.50 and SRU, checked with yaz-client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from lxml import etree
from peers.catalogues import yaz_client_sru
from peers.servers import free_port, yaz_client_hits, yaz_client_run

CONFIG = """
consortium: {{name: 联合测试, max_selected: 10}}
defaults: {{timeout: 10, max_records: 20}}
categories: [{{id: t, name: 测试}}]
libraries:
  - {{id: za, name: 甲馆, category: t, connector: {{protocol: z3950, url: "{z}", format: unimarc}}}}
  - {{id: zb, name: 乙馆, category: t, connector: {{protocol: sru, url: "{s}", format: unimarc}}}}
"""


def _start(tmp_path, zebra) -> tuple[subprocess.Popen, int, int]:
    path = tmp_path / "libraries.yaml"
    path.write_text(CONFIG.format(z=zebra.z3950_url("unimarc"), s=zebra.sru_url("unimarc")),
                    encoding="utf-8")
    http, z3950 = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "balis", "serve", "--config", str(path), "--port",
         str(http), "--z3950-port", str(z3950)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
    started = time.monotonic()
    lines = []
    while time.monotonic() - started < 20:
        line = process.stdout.readline()
        lines.append(line)
        if "Press Ctrl-C" in line:
            return process, http, z3950
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError("balis serve did not start:\n" + "".join(lines))


def test_union_front_door_over_z3950_and_sru(tmp_path, zebra):
    process, http, z3950 = _start(tmp_path, zebra)
    try:
        # Two members reach the same 9 books: the union answers 9 merged records, not 18.
        assert yaz_client_hits("127.0.0.1", z3950, "balis", "@attr 1=4 中国发展报告") == 9
        shown = yaz_client_run("127.0.0.1", z3950, "balis",
                               ["find @attr 1=4 中国发展报告", "format unimarc", "show 1"])
        assert "852" in shown and "za" in shown and "zb" in shown
        url = (f"http://127.0.0.1:{http}/sru?version=1.2&operation=searchRetrieve"
               f"&query=title%3D%E4%B8%AD%E5%9B%BD%E5%8F%91%E5%B1%95%E6%8A%A5%E5%91%8A"
               f"&maximumRecords=2")
        with urllib.request.urlopen(url, timeout=30) as reply:
            root = etree.fromstring(reply.read())
        count = root.find("{http://www.loc.gov/zing/srw/}numberOfRecords").text
        assert count == "9"
        # yaz-client as the reference SRU client: SRW (SOAP), GET and a POSTed form.
        for transport in ([], ["sru get 1.2"], ["sru post 1.1"]):
            output = yaz_client_sru(f"http://127.0.0.1:{http}/sru",
                                    [*transport, "find title=中国发展报告"])
            assert "Number of hits: 9" in output, (transport, output)
        bad = urllib.request.Request(f"http://127.0.0.1:{http}/sru", data=b"<not-soap/>",
                                     headers={"Content-Type": "text/xml"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bad, timeout=30)
        assert refused.value.code == 400 and b"SRW (SOAP)" in refused.value.read()
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=15)
    assert process.returncode == 0, out
    assert "stopped" in out


def test_serve_refuses_a_bad_port(tmp_path):
    done = subprocess.run([sys.executable, "-m", "balis", "serve", "--port", "70000"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "--port must be a TCP port number" in done.stderr
