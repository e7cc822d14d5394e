"""``balis libraries`` and ``balis check-config``: the member directory (CONTRACTS section 1)."""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from pathlib import Path

import yaml

from broker.kernel import config as config_module
from broker.kernel.config import Consortium, Library
from broker.kernel.errors import ConfigError


def register(subparsers, common: argparse.ArgumentParser) -> None:
    libraries = subparsers.add_parser(
        "libraries", parents=[common], help="list the member libraries",
        description="List the consortium's member libraries by category: whether each can "
                    "be searched (and by which protocol) and its interlibrary-loan terms. "
                    "TEXT matches a library's id, any part of its name, its pinyin or its "
                    "pinyin initials, ignoring case and spaces.",
        epilog="Examples: balis libraries --match bjyddx; balis libraries --category 工科类")
    libraries.add_argument("--category", metavar="ID",
                           help="only this category (its id, or its Chinese name)")
    libraries.add_argument("--match", metavar="TEXT",
                           help="only libraries whose id, name, pinyin or initials contain "
                                "TEXT (bjyddx finds 北京邮电大学图书馆)")
    libraries.add_argument("--json", action="store_true",
                           help="print the directory as JSON (categories with counts, "
                                "then libraries)")
    libraries.set_defaults(handler=run_libraries)

    check = subparsers.add_parser(
        "check-config", parents=[common], help="validate a libraries file",
        description="Validate a libraries file and report every problem with its line. "
                    "Exit status 0 if it is valid (warnings allowed), 2 if not.")
    check.add_argument("path", nargs="?", metavar="PATH", type=Path,
                       help="the file to check (default: the --config file)")
    check.set_defaults(handler=run_check_config)


# --- balis libraries ------------------------------------------------------------------------


def run_libraries(args: argparse.Namespace) -> int:
    from balis.config_path import config_path
    from broker.kernel import directory  # pypinyin: loaded only to list

    consortium = config_module.load(config_path(args))
    members = directory.libraries(consortium, category=args.category, match=args.match)
    filtered = args.category is not None or args.match is not None
    if args.json:
        json.dump(directory.directory_dict(consortium, members, all_categories=not filtered),
                  sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        _print_table(consortium, members)
    return 0


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def _searchable(library: Library) -> str:
    return f"yes ({library.connector.protocol})" if library.connector else "not yet"


def _ill(library: Library) -> str:
    cancel = library.ill.cancel_window_minutes
    window = f"cancel within {cancel} min" if cancel else "no self-cancel"
    return f"{library.ill.loan_days} days, {window}"


def _print_table(consortium: Consortium, members: list[Library]) -> None:
    out = sys.stdout
    if not members:
        out.write("no library matches\n")
        return
    id_width = max(len(lib.id) for lib in members)
    name_width = max(_width(lib.name) for lib in members)
    header = (f"  {_pad('id', id_width)}  {_pad('name', name_width)}  "
              f"{_pad('searchable', 13)}  ILL loan")
    from broker.kernel import directory

    groups = directory.grouped(consortium, members)
    for number, (category, libs) in enumerate(groups):
        if number:
            out.write("\n")
        out.write(f"{category.name} ({category.id}): {len(libs)}\n{header}\n")
        for lib in libs:
            out.write(f"  {_pad(lib.id, id_width)}  {_pad(lib.name, name_width)}  "
                      f"{_pad(_searchable(lib), 13)}  {_ill(lib)}\n")
    searchable = sum(1 for lib in members if lib.searchable)
    noun = "library" if len(members) == 1 else "libraries"
    out.write(f"\n{len(members)} {noun} in {len(groups)} "
              f"{'category' if len(groups) == 1 else 'categories'}; {searchable} searchable\n")


# --- balis check-config ---------------------------------------------------------------------


def run_check_config(args: argparse.Namespace) -> int:
    from balis.config_path import config_path

    path = args.path if args.path is not None else config_path(args)
    try:
        consortium = config_module.load(path)
    except ConfigError as exc:
        for problem in str(exc).splitlines():
            print(problem, file=sys.stderr)
        print(f"balis: {path} is not valid", file=sys.stderr)
        return 2
    for warning in _warnings(consortium, path):
        print(f"{warning}", file=sys.stderr)
    searchable = sum(1 for lib in consortium.libraries if lib.searchable)
    print(f"OK: {len(consortium.libraries)} libraries in {len(consortium.categories)} "
          f"categories ({searchable} searchable)")
    return 0


def _warnings(consortium: Consortium, path: Path) -> list[str]:
    """What is allowed but probably a mistake: two libraries with one name, an empty
    category. Each with its line."""
    lines = _name_lines(path)
    warnings = []
    first: dict[str, Library] = {}
    for number, library in enumerate(consortium.libraries):
        key = "".join(library.name.split())
        line = lines[number] if number < len(lines) else None
        where = f"{path}:{line}" if line else str(path)
        if key in first:
            warnings.append(f"{where}: warning: library {library.id!r} has the same name as "
                            f"{first[key].id!r} ({library.name})")
        else:
            first[key] = library
    used = {library.category for library in consortium.libraries}
    for category in consortium.categories:
        if category.id not in used:
            warnings.append(f"{path}: warning: category {category.id!r} ({category.name}) "
                            "has no libraries")
    return warnings


def _name_lines(path: Path) -> list[int | None]:
    """The line of each library's name, in file order (the file is known to be valid)."""
    root = yaml.compose(Path(path).read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode):
        return []
    for key, value in root.value:
        if key.value == "libraries":
            found = []
            for item in value.value:
                names = [v for k, v in item.value if k.value == "name"]
                found.append(names[0].start_mark.line + 1 if names else None)
            return found
    return []
