"""Media files in and out: the A/V file writer (H.264 + AAC) used by `s2t render` and file sinks."""
