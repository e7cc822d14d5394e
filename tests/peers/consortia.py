"""Consortium configurations over the test peers (tests/peers), for the broker's tests.

A member is a plain dict in the libraries file's shape; ``consortium(...)`` writes the
file (JSON is YAML) and loads it with ``broker.kernel.config.loads``, so every test goes through
the same validation a real libraries file does.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from broker.kernel.config import Consortium, loads
from peers.servers import free_port


def member(lid: str, protocol: str | None = None, url: str | None = None, *,
           name: str | None = None, **connector: Any) -> dict:
    """One library; without a protocol it has no connector (it lends but is not searched)."""
    entry: dict[str, Any] = {"id": lid, "name": name or f"{lid}图书馆", "category": "test"}
    if protocol is not None:
        entry["connector"] = {"protocol": protocol, "url": url, **connector}
    return entry


def consortium(*members: dict, max_selected: int = 10, timeout: float = 10,
               max_records: int = 50) -> Consortium:
    return loads(config_text(*members, max_selected=max_selected, timeout=timeout,
                             max_records=max_records))


def config_text(*members: dict, max_selected: int = 10, timeout: float = 10,
                max_records: int = 50) -> str:
    return json.dumps({
        "consortium": {"name": "测试联盟", "max_selected": max_selected},
        "defaults": {"timeout": timeout, "max_records": max_records},
        "categories": [{"id": "test", "name": "测试图书馆"}],
        "libraries": list(members),
    }, ensure_ascii=False, indent=1)


# --- the usual members -----------------------------------------------------------------------
# The same Zebra database reached over two protocols holds the same books: za and zb must
# merge into one cluster per book. m and ms do the same for the MARC21 database.

def za(zebra) -> dict:
    return member("za", "z3950", zebra.z3950_url("unimarc"), name="甲大学图书馆",
                  format="unimarc")


def zb(zebra) -> dict:
    return member("zb", "sru", zebra.sru_url("unimarc"), name="乙大学图书馆", format="unimarc")


def m(zebra) -> dict:
    return member("m", "z3950", zebra.z3950_url("marc21"), name="丙大学图书馆")


def ms(zebra) -> dict:
    return member("ms", "sru", zebra.sru_url("marc21"), name="丁大学图书馆")


def dead(lid: str = "dead", protocol: str = "z3950") -> dict:
    """A member whose port nobody listens on: connection refused."""
    port = free_port()
    url = (f"z3950://127.0.0.1:{port}/Default" if protocol == "z3950"
           else f"http://127.0.0.1:{port}/Default")
    return member(lid, protocol, url, name="关门图书馆")


def slow(ztest, lid: str = "slow", delay: int = 1, **connector: Any) -> dict:
    """yaz-ztest taking DELAY seconds per search (a term like '5' gives 5 hits)."""
    return member(lid, "z3950", ztest.z3950_url(f"Default?search-delay={delay}"),
                  name="慢图书馆", **connector)


def run(coroutine):
    return asyncio.run(coroutine)
