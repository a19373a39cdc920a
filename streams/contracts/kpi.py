"""The KPI update record published on ``kpi.updates``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class WindowKind(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    ROLLING_15M = "15m"
    ROLLING_1H = "1h"
    ROLLING_24H = "24h"
    MINUTE = "minute"  # the 1-minute buckets rolling windows are made of
    LIVE = "live"  # point-in-time values (leads waiting), not windowed


class WindowRef(BaseModel):
    """A window: [start, end) in the business time zone ``tz``."""

    model_config = ConfigDict(frozen=True)

    kind: WindowKind
    start: AwareDatetime
    end: AwareDatetime
    tz: str


class KpiUpdate(BaseModel):
    """One value of one KPI for one window and dimension key.

    Keyed on the topic by ``kpi/window kind/window start/dimension/key``. Updates are sent while
    the window is open; one record with ``final`` true is sent when it closes, and then
    corrections (``final`` and ``correction`` true, a higher revision) if late events revise
    it while it is retained. A window already past its end and grace on the wall clock when
    its events are applied (history: a replay, an import, a worker catching up) gets no
    updates: its final record is its first.
    """

    model_config = ConfigDict(frozen=True)

    kpi: str = Field(description="KPI id from the catalogue, e.g. win_rate")
    window: WindowRef
    dimension: str = Field(description="global, rep, team, region, product, channel or sector")
    key: str = Field(description="dimension value; 'all' for the global dimension")
    value: Decimal | None = Field(description="null when a ratio's denominator is zero")
    numerator: Decimal | None = None
    denominator: Decimal | None = None
    unit: str = Field(description="count, EUR, ratio, seconds, days, score...")
    final: bool
    revision: int = Field(ge=0, description="increases with every update of this key")
    correction: bool = Field(
        default=False,
        description="true when late events revised the values of a window already final "
        "(final stays true, the revision is higher)",
    )
    computed_at: AwareDatetime

    @staticmethod
    def record_key(kpi: str, window: WindowRef, dimension: str, key: str) -> str:
        start: datetime = window.start
        return f"{kpi}/{window.kind}/{start.isoformat()}/{dimension}/{key}"
