"""The simulator writes the runtime's Chrome-trace format (see :mod:`adaqp.trace_format`)."""

from adaqp.trace_format import chrome_trace

__all__ = ["chrome_trace"]
