"""Mouth aperture of JPEG frames in a folder, in a low-priority child process (keeps live sessions smooth).

`python -m clients.webrtc.apertures DIR` prints a JSON list (null where no face) for DIR/*.jpg in name
order. The server runs it niced for the page's glass-to-glass upload so face tracking never competes
with the engines on equal terms; `measure_apertures` is the asyncio wrapper.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from engine.errors import S2TError

log = logging.getLogger(__name__)
NICE = 10


async def measure_apertures(jpegs: list[bytes], timeout_s: float = 120.0) -> np.ndarray:
    """Aperture per JPEG (NaN where no face or undecodable), computed in a niced child process."""
    with tempfile.TemporaryDirectory(prefix="s2t-g2g-") as d:
        for i, j in enumerate(jpegs):
            (Path(d) / f"{i:06d}.jpg").write_bytes(j)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "clients.webrtc.apertures", d,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise S2TError(f"face tracking of {len(jpegs)} frames took over {timeout_s:.0f} s") from None
    if proc.returncode != 0:
        raise S2TError(f"face tracking failed: {err.decode(errors='replace').strip().splitlines()[-1:]}")
    values = json.loads(out)
    return np.asarray([np.nan if v is None else float(v) for v in values], np.float64)


def _main(folder: str) -> int:
    os.nice(NICE)
    import cv2

    from engine.face.tracker import mouth_aperture_series

    imgs = []
    for p in sorted(Path(folder).glob("*.jpg")):
        im = cv2.imread(str(p), cv2.IMREAD_COLOR)
        imgs.append(np.zeros((64, 64, 3), np.uint8) if im is None else cv2.cvtColor(im, cv2.COLOR_BGR2RGB))
    ap = mouth_aperture_series(imgs)
    sys.stdout.write(json.dumps([None if not np.isfinite(v) else round(float(v), 5) for v in ap]))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
