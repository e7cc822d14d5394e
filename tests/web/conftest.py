"""Fixtures for the web tests: ``app`` and ``client`` (Flask's test client) over a small
consortium of real servers (tests/peers): Zebra's CNMARC database over Z39.50 (za) and
SRU (zb), its MARC21 database over Z39.50 (m), a member nobody listens on (dead), a
yaz-ztest member slower than nothing (slow, 1 s a search) and one without a connector.

The session fixtures of the browser tests (browser_fixtures.py) are registered here, once,
so every module shares one Chromium, one demo consortium and one screenshot folder; the
ILL databases come from tests/peers/ill_databases.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_fixtures import (  # noqa: F401  (session fixtures of the browser tests, by name)
    chromium_browser,
    demo_site,
    hostile_site,
    member_loop,
    shots,
)
from ill_fixtures import ill_config
from peers.servers import free_port

from broker.kernel.config import loads
from web import create_app


def consortium_text(zebra, ztest) -> str:
    dead_port = free_port()

    def lib(lid, name, protocol=None, url=None, **connector):
        entry = {"id": lid, "name": name, "category": "univ",
                 "contact": {"name": f"{name}馆际互借部", "phone": "010-1234567",
                             "email": f"ill@{lid}.example.edu.cn"},
                 "address": f"{name}路 1 号", "hours": "8:00-22:00"}
        if protocol:
            entry["connector"] = {"protocol": protocol, "url": url, **connector}
        return entry

    return json.dumps({
        "consortium": {"name": "测试联盟", "max_selected": 3},
        "defaults": {"timeout": 10, "max_records": 30},
        "categories": [{"id": "univ", "name": "综合大学图书馆"},
                       {"id": "public", "name": "公共图书馆"}],
        "libraries": [
            lib("za", "甲大学图书馆", "z3950", zebra.z3950_url("unimarc"), format="unimarc"),
            lib("zb", "乙大学图书馆", "sru", zebra.sru_url("unimarc"), format="unimarc"),
            lib("m", "丙大学图书馆", "z3950", zebra.z3950_url("marc21")),
            lib("dead", "关门图书馆", "z3950", f"z3950://127.0.0.1:{dead_port}/Default"),
            lib("slow", "慢图书馆", "z3950", ztest.z3950_url("Default?search-delay=1")),
            {**lib("nc", "不可检索图书馆"), "category": "public"},
        ],
    }, ensure_ascii=False)


@pytest.fixture(scope="module")
def app(zebra, ztest, tmp_path_factory) -> Iterator:
    portal = tmp_path_factory.mktemp("portal")
    (portal / "news").mkdir()
    (portal / "news" / "2026-11-20-closure.md").write_text(
        "---\ntitle: 甲大学图书馆寒假闭馆\ndate: 2026-11-20\n---\n寒假期间闭馆。\n",
        encoding="utf-8")
    (portal / "news" / "2026-10-01-old.md").write_text("# 旧消息\n\n内容\n", encoding="utf-8")
    (portal / "rules.md").write_text("# 管理办法\n\n每位读者最多借 10 册。\n", encoding="utf-8")
    app = create_app({
        "TESTING": True,
        "CONSORTIUM": loads(consortium_text(zebra, ztest)),
        "SESSION_STORE": "memory",
        "SECRET_KEY": "test",
        "PORTAL_DIR": str(portal),
        # The ILL ledger in this module's own SQLite file, not the instance folder's.
        **ill_config(f"sqlite:///{tmp_path_factory.mktemp('ill') / 'ill.sqlite3'}"),
    })
    yield app
    app.extensions["balis"].close()
    app.extensions["ill"].close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def portal_dir(app) -> Path:
    return app.extensions["balis"].portal_dir
