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
member that answers OPAC to a MARC request still gives us its records.
"""

from __future__ import annotations

from collections.abc import Sequence

from broker.kernel.errors import ProtocolError
from connectors.z3950 import ber
from connectors.z3950.apdu import string
from connectors.z3950.ber import CONTEXT, UNIVERSAL, Node
from marc.model import Holding

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

