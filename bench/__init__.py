"""``make bench``: throughput, memory and latency of salespulse on an isolated local stack."""
