"""The alerts the TV wallboard shows as a banner: those firing in Alertmanager.

Read from Alertmanager's API (``GET /api/v2/alerts``: active, not silenced, not inhibited) at
``Settings.alertmanager_url``. When Alertmanager does not answer (not running, not configured,
slow), there is no banner and no error on the page: the wallboard's figures matter more.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

TIMEOUT_S = 0.5  # the wallboard polls every second: never hold a snapshot up for long
QUERY = "/api/v2/alerts?active=true&silenced=false&inhibited=false"
SEVERITY_ORDER = {"page": 0, "critical": 0, "warning": 1}


def banner_alerts(raw: Any) -> list[dict[str, str]]:
    """(name, severity, summary) of each firing alert of an Alertmanager answer, the most
    severe first; entries that are not alerts are skipped."""
    alerts = []
    for alert in raw if isinstance(raw, list) else []:
        if not isinstance(alert, dict):
            continue
        labels = alert.get("labels") or {}
        state = (alert.get("status") or {}).get("state", "active")
        if state != "active" or "alertname" not in labels:
            continue
        summary = (alert.get("annotations") or {}).get("summary") or labels["alertname"]
        alerts.append(
            {
                "name": str(labels["alertname"]),
                "severity": str(labels.get("severity", "")),
                "summary": " ".join(str(summary).split()),
            }
        )
    alerts.sort(key=lambda a: (SEVERITY_ORDER.get(a["severity"], 2), a["name"], a["summary"]))
    return alerts


class AlertSource:
    """Firing alerts from Alertmanager at ``url``; [] while it does not answer."""

    def __init__(self, url: str, timeout_s: float = TIMEOUT_S) -> None:
        self.url = url.rstrip("/") + QUERY
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._failing = False

    async def firing(self) -> list[dict[str, str]]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        try:
            async with self._session.get(self.url) as response:
                response.raise_for_status()
                alerts = banner_alerts(await response.json(content_type=None))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            if not self._failing:
                log.info("wallboard: no alert banner, Alertmanager at %s: %r", self.url, exc)
            self._failing = True
            return []
        self._failing = False
        return alerts

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
