"""Connectors: each member library's catalogue, spoken to in its own protocol.

``connectors.registry`` builds the right one from a library's config entry; the servers
under ``connectors.sru`` and ``connectors.z3950`` serve any ``connectors.catalogue.Catalogue``.
"""
