"""What a scrape of the KPI gauges needs, kept up to date as partials arrive (pure).

``/metrics`` shows at most ``SALESPULSE_METRICS_KEY_CAP`` keys per dimension and folds the
others into ``other`` (``streams.observability.kpi_gauges``). Built from every key's cell at
each scrape, that cost grew with the keys: with 100,000 reps a scrape read and merged
~500,000 cells and took longer than a scrape timeout. So the publisher keeps, per publisher
partition, what the fold needs without reading the keys:

- per window and dimension, every key's cells **added up** (cells are additive: ``other`` is
  that sum minus the kept keys' cells), and how many keys have a cell there;
- per kind and dimension, every key's change of customer base by window start (so ``other``'s
  customers at start are the sum minus the kept keys');
- per dimension, each key's revenue in its newest month (the ranking), and its keys.

A scrape then ranks the keys (one pass over a dict) and reads only the kept keys' cells.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from streams.kpi.cells import Cell, add_cell
from streams.observability.kpi_gauges import top_keys

Window = tuple[str, int, str]  # (kind, start, dimension)


@dataclass
class Share:
    """The book of one publisher partition."""

    keys: dict[str, set[str]] = field(default_factory=dict)  # dim -> keys with a cell
    counts: Counter[Window] = field(default_factory=Counter)  # window -> keys with a cell
    totals: dict[Window, Cell] = field(default_factory=dict)  # window -> their cells summed
    bases: dict[tuple[str, str], dict[int, int]] = field(default_factory=dict)
    revenue: dict[str, dict[str, tuple[int, Decimal]]] = field(default_factory=dict)


class GaugeBook:
    """Per publisher partition, the sums and ranking the gauges' fold needs."""

    def __init__(self) -> None:
        self.shares: dict[int, Share] = {}

    def share(self, q: int) -> Share:
        share = self.shares.get(q)  # not ``setdefault(q, Share())``: a Share built per call
        if share is None:
            share = self.shares[q] = Share()
        return share

    def forget(self, q: int) -> None:
        self.shares.pop(q, None)

    def opened(self, q: int, window: Window, key: str) -> None:
        """A key has a cell in ``window`` now."""
        share = self.share(q)
        share.keys.setdefault(window[2], set()).add(key)
        share.counts[window] += 1

    def add(
        self, q: int, window: Window, delta: Mapping[str, int | dict[str, int]], sign: int = 1
    ) -> None:
        """A key's cell in ``window`` changed by ``delta``."""
        if delta:
            add_cell(self.share(q).totals.setdefault(window, {}), delta, sign, owned=True)

    def removed(self, q: int, window: Window, cell: Cell) -> None:
        """A key's cell of ``window`` is gone (past its retention)."""
        share = self.share(q)
        share.counts[window] -= 1
        if share.counts[window] <= 0:
            del share.counts[window]
            share.totals.pop(window, None)
        else:
            self.add(q, window, cell, -1)

    def base_moved(self, q: int, kind: str, dim: str, start: int, delta: int) -> None:
        bases = self.share(q).bases.setdefault((kind, dim), {})
        total = bases.get(start, 0) + delta
        if total:
            bases[start] = total
        else:
            bases.pop(start, None)

    def month_revenue(self, q: int, dim: str, key: str, start: int, value: Decimal) -> None:
        """``key``'s revenue in the month starting at ``start`` (its newest month wins)."""
        ranks = self.share(q).revenue.setdefault(dim, {})
        known = ranks.get(key)
        if known is None or known[0] <= start:
            ranks[key] = (start, value)

    def kept(self, months: Mapping[int, int], cap: int) -> dict[str, set[str]]:
        """Per dimension, the ``cap`` keys of the partitions in ``months`` (partition ->
        start of its current month) with the most revenue this month, then by key."""
        revenue: dict[str, dict[str, Decimal]] = {}
        for q, month in months.items():
            share = self.shares.get(q)
            if share is None:
                continue
            for dim, keys in share.keys.items():
                ranked = revenue.setdefault(dim, {})
                ranks = share.revenue.get(dim, {})
                for key in keys:
                    start, value = ranks.get(key, (month, Decimal(0)))
                    ranked[key] = value if start == month else Decimal(0)
        return {dim: top_keys(found, cap) for dim, found in revenue.items()}

    def customers_before(self, q: int, kind: str, dim: str, start: int) -> int:
        """Every key's customers at ``start`` (the sum of their base changes before it)."""
        bases = self.share(q).bases.get((kind, dim), {})
        return sum(n for at, n in bases.items() if at < start)

    def windows(self, q: int) -> Iterable[tuple[Window, int]]:
        share = self.shares.get(q)
        return () if share is None else list(share.counts.items())

    def total(self, q: int, window: Window) -> Cell:
        """A copy of every key's cells of ``window`` added up."""
        share = self.shares.get(q)
        total: Cell = {}
        if share is not None:
            add_cell(total, share.totals.get(window, {}), owned=True)
        return total
