"""Which libraries file a command reads: one rule for every subcommand (CONTRACTS section 1)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

DEFAULT_CONFIG = Path("config/libraries.yaml")


def config_path(args: argparse.Namespace) -> Path:
    """--config (before or after the subcommand), else $BALIS_CONFIG, else the default."""
    chosen = getattr(args, "config", None) or os.environ.get("BALIS_CONFIG")
    return Path(chosen) if chosen else DEFAULT_CONFIG
