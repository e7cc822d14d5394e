"""The declarative state model: every listed transition is allowed to its roles and every
other (state, action, role, delivery) is refused, in the model and through the service."""

from __future__ import annotations

import itertools

import pytest
import yaml
from ill_helpers import form
from sqlalchemy import update

from broker.kernel.errors import ConfigError, Conflict, Forbidden, ValidationFailed
from ill.models import Request
from ill.workflow import DELIVERIES, ISO18626_STATUSES, ROLES, STATES_FILE, WORKFLOW, load

RAW = yaml.safe_load(STATES_FILE.read_text(encoding="utf-8"))


def expected(state: str, action: str, role: str, delivery: str) -> str | None:
    """The YAML read directly (not through the loader): where this leads, if anywhere."""
    for t in RAW["actions"][action]["transitions"]:
        if state in t["from"] and role in t["roles"] and t.get("delivery") in (None, delivery):
            return t["to"]
    return None


ALL = list(itertools.product(RAW["states"], RAW["actions"], ROLES, DELIVERIES))


def test_every_combination_is_allowed_exactly_as_listed():
    allowed = 0
    for state, action, role, delivery in ALL:
        to = expected(state, action, role, delivery)
        if to is not None:
            assert WORKFLOW.transition(state, action, role, delivery).to == to
            allowed += 1
            continue
        with pytest.raises((Conflict, Forbidden)):
            WORKFLOW.transition(state, action, role, delivery)
    assert allowed > 40  # the walk did walk: 13 states x 12 actions x 5 roles x 2


def test_states_map_to_iso18626_and_terminal_states_have_no_way_out():
    assert all(s.iso18626 in ISO18626_STATUSES for s in WORKFLOW.states.values())
    # Every ISO status except Loaned belongs to one state meaning (CompletedWithoutReturn:
    # lost or closed, both ending a loan without the book coming back).
    by_iso: dict[str, set[str]] = {}
    for s in WORKFLOW.states.values():
        by_iso.setdefault(s.iso18626, set()).add(s.name)
    assert by_iso["Loaned"] == {"shipped", "received", "checked_out", "returned",
                                "shipped_back"}
    assert by_iso["RequestReceived"] == {"submitted"} and by_iso["Cancelled"] == {"cancelled"}
    for state in WORKFLOW.terminal:
        assert all(not t.applies(state, d) for a in WORKFLOW.actions.values()
                   for t in a.transitions for d in DELIVERIES)
    assert WORKFLOW.terminal == {"completed", "unfilled", "cancelled", "lost", "closed"}


def test_refusals_say_conflict_for_the_state_and_forbidden_for_the_role():
    with pytest.raises(Conflict, match="已寄出"):
        WORKFLOW.transition("shipped", "ship", "lender", "courier")
    with pytest.raises(Forbidden, match="借入馆"):
        WORKFLOW.transition("shipped", "receive", "lender", "courier")
    with pytest.raises(ValidationFailed) as info:
        WORKFLOW.transition("shipped", "teleport", "lender", "courier")
    assert "action" in info.value.errors


@pytest.mark.parametrize("edit, problem", [
    (lambda m: m["states"]["shipped"].update(iso18626="Shipped"), "not an ISO 18626 status"),
    (lambda m: m["actions"]["ship"]["transitions"][0].update(to="flying"), "unknown state"),
    (lambda m: m["actions"]["ship"]["transitions"][0].update(roles=["courier"]),
     "unknown role"),
    (lambda m: m["actions"]["accept"]["transitions"].append(
        {"from": ["submitted"], "to": "unfilled", "roles": ["lender"]}), "leads to both"),
    (lambda m: m["actions"]["accept"]["transitions"].append(
        {"from": ["completed"], "to": "accepted", "roles": ["lender"]}), "leaves terminal"),
    (lambda m: m["groups"]["renewable"].append("napping"), "unknown state 'napping'"),
    (lambda m: m["groups"].pop("to_pull"), "to_pull must list states"),
    (lambda m: m["states"]["shipped"].update(attention_hours="soon"), "attention_hours"),
])
def test_the_loader_rejects_a_broken_model(tmp_path, edit, problem):
    model = yaml.safe_load(STATES_FILE.read_text(encoding="utf-8"))
    edit(model)
    path = tmp_path / "states.yaml"
    path.write_text(yaml.safe_dump(model, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match=problem):
        load(path)


def test_the_service_asks_the_model_for_its_sets_of_states():
    """What the service used to list itself, now read from states.yaml."""
    assert WORKFLOW.sources("cancel") == {"submitted", "accepted"}
    assert WORKFLOW.sources("mark_overdue") == {"received", "checked_out"}
    assert WORKFLOW.unfilled == {"unfilled"}
    assert WORKFLOW.groups.renewable == {"checked_out", "overdue"}
    assert WORKFLOW.groups.to_pull == {"accepted"}
    assert WORKFLOW.starts_loan("ship", "accepted") and WORKFLOW.starts_loan("checkout",
                                                                           "accepted")
    assert not WORKFLOW.starts_loan("checkout", "received")
    assert not WORKFLOW.starts_loan("submit", None)  # an event, not an action


def test_the_service_follows_the_model_for_every_staff_action(db, svc, people):
    """Through the database: a request in each state, every action by every staff side."""
    actors = {"lender": people.pku, "borrower": people.bupt, "admin": people.admin}
    ids = {}
    with db.session() as s:
        # Pick-up needs the consortium self-pickup card (ill/cards.py, issue 14).
        card = svc.apply_card(s, people.reader)
        svc.decide_card(s, people.bupt, card.id, approve=True)
        for i, delivery in enumerate(DELIVERIES):
            ids[delivery] = svc.create_request(s, people.reader,
                                               form(title=f"书{i}", delivery=delivery)).id
    checked = 0
    for delivery, request_id in ids.items():
        for state in RAW["states"]:
            for action in RAW["actions"]:
                for role, actor in actors.items():
                    with db.session() as s:
                        s.execute(update(Request).where(Request.id == request_id)
                                  .values(status=state, cancel_requested_at=None))
                        s.commit()
                        to = expected(state, action, role, delivery)
                        if to is None:
                            with pytest.raises((Conflict, Forbidden)):
                                svc.act(s, actor, request_id, action, reason="NotHeld")
                            assert svc.get_request(s, actor, request_id).status == state
                        else:
                            view = svc.act(s, actor, request_id, action, reason="NotHeld")
                            assert view.status == to, (state, action, role, delivery)
                        checked += 1
    assert checked == 2 * len(RAW["states"]) * len(RAW["actions"]) * 3


def test_every_label_a_page_shows_has_its_english():
    """Pages in English show the states, next steps and actions of ill/states.yaml in
    English (web/i18n.in_lang picks them): none may be missing."""
    flow = load()
    for state in flow.states.values():
        assert state.label_en and state.label_en.isascii(), state.name
        if not state.terminal:
            assert state.next_en and state.next_en.isascii(), state.name
    for action in flow.actions.values():
        assert action.label_en and action.label_en.isascii(), action.name
        assert action.label_en != action.name, action.name
