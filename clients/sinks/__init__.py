"""Output sinks shared by the clients: WebRTC tracks and fan-out (rtc), PyAV/WHIP live outputs (live)."""
