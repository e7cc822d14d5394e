"""MARC-in-JSON (the format pymarc and the Code4Lib proposal use).

Accepts one record object, an array of them, or JSON lines (one record per line).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pymarc import Field, Indicators, Leader, Subfield
from pymarc import Record as MarcRecord

from marc.flavour import AUTO, FlavourChoice, detect_flavour
from marc.marcxml import FoundRecord


def iter_json_records(text: str, *, flavour: FlavourChoice = AUTO) -> Iterator[FoundRecord]:
    stripped = text.lstrip()
    try:
        # strict=False: control characters (raw newlines) inside strings, as pymarc's own
        # test file has them and pymarc reads them.
        document = json.loads(stripped, strict=False)
    except json.JSONDecodeError as exc:
        if stripped.startswith("{") and "\n" in stripped.strip():
            yield from _json_lines(text, flavour)
            return
        yield FoundRecord(None, None, exc.lineno, (f"not valid JSON: {exc.msg}",),
                          document_error=True)
        return
    items = document if isinstance(document, list) else [document]
    if not items:
        yield FoundRecord(None, None, None, ("the JSON holds no records",),
                          document_error=True)
    for item in items:
        yield _to_record(item, flavour, None)


def _json_lines(text: str, flavour: FlavourChoice) -> Iterator[FoundRecord]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            yield FoundRecord(None, None, number, (f"not valid JSON: {exc.msg}",))
            continue
        yield _to_record(item, flavour, number)


def _to_record(item: Any, flavour: FlavourChoice, line: int | None) -> FoundRecord:
    if not isinstance(item, dict) or not isinstance(item.get("fields"), list):
        return FoundRecord(None, None, line, ("not a MARC-in-JSON record (no 'fields' list)",))
    problems: list[str] = []
    record = MarcRecord()
    leader = item.get("leader")
    if not isinstance(leader, str) or len(leader) != 24:
        problems.append("leader missing or not 24 characters")
        leader = leader if isinstance(leader, str) else ""
    record.leader = Leader((leader + " " * 24)[:24])
    for entry in item["fields"]:
        if not isinstance(entry, dict) or len(entry) != 1:
            problems.append(f"field entry {str(entry)[:40]!r} skipped: not a one-key object")
            continue
        ((tag, value),) = entry.items()
        if isinstance(value, str):
            record.fields.append(Field(tag=tag, data=value))
        elif isinstance(value, dict):
            subfields = []
            for sub in value.get("subfields") or []:
                if isinstance(sub, dict) and len(sub) == 1:
                    ((code, text),) = sub.items()
                    subfields.append(Subfield(code=str(code)[:1] or "?", value=str(text)))
                else:
                    problems.append(f"field {tag}: subfield {str(sub)[:40]!r} skipped")
            indicators = Indicators(str(value.get("ind1") or " ")[:1] or " ",
                                    str(value.get("ind2") or " ")[:1] or " ")
            record.fields.append(Field(tag=tag, indicators=indicators, subfields=subfields))
        else:
            problems.append(f"field {tag} skipped: neither text nor a data field")
    if not record.fields:
        return FoundRecord(None, None, line, ("record has no fields",))
    found = flavour if flavour != AUTO else detect_flavour([f.tag for f in record.fields])
    return FoundRecord(record, found, line, tuple(problems))
