"""Test peers: real Z39.50/SRU servers (Zebra, yaz-ztest) and the yaz-client reference.

See ``servers.py`` for the classes and ``fixtures.py`` for the pytest fixtures and the
probe queries; ``zebra/README.md`` describes the Zebra configuration.
"""

import pytest

# fixtures.py is both imported by tests (PROBES) and loaded as a plugin; let pytest
# rewrite it first so that the plugin loader does not warn that it came too late.
pytest.register_assert_rewrite("peers.fixtures")

from peers.servers import (  # noqa: E402
    PeerError,
    YazClientError,
    YazZtest,
    ZebraServer,
    free_port,
    yaz_client_fetch,
    yaz_client_hits,
    yaz_client_run,
)

__all__ = [
    "PeerError", "YazClientError", "YazZtest", "ZebraServer", "free_port",
    "yaz_client_fetch", "yaz_client_hits", "yaz_client_run",
]
