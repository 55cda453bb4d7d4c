"""Ways in and out of the engine: CLI, file render, WebRTC server, virtual camera, streaming, bench."""
