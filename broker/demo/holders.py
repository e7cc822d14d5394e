"""Who holds what: each demo work in the catalogues of 1 to 8 members, and whether each
copy is on the shelf (``circulation``).

Members hold more of the works whose subjects they favour (their category's areas and
their own, ``vocabulary.CATEGORY_AREAS`` and ``MEMBER_AREAS``), so the same book comes
back from several libraries and de-duplication shows; each member ends with a catalogue
of ``low``..``high`` records, in accession order rather than ours.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from broker.demo.vocabulary import CATEGORY_AREAS, MEMBER_AREAS
from broker.demo.works import Work
from marc.model import HoldingStatus

HOLDERS = (1, 2, 3, 4, 5, 6, 7, 8)
HOLDER_WEIGHTS = (30, 24, 16, 11, 8, 5, 4, 2)


def assign(rng: random.Random, works: list[Work], members: list[tuple[str, str]],
           categories: dict[str, str], low: int = 50, high: int = 150
           ) -> dict[str, list[Work]]:
    """Each work to 1-8 members (the ones whose subjects it fits more likely), each member
    ending with ``low``..``high`` records."""
    ids = [lid for lid, _ in members]
    target = _targets(rng, ids, categories, low, high)
    favours = {lid: set((CATEGORY_AREAS[categories[lid]] + " " + MEMBER_AREAS.get(lid, ""))
                        .split()) for lid in ids}
    held: dict[str, list[Work]] = {lid: [] for lid in ids}
    order = list(works)
    rng.shuffle(order)
    for work in order:
        for lid in _holders(rng, work, ids, target, favours, held):
            held[lid].append(work)
    for lid in ids:  # every member holds at least ``low`` records
        _fill(rng, held[lid], works, low, high)
    return held


def _targets(rng: random.Random, ids: list[str], categories: dict[str, str], low: int,
             high: int) -> dict[str, int]:
    """How many records each member is to end with: more at the big libraries."""
    target = {}
    for lid in ids:
        big = categories[lid] in ("public", "comprehensive") or lid in ("pku", "thu", "nlc")
        target[lid] = rng.randrange(110, high + 1) if big else rng.randrange(low, 125)
    return target


def _holders(rng: random.Random, work: Work, ids: list[str], target: dict[str, int],
             favours: dict[str, set[str]], held: dict[str, list[Work]]) -> list[str]:
    """The members that hold ``work``: its owner (a university's own journal) first."""
    k = rng.choices(HOLDERS, HOLDER_WEIGHTS)[0]
    if work.weight > 1.2:
        k = min(8, k + 1)
    chosen: list[str] = []
    if work.owner:
        chosen.append(work.owner)
    area = "EN" if work.kind == "en" else work.area
    while len(chosen) < k:
        weights = [_weight(lid, chosen, work, area, target, favours, held) for lid in ids]
        if not any(weights):
            break
        chosen.append(rng.choices(ids, weights)[0])
    return chosen


def _weight(lid: str, chosen: list[str], work: Work, area: str, target: dict[str, int],
            favours: dict[str, set[str]], held: dict[str, list[Work]]) -> float:
    """How likely ``lid`` is to hold ``work`` next: by fit, and by room left."""
    if lid in chosen:
        return 0.0
    room = target[lid] - len(held[lid])
    fit = 4.0 if area in favours[lid] or work.area in favours[lid] else 1.0
    return fit * (room if room > 0 else 0.02)


def _fill(rng: random.Random, catalogue: list[Work], works: list[Work], low: int,
          high: int) -> None:
    """Top ``catalogue`` up to ``low`` works, cut it to ``high``, shuffle it."""
    have = {w.number for w in catalogue}
    spare = [w for w in works if w.number not in have]
    while len(catalogue) < low and spare:
        catalogue.append(spare.pop(rng.randrange(len(spare))))
    del catalogue[high:]
    catalogue.sort(key=lambda w: w.number)
    rng.shuffle(catalogue)  # a catalogue is in accession order, not ours


# The day the demo's loans are reckoned from: fixed, so one seed gives the same bytes on
# any day (a loan is due 1-8 weeks after it).
LOAN_DAY = date(2026, 12, 1)


def circulation(member: str, barcode: str, *, serial: bool = False
                ) -> tuple[HoldingStatus, str | None]:
    """(status, due date) of one copy: most on the shelf, about a fifth on loan, some not
    for loan, and every serial not for loan (journals stay in the reading room). Drawn
    from the copy's own seed, not the member's ``rng``, so the rest of the catalogue is
    what it was before copies had a status."""
    if serial:
        return "not_for_loan", None
    draw = random.Random(f"{member}:{barcode}").random()
    if draw < 0.22:
        due = LOAN_DAY + timedelta(days=7 + int(draw * 1000) % 50)
        return "on_loan", due.isoformat()
    if draw < 0.30:
        return "not_for_loan", None
    return "available", None
