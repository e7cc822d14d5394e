"""The OPAC record syntax (1.2.840.10003.5.102, Z39.50-1995 Appendix REC.1): a bibliographic
record with each library's holdings and their circulation, as one ASN.1 value.

The bibliographic part is the record's MARC (ISO 2709, in the syntax of its flavour); the
holdings are one HoldingsAndCircData per copy, never a MARC holdings record: clients (YAZ,
Koha's Z39.50 client, union catalogue harvesters) read nucCode, localLocation, callNumber
and circulationData, which is where availability lives. A holding whose status the
library did not report has no circulationData (its availableNow is a yes or no, and we do
not know which); ``publicNote`` says the status was not reported and names the item,
whose itemId would otherwise live in that circulationData.

Our own client reads the bibliographic record back out (``bibliographic_marc``) so a
member that answers OPAC to a MARC request still gives us its records, and each copy's
circulation (``opac_copies``), which it lays over the holdings the MARC gave
(``with_circulation``): the OPAC answer is the member's live word on a copy, the MARC's
holdings fields often a nightly export without status.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from broker.kernel.errors import ProtocolError
from connectors.z3950 import ber
from connectors.z3950.apdu import string
from connectors.z3950.ber import CONTEXT, UNIVERSAL, Node
from marc.model import Holding, HoldingStatus
from marc.normalization.holdings import status_from_notes

# status -> (availableNow, what publicNote says)
_CIRCULATION = {
    None: (False, "status not reported"),
    "available": (True, "available"),
    "not_for_loan": (True, "not for loan"),
    "on_loan": (False, "on loan"),
    "unavailable": (False, "unavailable"),
    "lost": (False, "lost"),
}


def opac_record(marc: bytes, marc_syntax: tuple[int, ...], holdings: Sequence[Holding],
                encoding: str = "utf-8") -> bytes:
    """OPACRecord ::= SEQUENCE { bibliographicRecord [1] IMPLICIT EXTERNAL OPTIONAL,
        holdingsData [2] IMPLICIT SEQUENCE OF HoldingsRecord OPTIONAL }
    HoldingsRecord ::= CHOICE { marcHoldingsRecord [1] IMPLICIT EXTERNAL,
        holdingsAndCirc [2] IMPLICIT HoldingsAndCircData }
    ``marc`` goes octet-aligned with ``marc_syntax`` as its direct reference; strings are
    InternationalStrings in ``encoding`` (what the association's records travel in)."""
    bibliographic = ber.seq(CONTEXT, 1, [ber.oid(marc_syntax), ber.octets(marc, CONTEXT, 1)])
    parts = [bibliographic]
    if holdings:
        parts.append(ber.seq(CONTEXT, 2, [_holding(h, encoding) for h in holdings]))
    return ber.seq(UNIVERSAL, ber.SEQUENCE, parts)


def _holding(holding: Holding, encoding: str) -> bytes:
    """HoldingsAndCircData ::= SEQUENCE { ..., nucCode [8] (852 $a), localLocation [9]
        (852 $b), shelvingLocation [10] (852 $c), callNumber [11] (852 $h $i), ...,
        publicNote [14] (852 $z), ..., circulationData [19] IMPLICIT SEQUENCE OF
        CircRecord OPTIONAL }, every string [n] IMPLICIT InternationalString OPTIONAL.
    localLocation names the library as well as its location: a client listing a union
    record's copies shows that field, and the copies are of many libraries."""
    def text(number: int, value: str | None) -> list[bytes]:
        return [string(number, value.encode(encoding, "replace"))] if value else []

    place = " ".join(v for v in (holding.library, holding.location) if v) or None
    available, note = _CIRCULATION.get(holding.status, (False, holding.status or ""))
    if holding.due:
        note = f"{note}, due {holding.due}"
    if holding.status is None and holding.barcode:
        note = f"{note}: item {holding.barcode}"
    # CircRecord ::= SEQUENCE { availableNow [1] IMPLICIT BOOLEAN, availablityDate [2],
    #   availableThru [3], restrictions [4], itemId [5] (InternationalStrings, OPTIONAL),
    #   renewable [6] IMPLICIT BOOLEAN, onHold [7] IMPLICIT BOOLEAN, enumAndChron [8],
    #   midspine [9], temporaryLocation [10] }
    circulation = ber.seq(UNIVERSAL, ber.SEQUENCE, [
        ber.boolean(available, CONTEXT, 1), *text(2, holding.due),
        *text(4, "not for loan" if holding.status == "not_for_loan" else None),
        *text(5, holding.barcode), ber.boolean(False, CONTEXT, 6),
        ber.boolean(False, CONTEXT, 7)])
    known = [ber.seq(CONTEXT, 19, [circulation])] if holding.status is not None else []
    return ber.seq(CONTEXT, 2, [
        *text(8, holding.library), *text(9, place), *text(11, holding.call_number),
        *text(14, note), *known])


def bibliographic_marc(data: bytes) -> tuple[tuple[int, ...] | None, bytes]:
    """The MARC syntax and octets of an OPACRecord's bibliographicRecord (what our client
    keeps of an OPAC answer: the holdings are read from the MARC, as for any record).
    ProtocolError when there is none."""
    node = ber.decode(data)
    if not node.is_(UNIVERSAL, ber.SEQUENCE):
        raise ProtocolError("an OPAC record that is not an OPACRecord")
    external = node.context(1)
    if external is None:
        raise ProtocolError("an OPAC record without a bibliographic record")
    syntax = None
    for child in external.children:
        if child.is_(UNIVERSAL, ber.OID):
            syntax = child.as_oid()
        elif child.is_(CONTEXT, 1):
            return syntax, child.as_bytes()
        elif child.is_(CONTEXT, 0):
            return syntax, _single(child)
    raise ProtocolError("an OPAC bibliographic record without an encoding")


def _single(node: Node) -> bytes:
    inner = node.only()
    if inner.constructed and not inner.is_(UNIVERSAL, ber.OCTET_STRING):
        raise ProtocolError("an OPAC bibliographic record in a structure we do not read")
    return inner.as_bytes()



# --- reading a member's circulation back ------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpacCopy:
    """One HoldingsAndCircData as read: where the copy is and what its circulation says."""

    nuc_code: str | None
    location: str | None
    call_number: str | None
    barcode: str | None
    status: HoldingStatus | None
    due: str | None


def opac_copies(data: bytes, encoding: str = "utf-8") -> tuple[OpacCopy, ...]:
    """The copies of an OPACRecord's holdingsData (a marcHoldingsRecord is skipped: its
    MARC says no more than the bibliographic record's own holdings fields). Strings are
    UTF-8 when they decode as such, else ``encoding`` (a member that did not negotiate).
    ProtocolError when the record is not an OPACRecord."""
    node = ber.decode(data)
    if not node.is_(UNIVERSAL, ber.SEQUENCE):
        raise ProtocolError("an OPAC record that is not an OPACRecord")
    holdings = node.context(2)
    if holdings is None:
        return ()
    return tuple(_copy(child, encoding) for child in holdings.children
                 if child.is_(CONTEXT, 2) and child.constructed)


def _text(node: Node | None, encoding: str) -> str | None:
    if node is None:
        return None
    raw = node.as_bytes()
    try:
        value = raw.decode("utf-8")
    except UnicodeDecodeError:
        value = raw.decode(encoding, "replace")
    return value.strip() or None


def _copy(node: Node, encoding: str) -> OpacCopy:
    nuc = _text(node.context(8), encoding)
    local = _text(node.context(9), encoding)
    shelving = _text(node.context(10), encoding)
    note = _text(node.context(14), encoding)
    if local and nuc and local.startswith(f"{nuc} "):
        local = local[len(nuc) + 1:].strip() or None  # our servers name the library there
    circulation = node.context(19)
    record = circulation.children[0] if circulation is not None and circulation.children \
        else None
    barcode = _text(record.context(5), encoding) if record is not None else None
    if barcode is None and note:
        match = re.search(r"\bitem (\S+)$", note)  # our servers' "status not reported"
        barcode = match.group(1) if match else None
    status, due = _circulation(record, note, encoding)
    return OpacCopy(nuc, shelving or local, _text(node.context(11), encoding), barcode,
                    status, due)


def _circulation(record: Node | None, note: str | None, encoding: str
                 ) -> tuple[HoldingStatus | None, str | None]:
    """CircRecord's availableNow with its availabilityDate and restrictions; where there
    is none, what publicNote says in words (or nothing: no guess)."""
    said, said_due = status_from_notes([note] if note else [])
    if record is None:
        return said, said_due
    available_node = record.context(1)
    available = available_node.as_bool() if available_node is not None else None
    restrictions = _text(record.context(4), encoding)
    date = _text(record.context(2), encoding)
    due = status_from_notes([f"due {date}"])[1] if date else said_due
    if available:
        restricted = said == "not_for_loan" or (restrictions is not None and (
            status_from_notes([restrictions])[0] == "not_for_loan"))
        return ("not_for_loan" if restricted else "available"), None
    if due:
        return "on_loan", due
    if said is not None and said != "available":
        return said, None
    return ("unavailable" if available is False else said), None


def with_circulation(held: tuple[Holding, ...], copies: Sequence[OpacCopy],
                     library: str | None) -> tuple[Holding, ...]:
    """The MARC's holdings with each OPAC copy's status and due date laid over the copy
    of the same barcode (or, where neither names one and the counts agree, of the same
    place in the list); a copy the MARC does not list is added, in ``library``."""
    out = list(held)
    by_barcode = {h.barcode: i for i, h in enumerate(held) if h.barcode}
    same_count = len(copies) == len(held)
    for position, copy in enumerate(copies):
        i = by_barcode.get(copy.barcode) if copy.barcode else None
        if i is None and same_count and not copy.barcode and not held[position].barcode:
            i = position
        if i is None:
            out.append(Holding(library or copy.nuc_code, copy.location, copy.call_number,
                               copy.barcode, copy.status, copy.due))
            continue
        h = out[i]
        known = copy.status is not None
        out[i] = replace(h, location=h.location or copy.location,
                         call_number=h.call_number or copy.call_number,
                         barcode=h.barcode or copy.barcode,
                         status=copy.status if known else h.status,
                         due=copy.due if known else h.due)
    return tuple(out)
