"""What readers get: the Redis read model, the HTTP API (values, history), the TV wallboard
and its alerts banner, and who may read them (tokens, bind address, readiness)."""
