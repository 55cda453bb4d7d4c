"""`s2t serve`: the WebRTC server (aiohttp + aiortc), its browser page, and WHEP playback."""
