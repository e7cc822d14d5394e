"""What a harvest can write, and the file extension of each: light enough for the command
line to offer them without loading the writers."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

OutputFormat = Literal["iso2709", "marcxml", "jsonl"]
FORMATS: tuple[OutputFormat, ...] = get_args(OutputFormat)
EXTENSIONS: dict[OutputFormat, str] = {"iso2709": ".mrc", "marcxml": ".xml", "jsonl": ".jsonl"}

CHECKPOINT_VERSION = 1


def checkpoint_path(out: Path) -> Path:
    """Where a harvest into ``out`` keeps its checkpoint (JSON, beside the output)."""
    return out.with_name(out.name + ".checkpoint")
