"""Shared pieces of the ILL tests: the test consortium, the clock, people, a valid form."""

from __future__ import annotations

from dataclasses import dataclass

from peers.ill_databases import PASSWORD, START, Clock  # noqa: F401  (used via here)

from ill.db import Database
from ill.service import IllService
from ill.values import Actor

# Small on purpose: the tests name these policies. nlc never lets readers cancel and takes
# no direct request, only requests from its records (as in config/libraries.yaml); ruc
# lends nothing; cnu fines 0.5 yuan a day.
CONSORTIUM_YAML = """
consortium: {name: BALIS-test}
categories:
  - {id: public, name: 公共馆}
  - {id: univ, name: 高校馆}
libraries:
  - id: nlc
    name: 国家图书馆
    category: public
    ill: {cancel_window_minutes: 0, loan_days: 21, direct_requests: false}
  - id: pku
    name: 北京大学图书馆
    category: univ
    contact: {name: 李老师, phone: 010-62751051, email: ill@lib.pku.edu.cn}
    ill: {cancel_window_minutes: 60, loan_days: 28}
  - id: bupt
    name: 北京邮电大学图书馆
    category: univ
    contact: {name: 张三, phone: 010-62282123, email: ill@bupt.edu.cn}
    ill: {cancel_window_minutes: 60, loan_days: 28}
  - id: cnu
    name: 首都师范大学图书馆
    category: univ
    ill: {cancel_window_minutes: 30, loan_days: 14, fine_per_day: 0.5}
  - id: ruc
    name: 中国人民大学图书馆
    category: univ
    ill: {lends: false}
"""
@dataclass
class People:
    reader: Actor  # home: bupt
    reader2: Actor  # home: bupt
    reader_pku: Actor
    bupt: Actor  # staff
    pku: Actor
    pku2: Actor  # a second staff member of pku
    nlc: Actor
    cnu: Actor
    admin: Actor


def form(**overrides) -> dict:
    """A valid request form (to pku by courier) with ``overrides``."""
    data = {"title": "红楼梦", "author": "曹雪芹", "publisher": "人民文学出版社", "year": "2008",
            "isbn": "9787020065875", "call_number": "I242.4/3", "lender": "pku",
            "material_type": "book", "delivery": "courier", "note": "急用"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not ...}


def walk(svc: IllService, db: Database, people: People, request_id: int,
         steps: list[tuple[str, str]]) -> None:
    """Take ``(who, action)`` steps, who being an attribute of People."""
    with db.session() as s:
        for who, action in steps:
            svc.act(s, getattr(people, who), request_id, action,
                    reason="NotHeld" if action in ("reject", "mark_lost", "close") else None)
