"""KPI cells: the additive components of every KPI for one window and dimension key.

A cell is ``{component: value}`` where a value is an ``int`` (counts, cents, milliseconds)
or a ``{member: int}`` map (sketch buckets, distinct reps, open leads by minute). Every
component adds up, so cells merge across partitions by addition and an entity whose history
changes retracts its old contribution by subtraction. Integers only: no float ever drifts.

A cell key is ``"<kind>|<window start, epoch s>|<dimension>|<key>"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

Component = int | dict[str, int]
Cell = dict[str, Component]
Cells = dict[str, Cell]

SEP = "|"


def cell_key(kind: str, start: int, dimension: str, key: str) -> str:
    return f"{kind}{SEP}{start}{SEP}{dimension}{SEP}{key}"


def window_prefix(kind: str, start: int) -> str:
    """What the keys of every cell of one window start with."""
    return f"{kind}{SEP}{start}{SEP}"


def split_cell_key(cell: str) -> tuple[str, int, str, str]:
    kind, start, dimension, key = cell.split(SEP, 3)
    return kind, int(start), dimension, key


def add_component(
    cell: Cell, name: str, value: Component, sign: int = 1, owned: bool = False
) -> None:
    """Add ``sign * value`` to ``cell[name]`` in place, dropping what becomes zero."""
    if isinstance(value, int):
        total = int(cell.get(name, 0)) + sign * value  # type: ignore[arg-type]
        if total:
            cell[name] = total
        else:
            cell.pop(name, None)
        return
    add_cell(cell, {name: value}, sign, owned)


def add_cell(
    target: Cell, other: Mapping[str, Component], sign: int = 1, owned: bool = False
) -> None:
    """Add ``sign * other`` to ``target`` in place, component by component, dropping what
    becomes zero (counts added inline: the engine adds millions of them).

    A map component of ``target`` (``{member: int}``) is replaced by a new map, as other
    holders of ``target``'s maps (a shallow copy of a stored cell, a cache) must not see the
    change; ``owned`` says nothing else holds them (an accumulator that only ``add_cell``
    filled: a message's staged totals, a merge, the gauge book's sums) and they are added
    to in place. Copying the map each time made an accumulator cost the square of its
    members (a message's 250 leads into one live cell's ``open_leads``). A map of ``other``
    is never kept by ``target``, owned or not."""
    for name, value in other.items():
        if value.__class__ is int:
            total = int(target.get(name, 0)) + sign * value  # type: ignore[arg-type]
            if total:
                target[name] = total
            else:
                target.pop(name, None)
            continue
        current = target.get(name)
        if current.__class__ is not dict:
            merged: dict[str, int] = {}
        elif owned:
            merged = current
        else:
            merged = dict(current)
        for member, count in value.items():  # type: ignore[union-attr]
            n = merged.get(member, 0) + sign * count
            if n:
                merged[member] = n
            else:
                merged.pop(member, None)
        if merged:
            target[name] = merged
        else:
            target.pop(name, None)


def merge(cells: Iterable[Mapping[str, Component]]) -> Cell:
    """One cell holding the sum of ``cells`` (partitions, minute buckets...)."""
    total: Cell = {}
    for cell in cells:
        add_cell(total, cell, owned=True)
    return total


def diff(new: Mapping[str, Cell], old: Mapping[str, Cell]) -> Cells:
    """``new - old`` per cell key, without the cells that did not change."""
    out: Cells = {}
    for key in new.keys() | old.keys():
        delta: Cell = {}
        add_cell(delta, new.get(key, {}), owned=True)
        add_cell(delta, old.get(key, {}), -1, owned=True)
        if delta:
            out[key] = delta
    return out


def count_of(cell: Mapping[str, Component], name: str) -> int:
    value = cell.get(name, 0)
    return value if isinstance(value, int) else 0


def members_of(cell: Mapping[str, Component], name: str) -> dict[str, int]:
    value = cell.get(name)
    return dict(value) if isinstance(value, dict) else {}
