"""The real-time runtime: worker processes, ZeroMQ transport, latency budget and the live `Engine`."""

from engine.runtime.engine import Engine

__all__ = ["Engine"]
