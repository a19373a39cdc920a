"""What operators watch: the pipeline's Prometheus metrics, the KPI gauges of /metrics (a
bounded number of keys per dimension), and the log's summary of repeated lines."""
