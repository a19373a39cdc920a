"""The KPI engine's Faust glue: routing, the entity stage, the publisher (docs/engine.md)."""
