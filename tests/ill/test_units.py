"""One service call, one transaction: every public method that takes a session is marked
``@unit_of_work`` where it is defined, and no call leaves a transaction open behind it."""

from __future__ import annotations

import inspect

import pytest
from ill_helpers import form

from broker.kernel.errors import Conflict
from ill.core import unit_of_work
from ill.service import IllService

# The code every @unit_of_work wrapper runs, to tell it from any other decorator.
_WRAPPER = unit_of_work(lambda self, session: None).__code__


def test_every_public_method_with_a_session_is_a_unit_of_work():
    marked, unmarked = [], []
    for name, method in inspect.getmembers(IllService, inspect.isfunction):
        if name.startswith("_"):
            continue
        if list(inspect.signature(method).parameters)[:2] == ["self", "session"]:
            (marked if method.__code__ is _WRAPPER else unmarked).append(name)
    assert unmarked == []
    assert {"act", "authenticate", "create_request", "sweep_overdue", "validate"} <= set(marked)
    # Methods without a session touch no database, and are not wrapped.
    assert IllService.prefill.__code__ is not _WRAPPER


def test_no_call_leaves_a_transaction_open(db, svc, people):
    with db.session() as s:
        req = svc.create_request(s, people.reader, form())
        assert not s.in_transaction()
        svc.list_requests(s, people.reader)  # a read: its transaction ends too
        assert not s.in_transaction()
        svc.act(s, people.pku, req.id, "accept")
        with pytest.raises(Conflict):
            svc.act(s, people.pku, req.id, "accept")
        assert not s.in_transaction()
        assert svc.get_request(s, people.admin, req.id).status == "accepted"
        assert not s.in_transaction()
