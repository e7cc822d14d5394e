"""Per-library health: success rate, latency percentiles, and suspension of failing members.

A member that fails several searches in a row (no connection, no answer, garbage) is
suspended for a growing interval, and says so in its status; a member that answers with a
diagnostic about the query is healthy.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import TypedDict

from broker.search import metrics

FAILURES_BEFORE_SUSPENSION = 3
FIRST_SUSPENSION = 30.0  # seconds; doubles with each further failure
LONGEST_SUSPENSION = 600.0
WINDOW = 200  # searches kept for rates and percentiles


class HealthReport(TypedDict):
    """One member's health as the API's /health and the directory page show it."""

    library: str
    searches: int
    success_rate: float | None  # None before its first search
    p50_ms: int | None
    p95_ms: int | None
    consecutive_failures: int
    suspended_seconds: float  # 0: searchable
    last_error: str | None


@dataclass(slots=True)
class LibraryHealth:
    library: str
    outcomes: deque[tuple[bool, float]] = field(  # (ok, seconds)
        default_factory=lambda: deque(maxlen=WINDOW))
    consecutive_failures: int = 0
    suspended_until: float = 0.0  # time.monotonic()
    last_error: str | None = None

    def record(self, ok: bool, seconds: float, error: str | None = None) -> None:
        self.outcomes.append((ok, seconds))
        if ok:
            self.consecutive_failures = 0
            self.suspended_until = 0.0
            return
        self.consecutive_failures += 1
        self.last_error = error
        if self.consecutive_failures >= FAILURES_BEFORE_SUSPENSION:
            extra = self.consecutive_failures - FAILURES_BEFORE_SUSPENSION
            pause = min(LONGEST_SUSPENSION, FIRST_SUSPENSION * 2 ** extra)
            self.suspended_until = time.monotonic() + pause
            metrics.member_suspended(self.library)

    def suspended_for(self) -> float:
        """Seconds of suspension left (0: searchable)."""
        return max(0.0, self.suspended_until - time.monotonic())

    def report(self) -> HealthReport:
        latencies = sorted(seconds for ok, seconds in self.outcomes if ok)
        total = len(self.outcomes)
        return {
            "library": self.library,
            "searches": total,
            "success_rate": (sum(1 for ok, _ in self.outcomes if ok) / total) if total else None,
            "p50_ms": _percentile(latencies, 0.50),
            "p95_ms": _percentile(latencies, 0.95),
            "consecutive_failures": self.consecutive_failures,
            "suspended_seconds": round(self.suspended_for(), 1),
            "last_error": self.last_error,
        }


def _percentile(sorted_values: list[float], q: float) -> int | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return round(sorted_values[index] * 1000)
