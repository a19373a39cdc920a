"""The local stack: a real Kafka broker, Redis and Prometheus started without Docker."""

from streams.stack.errors import StackError

__all__ = ["StackError"]
