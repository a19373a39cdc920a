"""KPI maths and event-time windowing: pure, no Faust, no I/O."""
