"""Face-mesh topology shared by the face model and renderer: landmark sets, contours and mesh triangles."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

N_MESH = 468  # landmarks without the 10 iris points
IRIS = np.arange(468, 478)

# Contours ordered from the subject's-right end to the subject's-left end (image left -> right for a
# frontal face); upper and lower lists share their end points (the corners).
LIP_UPPER_INNER = np.array([78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308])
LIP_LOWER_INNER = np.array([78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308])
LIP_UPPER_OUTER = np.array([61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291])
LIP_LOWER_OUTER = np.array([61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291])
R_EYE_UPPER = np.array([33, 246, 161, 160, 159, 158, 157, 173, 133])
R_EYE_LOWER = np.array([33, 7, 163, 144, 145, 153, 154, 155, 133])
L_EYE_UPPER = np.array([362, 398, 384, 385, 386, 387, 388, 466, 263])
L_EYE_LOWER = np.array([362, 382, 381, 380, 374, 373, 390, 249, 263])
R_BROW = np.array([46, 53, 52, 65, 55, 70, 63, 105, 66, 107])
L_BROW = np.array([276, 283, 282, 295, 285, 300, 293, 334, 296, 336])
MOUTH_CORNER_R, MOUTH_CORNER_L = 61, 291
NOSE_ALA_R, NOSE_ALA_L = 98, 327
NOSE_TIP = 1


@lru_cache(maxsize=1)
def face_oval() -> np.ndarray:
    """The 36 face-outline landmarks as one closed cycle (from MediaPipe's FACEMESH_FACE_OVAL edges)."""
    import mediapipe as mp

    edges = list(mp.solutions.face_mesh.FACEMESH_FACE_OVAL)
    nxt: dict[int, list[int]] = {}
    for a, b in edges:
        nxt.setdefault(a, []).append(b)
        nxt.setdefault(b, []).append(a)
    start = 10
    cycle = [start]
    prev = -1
    cur = start
    while True:
        cand = [c for c in nxt[cur] if c != prev]
        nb = cand[0]
        if nb == start:
            break
        cycle.append(nb)
        prev, cur = cur, nb
        if len(cycle) > len(nxt):
            raise RuntimeError("face oval edges do not form one cycle")
    return np.array(cycle, dtype=np.int64)


@lru_cache(maxsize=1)
def mesh_triangles() -> np.ndarray:
    """(852, 3) int triangles of MediaPipe's 468-point face mesh, recovered from its tessellation edges.

    Every 3-clique of the edge graph is a face except a few "separating" triangles, recognised
    because each of their edges would then be shared by three triangles.
    """
    import mediapipe as mp

    pairs = {tuple(sorted(e)) for e in mp.solutions.face_mesh.FACEMESH_TESSELATION}
    adj: list[set[int]] = [set() for _ in range(N_MESH)]
    for a, b in pairs:
        adj[a].add(b)
        adj[b].add(a)
    tris = sorted({tuple(sorted((a, b, c))) for a, b in pairs for c in adj[a] & adj[b]})
    count: dict[tuple[int, int], int] = {}
    for t in tris:
        for e in ((t[0], t[1]), (t[0], t[2]), (t[1], t[2])):
            count[e] = count.get(e, 0) + 1
    keep = [t for t in tris if not all(count[e] > 2 for e in ((t[0], t[1]), (t[0], t[2]), (t[1], t[2])))]
    return np.array(keep, dtype=np.int64)


def strip_triangles(upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Triangles filling the hole between two contours that share their end points (mouth, eyes)."""
    tris: list[tuple[int, int, int]] = []
    for i in range(len(upper) - 1):
        a, b = int(upper[i]), int(upper[i + 1])
        c, d = int(lower[i]), int(lower[i + 1])
        if a != c:
            tris.append((a, b, c))
        else:
            tris.append((a, b, d))
            continue
        if b != d:
            tris.append((b, d, c))
    return np.array(tris, dtype=np.int64)
