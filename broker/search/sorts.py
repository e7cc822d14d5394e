"""The orders a reader can ask for (CONTRACTS section 1: ``--sort``; the search API's
``sort``), apart from ``broker.search.rank`` so the command line can offer them without
loading the ranking."""

from __future__ import annotations

from typing import Literal, get_args

Sort = Literal["relevance", "year", "-year", "title"]
SORTS: tuple[Sort, ...] = get_args(Sort)
