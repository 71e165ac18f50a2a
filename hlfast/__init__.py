"""hlfast: a low-latency Hyperliquid market maker with a Cython core."""

__version__ = "0.1.0"
