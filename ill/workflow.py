"""The declarative ILL state model (``states.yaml``): loaded, checked, and asked.

``WORKFLOW.transition(status, action, role, delivery)`` is the only place that decides
whether an action may be taken; the service layer never lists status names itself: it asks
for the states an action leaves (``sources``), a named group of ``states.yaml``
(``groups.renewable``, ``groups.due_running``, ...) or the states ISO 18626 reports as
Unfilled.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, cast, get_args

import yaml

from broker.kernel.errors import ConfigError, Conflict, Forbidden, ValidationFailed

STATES_FILE = Path(__file__).resolve().parent / "states.yaml"
# Who acts on a request: its reader, staff of either side, an admin, or a scheduled job.
RequestRole = Literal["reader", "lender", "borrower", "admin", "system"]
ROLES: tuple[RequestRole, ...] = get_args(RequestRole)
Delivery = Literal["courier", "pickup"]
DELIVERIES: tuple[Delivery, ...] = get_args(Delivery)
# ISO 18626 (2021) supplying-agency statuses.
Iso18626Status = Literal[
    "RequestReceived", "ExpectToSupply", "WillSupply", "Loaned", "Overdue", "Recalled",
    "RetryPossible", "Unfilled", "CopyCompleted", "LoanCompleted", "CompletedWithoutReturn",
    "Cancelled",
]
ISO18626_STATUSES: tuple[Iso18626Status, ...] = get_args(Iso18626Status)
ISO18626_MESSAGES = ("Received", "ShippedReturn", "ShippedForward", "Cancel", "Renew")


@dataclass(frozen=True, slots=True)
class Groups:
    """The named groups of states in ``states.yaml`` that the service asks about."""

    renewable: frozenset[str]  # the reader has the book: a renewal may be asked, granted
    due_running: frozenset[str]  # the book is out, not back from the reader: can be past due
    tells_due: frozenset[str]  # the reader's message on entering one names the due date
    supplied: frozenset[str]  # the lender supplied the book, whatever became of it later
    to_pull: frozenset[str]  # the lender has yet to fetch the book from its shelves


GROUPS = tuple(f.name for f in fields(Groups))  # the loader insists on each


@dataclass(frozen=True, slots=True)
class State:
    name: str
    iso18626: Iso18626Status
    label: str
    label_en: str
    terminal: bool = False
    next: str | None = None  # what happens next, for the reader's timeline
    next_en: str | None = None
    iso18626_message: str | None = None
    attention_hours: int | None = None  # waiting longer than this here needs staff attention


@dataclass(frozen=True, slots=True)
class Transition:
    action: str
    from_states: frozenset[str]
    to: str
    roles: frozenset[RequestRole]
    delivery: Delivery | None = None  # None: either
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
    label_en: str = ""
    reason_required: bool = False
    # Ends or gives up on the request (cancel, reject, close, mark_lost): the pages style it
    # apart and ask to confirm before taking it.
    destructive: bool = False


@dataclass(frozen=True, slots=True)
class Workflow:
    states: dict[str, State]
    actions: dict[str, Action]
    initial: str
    undo_roles: dict[str, frozenset[RequestRole]]  # role of the undone action -> who may undo
    groups: Groups

    @property
    def terminal(self) -> frozenset[str]:
        return frozenset(n for n, s in self.states.items() if s.terminal)

    @property
    def active(self) -> frozenset[str]:
        return frozenset(n for n, s in self.states.items() if not s.terminal)

    @property
    def unfilled(self) -> frozenset[str]:
        """The states reported as ISO 18626 Unfilled: the lender said no (and why)."""
        return frozenset(n for n, s in self.states.items() if s.iso18626 == "Unfilled")

    def sources(self, action: str) -> frozenset[str]:
        """The states ``action`` can be taken from, by anyone, with either delivery."""
        return frozenset().union(*(t.from_states for t in self.actions[action].transitions))

    def starts_loan(self, action: str, from_status: str | None) -> bool:
        """Whether taking ``action`` from ``from_status`` hands the book out of the lender's
        hands (its transition sets the due date): a ship, or a pick-up at the lender's desk."""
        spec = self.actions.get(action)
        return spec is not None and any(t.sets_due and from_status in t.from_states
                                        for t in spec.transitions)

    def transition(self, status: str, action: str, role: RequestRole,
                   delivery: str) -> Transition:
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

    def allowed_actions(self, status: str, role: RequestRole, delivery: str) -> list[str]:
        """The actions ``role`` may take now, in the order of the state model."""
        return [name for name, action in self.actions.items()
                if any(t.applies(status, delivery) and role in t.roles
                       for t in action.transitions)]


_ROLE_NAMES: dict[RequestRole, str] = {"reader": "读者本人", "lender": "出借馆",
                                       "borrower": "借入馆", "admin": "联盟管理员",
                                       "system": "系统"}


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
        hours = spec.get("attention_hours")
        if hours is not None and (not isinstance(hours, int) or isinstance(hours, bool)
                                  or hours <= 0):
            problems.append(f"state {name}: attention_hours must be a positive whole number")
        states[name] = State(name, cast(Iso18626Status, str(iso)), str(spec.get("label", name)),
                             str(spec.get("label_en", name)), bool(spec.get("terminal")),
                             spec.get("next"), spec.get("next_en"), message, hours)
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
        destructive = spec.get("destructive", False)
        if not isinstance(destructive, bool):
            problems.append(f"action {name}: destructive must be true or false")
        actions[name] = Action(name, str(spec.get("label", name)), tuple(transitions),
                               str(spec.get("label_en", name)), reason, destructive is True)
    for name in sorted(set(states) - reached):
        problems.append(f"state {name}: no action leads to it")
    undo_raw = (raw.get("undo") or {}).get("roles") or {}
    undo = {}
    for role, who in undo_raw.items():
        if role not in ROLES or not set(who) <= set(ROLES):
            problems.append(f"undo: unknown role in {role}: {who}")
        undo[role] = frozenset(who)
    return Workflow(states, actions, str(initial), undo,
                    _groups(raw.get("groups"), states, problems))


def _groups(raw: Any, states: dict[str, State], problems: list[str]) -> Groups:
    """The named groups: each one the service asks for, of known states only."""
    raw = raw if isinstance(raw, dict) else {}
    groups: dict[str, frozenset[str]] = {}
    for name in GROUPS:
        members = raw.get(name)
        if not isinstance(members, list) or not members:
            problems.append(f"groups: {name} must list states")
            members = []
        for state in members:
            if state not in states:
                problems.append(f"groups: {name}: unknown state {state!r}")
        groups[name] = frozenset(members)
    for name in sorted(set(raw) - set(GROUPS)):
        problems.append(f"groups: {name} is not a group the service knows ({', '.join(GROUPS)})")
    return Groups(**groups)


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
