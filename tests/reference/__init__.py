"""An independent reference implementation of the KPIs, used by the tests (see kpis.py)."""
