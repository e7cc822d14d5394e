"""The demo members' plan, and the demo's libraries file (config/demo.yaml) written from it.

The tables below say how each member is served (SRU or Z39.50, MARC21 or UNIMARC, the
slow one, the one that is down); ``plan`` turns the real directory's ids into one
``MemberPlan`` each, and ``render_config`` writes them as a libraries file whose members
listen on ``PORT_BASE`` + their position. ``python -m broker.demo`` rewrites
config/demo.yaml; tests/demo/test_demo.py checks that the committed file is this one.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from broker.kernel.config import Consortium
from broker.kernel.consortium import Library

HOST = "127.0.0.1"
PORT_BASE = 21100  # member i (in config order) listens on PORT_BASE + i
REPO = Path(__file__).resolve().parents[2]
LIBRARIES_FILE = REPO / "config" / "libraries.yaml"
DEMO_CONFIG = REPO / "config" / "demo.yaml"

# Half the members speak SRU, half Z39.50. The real NLC target is Z39.50 with CNMARC in
# GBK and BNU's is Alma SRU with CNMARC: the demo keeps that much of the real directory.
SRU_MEMBERS = frozenset({
    "clcn", "buaa", "ustb", "buct", "ncepu", "cugb", "bucea", "uibe", "cueb", "blcu", "bisu",
    "bnu", "ccom", "cafa", "cupl", "cfau", "culr", "thu", "muc", "ucas", "bsu", "cau", "bua",
})
UNIMARC_MEMBERS = frozenset({"nlc", "bnu", "ruc", "cupl", "bfsu", "bjfu", "ccom", "cueb"})
# Z39.50 targets that speak GB18030 without negotiating (records and terms), as NLC's real
# one does: the Z39.50 server takes a catalogue's ``encoding`` for that. Their catalogues
# are stored in GB18030 on disk too, as Chinese CNMARC exports are, and so is BNU's.
WIRE_GB18030 = frozenset({"nlc", "ruc", "bjfu"})
GB18030_FILES = WIRE_GB18030 | {"bnu"}
SLOW = {"cafa": (3.0, 2.0)}  # member: (seconds each search takes, its timeout)
DOWN = frozenset({"buu"})  # configured, but nothing listens on its port
# Members whose catalogue cannot be searched by call number (the others say how).
NO_CALLNUMBER = frozenset({"clcn", "cup", "bisu", "ccmusic", "bua"})
CALLNUMBER_INDEX = {"sru": "bath.callnumber", "z3950": "1=20"}
# Z39.50 members asked for the OPAC record syntax (each copy's circulation beside the
# MARC), as a library's config declares for a target that serves it; the others' status
# comes in their MARC (852 $z, 906 $z).
OPAC_MEMBERS = frozenset({"bupt", "pku", "bfsu", "ruc"})


@dataclass(frozen=True, slots=True)
class MemberPlan:
    id: str
    position: int  # in the libraries file; the port is PORT_BASE + position
    protocol: str  # sru | z3950
    format: str  # marc21 | unimarc
    encoding: str  # what the server sends records and takes terms in
    file_encoding: str  # what the catalogue file is written in
    delay: float = 0.0
    timeout: float | None = None
    down: bool = False
    callnumber: bool = True  # the catalogue can be searched by call number
    opac: bool = False  # asked for OPAC records (Z39.50 only)

    @property
    def database(self) -> str:
        return self.id

    @property
    def file_name(self) -> str:
        return f"{self.id}.{'iso' if self.format == 'unimarc' else 'mrc'}"

    def port(self, port_base: int = PORT_BASE) -> int:
        return port_base + self.position

    def url(self, port_base: int = PORT_BASE, host: str = HOST) -> str:
        if self.protocol == "sru":
            return f"http://{host}:{self.port(port_base)}/{self.database}"
        return f"z3950://{host}:{self.port(port_base)}/{self.database}"


def plan(member_ids: Iterable[str]) -> list[MemberPlan]:
    """How each member is served, in the libraries file's order."""
    out = []
    for position, lid in enumerate(member_ids):
        unimarc = lid in UNIMARC_MEMBERS
        delay, timeout = SLOW.get(lid, (0.0, None))
        out.append(MemberPlan(
            id=lid, position=position, protocol="sru" if lid in SRU_MEMBERS else "z3950",
            format="unimarc" if unimarc else "marc21",
            encoding="gb18030" if lid in WIRE_GB18030 else "utf-8",
            file_encoding="gb18030" if lid in GB18030_FILES else "utf-8",
            delay=delay, timeout=timeout, down=lid in DOWN,
            callnumber=lid not in NO_CALLNUMBER,
            opac=lid in OPAC_MEMBERS and lid not in SRU_MEMBERS))
    return out


def load_members(path: Path = LIBRARIES_FILE) -> Consortium:
    """The real directory the demo mirrors (ids, names, categories, contacts)."""
    from broker.kernel import config as config_module

    return config_module.load(path)



# --- the demo's libraries file -----------------------------------------------------------


def _about(port_base: int, last: int) -> str:
    """The file's header comment, a paragraph a line."""
    slow = "; ".join(f"{lid} is slow (each search takes {delay:g} s, its timeout is "
                     f"{timeout:g} s)" for lid, (delay, timeout) in SLOW.items())
    return (
        "The bundled demo consortium: BALIS's 46 members (the same ids, names and categories "
        "as config/libraries.yaml), each searchable through a server that `balis demo` runs "
        "on this machine over made-up catalogues (broker/demo/).\n"
        f"Ports {port_base}-{last} on {HOST}: member number i in this file listens on "
        f"{port_base} + i (`balis demo --port-base N` moves the range and writes a copy of "
        "this file with the new ports). Half the members speak SRU, half Z39.50; some send "
        "CNMARC (format unimarc)"
        + (", a few in GB18030 (encoding gb18030)" if WIRE_GB18030 else "")
        + f". {', '.join(sorted(OPAC_MEMBERS))} are asked for OPAC records (each copy's "
        "circulation beside the MARC; record_syntax opac)."
        + f" On purpose, {slow}, and {', '.join(sorted(DOWN))} is down (nothing listens "
        "on its port); a few members cannot be searched by call number.\n"
        "Generated by broker/demo/members.py (render_config; python -m broker.demo "
        "rewrites it); tests/demo/test_demo.py checks that this file and the generator "
        "agree.")


def _library_lines(lib: Library, p: MemberPlan, port_base: int) -> list[str]:
    lines = [f"  - id: {lib.id}", f"    name: {lib.name}"]
    # The portal's directory and map (web/portal_map.py) read these, as for the real file.
    lines += [f"    {key}: {value}" for key, value in (("address", lib.address),
                                                        ("hours", lib.hours)) if value]
    lines.append(f"    category: {lib.category}")
    if lib.initials:
        lines.append(f"    initials: {lib.initials}")
    contact = {k: v for k, v in (("name", lib.contact.name), ("phone", lib.contact.phone),
                                 ("email", lib.contact.email)) if v}
    if contact:
        lines.append("    contact: {" + ", ".join(f"{k}: {v}" for k, v in contact.items())
                     + "}")
    direct = "" if lib.ill.direct_requests else ", direct_requests: false"
    lines.append(f"    ill: {{cancel_window_minutes: {lib.ill.cancel_window_minutes}, "
                 f"loan_days: {lib.ill.loan_days}{direct}}}")
    return lines + _connector_lines(p, port_base)


def _connector_lines(p: MemberPlan, port_base: int) -> list[str]:
    note = ("  # slow on purpose" if p.delay else "  # down on purpose" if p.down else "")
    lines = [f"    connector:{note}", f"      protocol: {p.protocol}",
             f"      url: {p.url(port_base)}", f"      format: {p.format}"]
    if p.encoding != "utf-8":
        lines.append(f"      encoding: {p.encoding}")
    if p.timeout is not None:
        lines.append(f"      timeout: {p.timeout:g}")
    if p.opac:
        lines.append("      record_syntax: opac")
    if p.callnumber:
        lines.append(f"      indexes: {{callnumber: \"{CALLNUMBER_INDEX[p.protocol]}\"}}")
    return lines


def render_config(consortium: Consortium, plans: list[MemberPlan],
                  port_base: int = PORT_BASE) -> str:
    """The demo's libraries file: the real members, each with a connector to its demo
    server on 127.0.0.1."""
    lines = []
    for paragraph in _about(port_base, port_base + len(plans) - 1).split("\n"):
        lines += textwrap.wrap(paragraph, 88, initial_indent="# ", subsequent_indent="# ")
        lines.append("#")
    lines[-1] = ""
    lines += [
        "consortium:",
        f"  name: {consortium.name}",
        f"  max_selected: {consortium.max_selected}",
        "",
        "defaults:",
        "  timeout: 10",
        "  max_records: 20",
        "",
        "categories:",
    ]
    lines += [f"  - {{id: {c.id}, name: {c.name}}}" for c in consortium.categories]
    lines += ["", "libraries:"]
    by_id = {p.id: p for p in plans}
    for lib in consortium.libraries:
        lines += _library_lines(lib, by_id[lib.id], port_base)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m broker.demo``: rewrite config/demo.yaml from the plan."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m broker.demo",
                                     description="Rewrite config/demo.yaml from the plan.")
    parser.add_argument("--out", type=Path, default=DEMO_CONFIG)
    args = parser.parse_args(argv)
    consortium = load_members()
    text = render_config(consortium, plan(lib.id for lib in consortium.libraries))
    args.out.write_text(text, "utf-8")
    print(f"wrote {args.out}")
    return 0
