#!/usr/bin/env python3
"""Start-up of the ``balis`` command: each subcommand's ``--help``, against a bare Python.

Run by hand from the repository root::

    python bench/startup.py [--repeat 10]

``balis --help`` builds every subcommand's parser, so it shows what the command loads
before any work; each ``balis COMMAND --help`` shows that the command's own machinery
(the broker, the connectors, the web app, the ledger) is imported only when it runs.
Times are the median wall time of ``--repeat`` runs of ``python -m balis ...``, taken in
turns with ``python -c pass`` (the baseline: the interpreter alone) in the same run; the
figure to watch is the ratio to the baseline. Peak memory (max RSS) is read from the
children's resource usage.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time

COMMANDS = ([], ["libraries"], ["check-config"], ["search"], ["marc", "dump"], ["harvest"],
            ["index", "build"], ["serve"], ["demo"], ["user", "add"])


def _run(argv: list[str]) -> float:
    """Wall seconds of one child."""
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    base = [sys.executable, "-c", "pass"]
    print(f"{'command':28} {'median s':>9} {'x python':>9}")
    for command in COMMANDS:
        ours, bare = [], []
        for _ in range(args.repeat):
            bare.append(_run(base))
            ours.append(_run([sys.executable, "-m", "balis", *command, "--help"]))
        median, baseline = statistics.median(ours), statistics.median(bare)
        name = " ".join(["balis", *command, "--help"])
        print(f"{name:28} {median:9.3f} {median / baseline:9.1f}")
    print(f"python -c pass: {baseline:.3f} s; peak RSS of any child "
          f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
