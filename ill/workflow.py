"""The declarative ILL state model (``states.yaml``): loaded, checked, and asked.

``WORKFLOW.transition(status, action, role, delivery)`` is the only place that decides
whether an action may be taken; the service layer never compares status names itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from broker.kernel.errors import ConfigError, Conflict, Forbidden, ValidationFailed

STATES_FILE = Path(__file__).resolve().parent / "states.yaml"
ROLES = ("reader", "lender", "borrower", "admin", "system")
DELIVERIES = ("courier", "pickup")
# ISO 18626 (2021) supplying-agency statuses.
ISO18626_STATUSES = (
    "RequestReceived", "ExpectToSupply", "WillSupply", "Loaned", "Overdue", "Recalled",
    "RetryPossible", "Unfilled", "CopyCompleted", "LoanCompleted", "CompletedWithoutReturn",
    "Cancelled",
)
ISO18626_MESSAGES = ("Received", "ShippedReturn", "ShippedForward", "Cancel", "Renew")


@dataclass(frozen=True, slots=True)
class State:
    name: str
    iso18626: str
    label: str
    label_en: str
    terminal: bool = False
    next: str | None = None  # what happens next, for the reader's timeline
    iso18626_message: str | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    action: str
    from_states: frozenset[str]
    to: str
    roles: frozenset[str]
    delivery: str | None = None  # None: either
    sets_due: bool = False
    charges_fine: bool = False
    reason_required: bool = False

    def applies(self, status: str, delivery: str) -> bool:
        return status in self.from_states and self.delivery in (None, delivery)


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    label: str
    transitions: tuple[Transition, ...]
    reason_required: bool = False


@dataclass(frozen=True, slots=True)
class Workflow:
    states: dict[str, State]
    actions: dict[str, Action]
    initial: str
    undo_roles: dict[str, frozenset[str]]  # role of the undone action -> who may undo it

    @property
    def terminal(self) -> frozenset[str]:
        return frozenset(n for n, s in self.states.items() if s.terminal)

    @property
    def active(self) -> frozenset[str]:
        return frozenset(n for n, s in self.states.items() if not s.terminal)

    def state(self, name: str) -> State:
        return self.states[name]

    def transition(self, status: str, action: str, role: str, delivery: str) -> Transition:
        """The transition ``role`` takes with ``action`` from ``status``.

        ValidationFailed for an unknown action; Conflict when the state does not allow the
        action at all; Forbidden when it does, but not for this role."""
        if not isinstance(action, str) or action not in self.actions:
            raise ValidationFailed({"action": f"没有“{action}”这个操作"},
                                   {"action": f"unknown action {action!r}"})
        candidates = [t for t in self.actions[action].transitions if t.applies(status, delivery)]
        if not candidates:
            label = self.states[status].label if status in self.states else status
            raise Conflict(f"申请当前状态为“{label}”，不能{self.actions[action].label}")
        for candidate in candidates:
            if role in candidate.roles:
                return candidate
        sides = "、".join(_ROLE_NAMES[r] for r in sorted(set().union(*(c.roles for c in
                                                                     candidates))))
        raise Forbidden(f"只有{sides}可以{self.actions[action].label}")

    def allowed_actions(self, status: str, role: str, delivery: str) -> list[str]:
        """The actions ``role`` may take now, in the order of the state model."""
        return [name for name, action in self.actions.items()
                if any(t.applies(status, delivery) and role in t.roles
                       for t in action.transitions)]


_ROLE_NAMES = {"reader": "读者本人", "lender": "出借馆", "borrower": "借入馆",
               "admin": "联盟管理员", "system": "系统"}


def load(path: str | Path = STATES_FILE) -> Workflow:
    """Read and check a state model; ConfigError lists every problem found."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the state model: {exc}") from None
    problems: list[str] = []
    workflow = _build(raw if isinstance(raw, dict) else {}, problems)
    if problems:
        raise ConfigError("\n".join(f"{path}: {p}" for p in problems))
    return workflow


def _build(raw: dict[str, Any], problems: list[str]) -> Workflow:
    states: dict[str, State] = {}
    for name, spec in (raw.get("states") or {}).items():
        spec = spec or {}
        iso = spec.get("iso18626")
        if iso not in ISO18626_STATUSES:
            problems.append(f"state {name}: iso18626 {iso!r} is not an ISO 18626 status")
        message = spec.get("iso18626_message")
        if message is not None and message not in ISO18626_MESSAGES:
            problems.append(f"state {name}: iso18626_message {message!r} is not an ISO "
                            "18626 requesting-agency action")
        if not spec.get("terminal") and not spec.get("next"):
            problems.append(f"state {name}: an active state needs `next` for the reader")
        states[name] = State(name, str(iso), str(spec.get("label", name)),
                             str(spec.get("label_en", name)), bool(spec.get("terminal")),
                             spec.get("next"), message)
    initial = raw.get("initial")
    if initial not in states:
        problems.append(f"initial state {initial!r} is not a state")
    actions: dict[str, Action] = {}
    reached = {initial}
    for name, spec in (raw.get("actions") or {}).items():
        spec = spec or {}
        reason = spec.get("reason") == "required"
        transitions = []
        for i, item in enumerate(spec.get("transitions") or []):
            where = f"action {name} transition {i + 1}"
            froms = frozenset(item.get("from") or [])
            roles = frozenset(item.get("roles") or [])
            to = item.get("to")
            delivery = item.get("delivery")
            for state in sorted(froms | {to}):
                if state not in states:
                    problems.append(f"{where}: unknown state {state!r}")
                elif state in froms and states[state].terminal:
                    problems.append(f"{where}: leaves terminal state {state!r}")
            for role in sorted(roles - set(ROLES)):
                problems.append(f"{where}: unknown role {role!r}")
            if not roles:
                problems.append(f"{where}: no role may take it")
            if delivery not in (None, *DELIVERIES):
                problems.append(f"{where}: delivery must be courier or pickup")
            reached.add(to)
            transitions.append(Transition(
                name, froms, str(to), roles, delivery,
                bool(item.get("sets_due", spec.get("sets_due", False))),
                bool(item.get("charges_fine", spec.get("charges_fine", False))), reason))
        if not transitions:
            problems.append(f"action {name}: no transitions")
        _check_deterministic(name, transitions, problems)
        actions[name] = Action(name, str(spec.get("label", name)), tuple(transitions), reason)
    for name in sorted(set(states) - reached):
        problems.append(f"state {name}: no action leads to it")
    undo_raw = (raw.get("undo") or {}).get("roles") or {}
    undo = {}
    for role, who in undo_raw.items():
        if role not in ROLES or not set(who) <= set(ROLES):
            problems.append(f"undo: unknown role in {role}: {who}")
        undo[role] = frozenset(who)
    return Workflow(states, actions, str(initial), undo)


def _check_deterministic(name: str, transitions: list[Transition], problems: list[str]) -> None:
    """One (state, role, delivery) must lead to one place, or the action is ambiguous."""
    seen: dict[tuple[str, str, str], str] = {}
    for t in transitions:
        for state in t.from_states:
            for role in t.roles:
                for delivery in (t.delivery,) if t.delivery else DELIVERIES:
                    key = (state, role, delivery)
                    if key in seen and seen[key] != t.to:
                        problems.append(f"action {name}: from {state} as {role} ({delivery}) "
                                        f"leads to both {seen[key]} and {t.to}")
                    seen[key] = t.to


WORKFLOW = load()
