"""style2talker-live engine: audio in, motion coefficients, rendered talking-portrait frames out."""

__version__ = "0.1.0"
