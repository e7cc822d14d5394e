"""MARCXML in any namespace: MARC21 slim, and the UNIMARC/CNMARC variants Alma's SRU sends.

A MARC record is any element named ``record`` whose children are ``leader``,
``controlfield`` and ``datafield``, whatever its namespace; so records are found inside SRU
envelopes too (including ``recordPacking=string``, where the record is escaped text).
Parsing never resolves entities, never touches the network, and refuses huge trees.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from lxml import etree
from pymarc import Field, Indicators, Leader, Subfield
from pymarc import Record as MarcRecord

from marc.flavour import AUTO, MARC21, UNIMARC, Flavour, FlavourChoice, detect_flavour

logger = logging.getLogger(__name__)

# Namespaces that announce UNIMARC content (Alma's unimarcxml and cnmarcxml schemas).
UNIMARC_NAMESPACES = frozenset({"info:srw/schema/8/unimarcxml-v0.1", "http://www.nlc.cn/"})

_MARC_CHILDREN = frozenset({"leader", "controlfield", "datafield"})
# An escaped record inside recordData (recordPacking=string) may be this large.
MAX_STRING_RECORD = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class FoundRecord:
    """A record read from a text format (MARCXML or MARC-in-JSON), or why it could not be."""

    record: MarcRecord | None
    flavour: Flavour | None  # None exactly when record is None
    line: int | None
    problems: tuple[str, ...]
    # True when the problem is the document's (not well-formed), not one record's.
    document_error: bool = False


def _parser_options() -> dict:
    return {"resolve_entities": False, "no_network": True, "load_dtd": False,
            "huge_tree": False, "remove_comments": True, "remove_pis": True}


def safe_parser() -> etree.XMLParser:
    """An XML parser that resolves no entities, loads nothing, and caps tree size."""
    return etree.XMLParser(**_parser_options())


def _local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""  # comments and processing instructions
    return tag.rpartition("}")[2]


def iter_xml_records(source: IO[bytes] | str, *, flavour: FlavourChoice = AUTO
                     ) -> Iterator[FoundRecord]:
    """Every MARC record in an XML document, streaming; a broken one is reported, not fatal."""
    events = etree.iterparse(source, events=("end",), recover=True, **_parser_options())
    found = 0
    errors_seen = 0
    try:
        for _event, elem in events:
            local = _local(elem.tag)
            if local == "record" and is_marc(elem):
                found += 1
                item = element_to_record(elem, flavour=flavour)
                # Errors the recovering parser met while this record was open (a file cut
                # off inside it, a broken tag) make it incomplete: say so on the record.
                new_errors = [e for e in list(events.error_log)[errors_seen:]
                              if e.level_name in ("ERROR", "FATAL")]
                errors_seen = len(events.error_log)
                if new_errors and item.record is not None:
                    notes = tuple(f"XML error at line {e.line}: {e.message}; the record may "
                                  "be incomplete" for e in new_errors)
                    item = FoundRecord(item.record, item.flavour, item.line,
                                       item.problems + notes)
                yield item
                elem.clear()
                parent = elem.getparent()
                if parent is not None:
                    while elem.getprevious() is not None:
                        del parent[0]
            elif local == "recordData" and len(elem) == 0 and "<" in (elem.text or ""):
                for item in _string_packed(elem, flavour):
                    found += 1
                    yield item
    except etree.XMLSyntaxError as exc:
        yield FoundRecord(None, None, exc.lineno, (f"XML is not well-formed: {exc.msg}",),
                          document_error=True)
        return
    for error in events.error_log:
        if error.level_name == "FATAL":
            yield FoundRecord(None, None, error.line,
                              (f"XML error repaired by skipping content: {error.message}",),
                              document_error=True)
    if not found:
        yield FoundRecord(None, None, None, ("no MARC records in this XML document",),
                          document_error=True)


def is_marc(elem: etree._Element) -> bool:
    """A record element with MARC children (leader, controlfield, datafield)."""
    return any(_local(child.tag) in _MARC_CHILDREN for child in elem)


def _string_packed(elem: etree._Element, flavour: FlavourChoice) -> Iterator[FoundRecord]:
    text = elem.text or ""
    if len(text) > MAX_STRING_RECORD:
        yield FoundRecord(None, None, elem.sourceline,
                        (f"escaped record of {len(text)} characters exceeds the size cap",))
        return
    try:
        root = etree.fromstring(text.strip().encode("utf-8"), safe_parser())
    except etree.XMLSyntaxError as exc:
        yield FoundRecord(None, None, elem.sourceline,
                        (f"escaped record in recordData is not well-formed: {exc.msg}",))
        return
    candidates = [root] if _local(root.tag) == "record" else list(root.iter("{*}record"))
    for candidate in candidates:
        if is_marc(candidate):
            yield element_to_record(candidate, flavour=flavour, line=elem.sourceline)


def element_to_record(
    elem: etree._Element, *, flavour: FlavourChoice = AUTO, line: int | None = None
) -> FoundRecord:
    """One MARCXML ``record`` element as a pymarc record; oddities become warnings."""
    try:
        return _element_to_record(elem, flavour, line)
    except UnicodeDecodeError as exc:
        # The recovering parser keeps a character reference to a surrogate (&#xD800;) in
        # a value that lxml then cannot hand out as text.
        return FoundRecord(None, None, line or elem.sourceline,
                           (f"a value is not Unicode text ({exc.reason}, perhaps a "
                            "character reference to a surrogate); the record is skipped",))


def _element_to_record(elem: etree._Element, flavour: FlavourChoice, line: int | None
                       ) -> FoundRecord:
    problems: list[str] = []
    record = MarcRecord()
    leader_text = None
    for child in elem:
        local = _local(child.tag)
        if local == "leader":
            leader_text = child.text or ""
        elif local == "controlfield":
            tag = (child.get("tag") or "").strip()
            if not tag:
                problems.append("controlfield without a tag skipped")
                continue
            record.fields.append(Field(tag=tag, data=child.text or ""))
        elif local == "datafield":
            field = _datafield(child, problems)
            if field is not None:
                record.fields.append(field)
    if leader_text is None:
        problems.append("record has no leader; a blank one is assumed")
        leader_text = ""
    elif len(leader_text) != 24:
        problems.append(f"leader has {len(leader_text)} characters, not 24")
    record.leader = Leader((leader_text + " " * 24)[:24])

    if not record.fields:
        return FoundRecord(None, None, line or elem.sourceline, ("record has no fields",))
    if flavour == AUTO:
        namespace = etree.QName(elem).namespace
        default: Flavour = UNIMARC if namespace in UNIMARC_NAMESPACES else MARC21
        found = detect_flavour([f.tag for f in record.fields], default=default)
    else:
        found = flavour
    return FoundRecord(record, found, line or elem.sourceline, tuple(problems))


def _datafield(elem: etree._Element, problems: list[str]) -> Field | None:
    tag = (elem.get("tag") or "").strip()
    if not tag:
        problems.append("datafield without a tag skipped")
        return None
    ind1 = (elem.get("ind1") or " ")[:1] or " "
    ind2 = (elem.get("ind2") or " ")[:1] or " "
    subfields = []
    for sub in elem:
        if _local(sub.tag) != "subfield":
            continue
        code = sub.get("code") or ""
        if len(code) != 1:
            problems.append(f"field {tag}: subfield code {code!r} is not one character")
            code = code[:1] or "?"
        subfields.append(Subfield(code=code, value=sub.text or ""))
    return Field(tag=tag, indicators=Indicators(ind1, ind2), subfields=subfields)
