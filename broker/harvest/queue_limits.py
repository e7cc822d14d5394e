"""How quickly a harvest job whose worker died is taken up again: light enough for the
command line's parser to show the defaults without loading RQ.

A running job's heartbeat is sent every ``HEARTBEAT`` s; ``DEAD_AFTER`` s after the last
one it counts as abandoned, and the workers look for such jobs every ``DEAD_AFTER / 2`` s:
a job whose whole machine died is queued again within ``1.5 * DEAD_AFTER`` s (90 s).
"""

from __future__ import annotations

HEARTBEAT = 15  # seconds between a running job's heartbeats
DEAD_AFTER = 60  # seconds after its last heartbeat that a job counts as abandoned
