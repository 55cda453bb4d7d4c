"""Torch to ONNX exporters, parity checks and model cards (never imported at run time)."""
