"""The records of a Search's piggyback or a Present: fetched from the result set in the
syntax asked for, encoded, and cut where the client's message sizes say (Z39.50 3.2.2.1.4,
3.2.3.1.6): presentStatus partial-2 before the response outgrows the preferred message
size, partial-3 beyond MAX_PRESENT records, a surrogate diagnostic for a record over the
exceptional record size or one that cannot be encoded.
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

import pymarc

from connectors.catalogue import Catalogue, FlavouredResultSet, ResultSet, catalogue_flavours
from connectors.z3950 import server_pdu as spdu
from connectors.z3950.diagnostics import Bib1
from connectors.z3950.server_records import catalogue_encoding, encode_record, record_syntax

logger = logging.getLogger(__name__)

FETCH_CHUNK = 50  # records asked of the catalogue at a time
MAX_PRESENT = 1000  # records in one response at most (partial-3 beyond)


async def records(database: bytes, catalogue: Catalogue, results: ResultSet, start: int,
                  count: int, requested: tuple[int, ...] | None, *, utf8: bool,
                  message_size: int, record_size: int) -> tuple[bytes | None, int, int]:
    """Records ``start``.. as Records, how many, and the presentStatus.

    Stops short (partial-2) before the response outgrows the client's preferred message
    size; a record alone over it is sent alone, and one over the exceptional record size
    becomes a surrogate diagnostic. At most MAX_PRESENT records (partial-3)."""
    syntax, flavour = record_syntax(requested, catalogue_flavours(catalogue))
    encoding = "utf-8" if utf8 else catalogue_encoding(catalogue)
    last = min(results.hits, start + count - 1)
    stop = min(last, start + MAX_PRESENT - 1)
    items: list[bytes] = []
    size, status, position = 0, 0, start
    while position <= stop and status == 0:
        try:
            batch = await _fetch(catalogue, results, position,
                             min(FETCH_CHUNK, stop - position + 1), flavour)
        except Exception as exc:
            logger.exception("catalogue %s failed to fetch", catalogue.name)
            if not items:
                raise Bib1(14, f"the catalogue failed: {type(exc).__name__}") from None
            status = 4
            break
        if not batch:
            break
        for record in batch:
            item = _item(database, record, flavour, syntax, encoding, position)
            if items and size + len(item) > message_size:
                status = 2
                break
            if len(item) > record_size:
                item = spdu.diagnostic_item(database, 17,
                                            f"{len(item)} bytes")
            items.append(item)
            size += len(item)
            position += 1
            if size > message_size:
                status = 2
                break
            if len(items) % 10 == 0:
                await asyncio.sleep(0)  # encoding is CPU work: let others run
    if status == 2 and position > last:
        status = 0  # a record sent alone, and it was the last one wanted
    if status == 0 and position <= last:
        status = 3 if position > stop else 4
    if not items:
        return None, 0, status
    return spdu.response_records(items), len(items), status


def _item(database: bytes, record: pymarc.Record, flavour: str,
          syntax: tuple[int, ...], encoding: str, position: int) -> bytes:
    try:
        data = encode_record(record, flavour, syntax, encoding)
        return spdu.record_item(database, syntax, data)
    except Bib1 as diag:
        return spdu.diagnostic_item(database, diag.code, diag.addinfo)
    except Exception as exc:
        logger.warning("record %d cannot be encoded: %s", position, exc)
        return spdu.diagnostic_item(database, 14, f"record {position}: {exc}")


async def _fetch(catalogue: Catalogue, results: ResultSet, start: int, count: int,
                 flavour: str) -> list[pymarc.Record]:
    """Records of a set in ``flavour``: only a catalogue that writes other flavours than its
    own is asked for one (connectors/catalogue.py), so every other keeps its plain fetch."""
    if flavour == catalogue.flavour:
        return await results.fetch(start, count)
    return await cast(FlavouredResultSet, results).fetch(start, count, flavour)
