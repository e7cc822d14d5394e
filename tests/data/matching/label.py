"""The labels (pairs.tsv), written by build.py from facts about each group of records.

Where a label comes from, by group:

* pymarc's test.dat and File_MARC's camel.mrc hold the same ten LC records: each record is
  ``same`` as its copy; any two of the ten are ``different`` books (among them the Perl pair:
  "Perl : programmer's reference" and "Perl : the complete reference", one author, 1999);
* the variants (derived/variants.tsv) are labelled by what their edit means;
* the Austen file (marc4j): records sharing an ISBN are one publication (some are later
  printings: ``same``); records with one title and one year but disjoint ISBN sets are
  different publications (another publisher, binding or edition: ``different``);
* Summerland read from ISO 2709, MARCXML and MARC-in-JSON: ``same``; File_MARC's
  wronglen/xmlescape copies of one record: ``same``;
* BNU's CNMARC records in GB18030 (ISO 2709) and as Alma's CNMARCXML: each ``same`` as its
  copy; the electronic '97中国发展报告 and the printed one share an ISBN but are
  ``different``; the yearly volumes of 中国发展报告 are ``different``;
* the demo's records: ``same`` exactly when they catalogue one generated work (demo/works.tsv),
  ``different`` for two works of one title (another edition, year or author).
"""

from __future__ import annotations

import csv
import itertools
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.matching_set import load_records  # noqa: E402
from broker.search.merge import fold  # noqa: E402

Row = tuple[str, str, str, str]

TEN = ["fol05731351", "fol05754809", "fol05843555", "fol05843579", "fol05848297",
       "fol05865950", "fol05865956", "fol05865967", "fol05872355", "fol05882032"]

V = "variants:"
VARIANT_PAIRS: tuple[Row, ...] = (
    (f"{V}perl-noisbn", "pymarc:fol05843579", "same", "the complete reference without its ISBN"),
    (f"{V}perl-shouting", "pymarc:fol05843579", "same", "only case and ISBD punctuation differ"),
    (f"{V}perl-reprint", "pymarc:fol05843579", "same",
     "a 2001 printing of the 1999 edition, same ISBN"),
    (f"{V}perl-noisbn", f"{V}perl-shouting", "same", "both the complete reference"),
    (f"{V}perl-noisbn", "pymarc:fol05843555", "different",
     "subtitle: the complete reference vs programmer's reference"),
    (f"{V}perl-shouting", "pymarc:fol05843555", "different",
     "subtitle: the complete reference vs programmer's reference"),
    (f"{V}perl-2nd", "pymarc:fol05843579", "different", "2nd edition vs the first, other ISBN"),
    (f"{V}perl-2nd", f"{V}perl-noisbn", "different", "2nd edition (2000) vs 1999 first"),
    (f"{V}perl-2nd", "pymarc:fol05843555", "different", "another subtitle and edition"),
    (f"{V}pr-shouting", "pymarc:fol05843555", "same", "programmer's reference, case only"),
    (f"{V}pr-shouting", "filemarc:fol05843555", "same", "programmer's reference, case only"),
    (f"{V}pr-shouting", "pymarc:fol05843579", "different",
     "subtitle: programmer's reference vs the complete reference"),
    (f"{V}pr-shouting", f"{V}perl-noisbn", "different",
     "subtitle: programmer's reference vs the complete reference, neither has an ISBN"),
    (f"{V}camel-third", "pymarc:fol05865967", "same", "'Third edition.' is '3rd ed.'"),
    (f"{V}camel-v1", f"{V}camel-v2", "different",
     "volume 1 vs volume 2 of a set; both carry the set ISBN"),
    (f"{V}camel-v1", f"{V}camel-v1-b", "same", "volume 1, two libraries"),
    (f"{V}camel-v2", f"{V}camel-v1-b", "different", "volume 2 vs volume 1"),
    (f"{V}camel-set", f"{V}camel-v1", "different", "the set record vs one volume"),
    (f"{V}camel-set", f"{V}camel-v2", "different", "the set record vs one volume"),
    (f"{V}camel-v1", "pymarc:fol05865967", "different", "one volume vs the one-volume book"),
    (f"{V}camel-set", "pymarc:fol05865967", "different", "a 2-volume set vs the book"),
    (f"{V}jobs-trad", "openlibrary:ocn613515810", "same",
     "traditional vs simplified characters, same ISBN"),
    (f"{V}jobs-trad-noisbn", "openlibrary:ocn613515810", "same",
     "traditional characters, no ISBN"),
    (f"{V}jobs-trad-noisbn", f"{V}jobs-trad", "same", "the same edition"),
    (f"{V}perlconf-article", "pymarc:fol05865950", "different",
     "an article vs the proceedings it is in"),
    (f"{V}perlconf-article", "filemarc:fol05865950", "different",
     "an article vs the proceedings it is in"),
    (f"{V}summerland-pbk", "sl-iso:12883376", "same", "one of the edition's two ISBNs"),
    (f"{V}summerland-pbk", "sl-xml:12883376", "same", "one of the edition's two ISBNs"),
    (f"{V}austen-lp-noisbn", "austen:ocm42943498", "same",
     "the 1999 large print edition without its ISBN (edition, publisher and extent agree)"),
)


def _demo(ids: set[str]) -> list[Row]:
    path = HERE / "demo" / "works.tsv"
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle, delimiter="\t") if r["record"] in ids]
    out: list[Row] = []
    for x, y in itertools.combinations(rows, 2):
        if x["work"] == y["work"]:
            out.append((x["record"], y["record"], "same",
                        f"demo work {x['work']} ({x['title']} {x['year']})"))
        elif x["title"] == y["title"]:
            detail = (f"{x['edition_or_part'] or 'no edition'} {x['year']} vs "
                      f"{y['edition_or_part'] or 'no edition'} {y['year']}")
            out.append((x["record"], y["record"], "different",
                        f"demo works {x['work']} and {y['work']} of one title: {detail}"))
    return out


def _austen(records: dict[str, object]) -> list[Row]:
    austen = [r for key, r in records.items() if key.startswith("austen:")]
    out: list[Row] = []
    for x, y in itertools.combinations(austen, 2):
        xi, yi = set(x.isbns), set(y.isbns)  # type: ignore[attr-defined]
        if xi & yi:
            years = f"{x.year} and {y.year}"  # type: ignore[attr-defined]
            out.append((x.id, y.id, "same",  # type: ignore[attr-defined]
                        f"an ISBN in common ({years}: a later printing where they differ)"))
        elif (xi and yi and x.year == y.year  # type: ignore[attr-defined]
              and fold(x.title) == fold(y.title)):  # type: ignore[attr-defined]
            out.append((x.id, y.id, "different",  # type: ignore[attr-defined]
                        f"one title and year ({x.year}), disjoint ISBNs: "  # type: ignore[attr-defined]
                        f"{x.publisher} vs {y.publisher}"))  # type: ignore[attr-defined]
    return out


def pairs(root: Path = HERE) -> list[Row]:
    loaded = load_records(root)
    records = {r.id: r for _, r in loaded if r.id}
    ids = set(records)
    rows: list[Row] = []
    for n in TEN:
        rows.append((f"pymarc:{n}", f"filemarc:{n}", "same",
                     "one LC record in pymarc's and File_MARC's test files"))
    for a, b in itertools.combinations(TEN, 2):
        why = ("subtitle: programmer's reference vs the complete reference (same author, 1999)"
               if {a, b} == {"fol05843555", "fol05843579"} else "different books")
        rows.append((f"pymarc:{a}", f"pymarc:{b}", "different", why))
    rows += VARIANT_PAIRS
    rows += _austen(records)
    for a, b in itertools.combinations(("sl-iso", "sl-xml", "sl-json"), 2):
        rows.append((f"{a}:12883376", f"{b}:12883376", "same",
                     "Summerland as ISO 2709, MARCXML and MARC-in-JSON"))
    wronglen = [i for i in ids if i.startswith("fm-wronglen:")]
    xmlescape = [i for i in ids if i.startswith("fm-xmlescape:")]
    for a, b in zip(sorted(wronglen), sorted(xmlescape), strict=False):
        rows.append((a, b, "same", "one record in two File_MARC test files"))
    # BNU's ten CNMARC records, GB18030 ISO 2709 vs Alma's CNMARCXML, in file order.
    gbk = [r for _, r in loaded if r.id and r.id.startswith("bnu-gbk:")]
    sru = [r for _, r in loaded if r.id and r.id.startswith("bnu-sru:")]
    for x, y in zip(gbk, sru, strict=False):
        rows.append((x.id or "", y.id or "", "same",
                     "one BNU CNMARC record, GB18030 ISO 2709 and CNMARCXML"))
    for x, y in itertools.combinations(gbk, 2):
        if x.isbns == y.isbns:
            why = f"{x.material_type} vs {y.material_type} with one ISBN"
        else:
            why = f"another year of the report: {x.title} vs {y.title}"
        rows.append((x.id or "", y.id or "", "different", why))
    alma = [r for _, r in loaded if r.id and r.id.startswith("bnu-alma:")]
    for x, y in itertools.combinations(alma, 2):
        why = (f"{x.material_type} vs {y.material_type} with one ISBN"
               if x.isbns == y.isbns else "different books")
        rows.append((x.id or "", y.id or "", "different", why))
    rows += _demo(ids)
    missing = sorted({i for row in rows for i in row[:2]} - ids)
    if missing:
        raise SystemExit(f"pairs name records that are not in the set: {missing[:10]}")
    return rows


def write(root: Path = HERE) -> int:
    rows = pairs(root)
    lines = ["a\tb\tlabel\twhy"] + ["\t".join(row) for row in rows]
    (root / "pairs.tsv").write_text("\n".join(lines) + "\n", "utf-8")
    return len(rows)
