"""The reader's own address behind trusted proxies only (``--trusted-proxy``).

A WSGI middleware installed by ``web.create_app`` from the setting ``TRUSTED_PROXIES``
(addresses or CIDR networks). When the TCP peer is one of them, ``X-Forwarded-For`` is
walked from the right, skipping trusted hops, and the first address that is not trusted
becomes ``REMOTE_ADDR``; ``X-Forwarded-Proto`` sets the URL scheme and
``X-Forwarded-Host`` the host. From any other peer the three headers are removed, so the
logs, the login pages and everything else see the real peer and nobody can claim another
address by sending a header. A malformed header is ignored (the peer stays the client),
never an error.

Waitress's own handling trusts one address or all; this one takes networks and several
hops, so ``web.server.make_server`` turns waitress's off.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
PEER_KEY = "balis.peer"  # environ: the TCP peer, kept when REMOTE_ADDR is replaced
FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST")
# The others waitress knows of: never believed here, removed so nothing downstream does.
IGNORED = ("HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_BY", "HTTP_FORWARDED")
MAX_HOPS = 32  # X-Forwarded-For entries looked at, from the right
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$")


def networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """The trusted networks; ValueError naming the first entry that is not an address or
    network."""
    out = []
    for entry in entries:
        try:
            out.append(ipaddress.ip_network(str(entry).strip(), strict=False))
        except ValueError:
            raise ValueError(f"TRUSTED_PROXIES: {entry!r} is not an IP address or "
                             "network (e.g. 127.0.0.1, 10.0.0.0/8)") from None
    return tuple(out)


class TrustedProxies:
    """WSGI middleware: REMOTE_ADDR, scheme and host from trusted proxies' headers."""

    def __init__(self, app: WSGIApplication, trusted: Sequence[str | Network]) -> None:
        self.app = app
        self.trusted = networks(str(t) for t in trusted)

    def is_trusted(self, address: str | None) -> bool:
        parsed = _address(address)
        return parsed is not None and any(parsed in net for net in self.trusted)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse
                 ) -> Iterable[bytes]:
        peer = environ.get("REMOTE_ADDR")
        environ[PEER_KEY] = peer
        if self.trusted and self.is_trusted(peer):
            self._believe(environ)
        for key in FORWARDED + IGNORED:
            environ.pop(key, None)
        return self.app(environ, start_response)

    def _believe(self, environ: WSGIEnvironment) -> None:
        client = self.client(environ.get("HTTP_X_FORWARDED_FOR", ""))
        if client is not None:
            environ["REMOTE_ADDR"] = client
        proto = _last(environ.get("HTTP_X_FORWARDED_PROTO", "")).lower()
        if proto in ("http", "https"):
            environ["wsgi.url_scheme"] = proto
        host = _last(environ.get("HTTP_X_FORWARDED_HOST", ""))
        if host and _HOST.match(host):
            environ["HTTP_HOST"] = host

    def client(self, header: str) -> str | None:
        """The reader's address in an X-Forwarded-For value: the rightmost entry that is
        not a trusted proxy (all trusted: the leftmost). None when the value is empty or
        an entry that should be an address is not one (then the header says nothing)."""
        hops = [part.strip() for part in header.split(",")][-MAX_HOPS:]
        if not header.strip():
            return None
        chosen = None
        for hop in reversed(hops):
            parsed = _address(hop)
            if parsed is None:
                logger.debug("ignoring X-Forwarded-For with a bad entry: %r", hop[:64])
                return None
            chosen = str(parsed)
            if not any(parsed in net for net in self.trusted):
                return chosen
        return chosen


def _last(value: str) -> str:
    """The value the nearest proxy set (the last of a comma-separated list)."""
    return value.rsplit(",", 1)[-1].strip()


def _address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as a proxy writes it (``1.2.3.4``, ``1.2.3.4:5678``, ``[::1]:80``,
    ``::1``); None for anything else."""
    if not text:
        return None
    text = text.strip()
    if text.startswith("["):
        text = text[1:text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1 for the trusted list
    return address
