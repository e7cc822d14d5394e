"""Connectors: each member library's catalogue, spoken to in its own protocol."""

from __future__ import annotations

import aiohttp

from broker.config import Library
from connectors.base import Connector, SearchPage
from connectors.local_index import LocalIndexConnector
from connectors.sru import SruConnector
from connectors.z3950.connector import Z3950Connector

__all__ = ["Connector", "SearchPage", "create"]


def create(library: Library, session: aiohttp.ClientSession | None = None) -> Connector:
    """The connector for one library's validated config entry."""
    if library.connector is None:
        raise ValueError(f"{library.id} is not searchable (no connector)")
    if library.connector.protocol == "sru":
        return SruConnector(library, session)
    if library.connector.protocol == "local":
        return LocalIndexConnector(library)
    return Z3950Connector(library)
