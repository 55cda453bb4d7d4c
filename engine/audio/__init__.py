"""Audio in: decoding any common format to 16 kHz mono float32, 20 ms framing, VAD and log-mel features."""
