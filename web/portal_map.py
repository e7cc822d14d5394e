"""电子地图: where the members are, drawn here (no tile server, no network).

Each member's district is read from its ``address`` in the libraries file (every Beijing
address names its 区). The page lists the districts with their members' addresses and
draws a schematic sketch: one tile per district, placed roughly as the districts lie
(north up, the old city in the middle), shaded when members are there. Not to scale: it
says where to look, the addresses say where to go.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.kernel.consortium import Consortium, Library

# (district, column, row) of the sketch's grid: a tile map of Beijing's 16 districts.
TILES: tuple[tuple[str, int, int], ...] = (
    ("延庆区", 1, 0), ("怀柔区", 3, 0), ("密云区", 4, 0),
    ("昌平区", 2, 1), ("顺义区", 4, 1), ("平谷区", 5, 1),
    ("门头沟区", 0, 2), ("海淀区", 2, 2), ("朝阳区", 4, 2),
    ("石景山区", 1, 3), ("西城区", 2, 3), ("东城区", 3, 3), ("通州区", 5, 3),
    ("房山区", 1, 4), ("丰台区", 2, 4), ("大兴区", 3, 4),
)
DISTRICTS: tuple[str, ...] = tuple(name for name, _, _ in TILES)
TILE = 92  # pixels of one grid cell in the SVG's own coordinates (it scales to the page)
GAP = 6


@dataclass(frozen=True, slots=True)
class District:
    name: str
    libraries: tuple[Library, ...]


@dataclass(frozen=True, slots=True)
class Tile:
    name: str
    x: int
    y: int
    size: int
    count: int


def district_of(address: str | None) -> str | None:
    """The district a Beijing address names, or None (no address, or outside the list)."""
    if not address:
        return None
    found = [(address.find(name), name) for name in DISTRICTS if name in address]
    return min(found)[1] if found else None


def districts(consortium: Consortium) -> tuple[list[District], list[Library]]:
    """The districts that have members, in the sketch's order, and the members whose
    district is not known (no address yet)."""
    by_name: dict[str, list[Library]] = {name: [] for name in DISTRICTS}
    unknown: list[Library] = []
    for library in consortium.libraries:
        name = district_of(library.address)
        (by_name[name] if name else unknown).append(library)
    return [District(name, tuple(libs)) for name, libs in by_name.items() if libs], unknown


def tiles(found: list[District]) -> list[Tile]:
    counts = {d.name: len(d.libraries) for d in found}
    return [Tile(name, col * TILE, row * TILE, TILE - GAP, counts.get(name, 0))
            for name, col, row in TILES]


def viewbox() -> str:
    cols = max(col for _, col, _ in TILES) + 1
    rows = max(row for _, _, row in TILES) + 1
    return f"0 0 {cols * TILE - GAP} {rows * TILE - GAP}"
