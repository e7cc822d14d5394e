"""`balis demo --port-base N` serves the portal (issue 14): the real command, started as a
reader would start it with another port base and a fresh instance folder, looked at in
headless Chromium (tests/web/browser_fixtures.py). Before the fix its libraries file moved
to the data directory and the portal's pages, looked for beside it, were lost."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_fixtures import new_page
from peers.servers import free_port_range

REPO = Path(__file__).resolve().parents[2]
CACHED = REPO / "instance" / "demo"  # the generated catalogues, when a demo ran here before


def _free_port_base(count: int = 46) -> int:
    base = free_port_range(count)
    if base is None:
        pytest.skip("no free range of 46 ports on 127.0.0.1 for the demo")
    return base


class _Site:
    def __init__(self, url: str) -> None:
        self.url = url


@pytest.fixture(scope="module")
def demo_command(tmp_path_factory) -> Iterator[_Site]:
    work = tmp_path_factory.mktemp("demo-cmd")
    data = work / "data"
    if (CACHED / "manifest.json").is_file():
        shutil.copytree(CACHED, data, ignore=shutil.ignore_patterns("demo-*.yaml"))
    env = {k: v for k, v in os.environ.items() if k not in ("BALIS_CONFIG", "BALIS_REDIS_URL")}
    env["BALIS_INSTANCE"] = str(work / "instance")  # a fresh instance folder: no portal/
    command = [sys.executable, "-m", "balis", "demo", "--port", "0",
               "--port-base", str(_free_port_base()), "--data-dir", str(data)]
    process = subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    found = threading.Event()
    url: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            match = re.search(r"Web:\s+(http://127\.0\.0\.1:\d+)/", line)
            if match:
                url.append(match.group(1))
                found.set()
        found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert found.wait(180) and url, "".join(lines[-40:])
        yield _Site(url[0])
    finally:
        process.send_signal(signal.SIGINT)  # the demo's own Ctrl-C: it stops its members
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        reader.join(5)


def test_demo_with_another_port_base_serves_the_portal(chromium_browser, demo_command, shots):
    context, page, watch = new_page(chromium_browser, demo_command)
    try:
        page.goto("/?lang=zh")
        intro = page.locator("section.portal-intro")
        assert intro.locator("h2").inner_text() == "中心介绍"
        assert "一站式的联合检索" in intro.inner_text()
        news = page.locator("ul.news li a").all_inner_texts()
        assert "2027 年寒假期间各成员馆馆际互借服务安排" in news
        assert page.locator("section.portal-notices h2").inner_text() == "公告信息"
        shots(page, "portal-home-port-base")
        page.goto("/pages/guide")
        assert "使用指南" in page.locator("article.portal-page h1").inner_text()
        page.goto("/map")
        assert page.locator("section#d-海淀区 li").count() > 5
        shots(page, "portal-map")
        page.goto("/exhibits/01-honglou?lang=en")
        assert page.locator("section.exhibit-shelf a").count() >= 3
        shots(page, "portal-exhibit-en")
        watch.check()
    finally:
        context.close()
