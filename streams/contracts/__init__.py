"""Event, reference and KPI contracts: pydantic v2 models, the source of ``schemas/``."""
