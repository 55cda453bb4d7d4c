"""Face stage: portrait loading, MediaPipe tracking, the hand-built face model and the reference renderer."""
