"""The KPI engine: routing, the entity stage, the publisher, their write-back and delivery;
the faust glue in ``faust/``, the watermark in ``watermark/`` (docs/engine.md)."""
