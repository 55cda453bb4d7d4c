"""Reference renderer: warps the portrait crop by the deformed mesh and paints mouth interior and eyelids.

Per frame: deform and pose the mesh, build one affine map per triangle (destination -> source),
rasterise triangle ids back to front with OpenCV (painter's order by depth), turn them into a dense
backward map with one vectorised gather and `cv2.remap` the crop. Everything that does not change
per frame (triangulation, background anchors, source positions, colours) is computed once.
The mouth interior is split at the portrait's own lip midline: each half moves with its lip, so a
portrait that already shows teeth keeps them, and only the newly opened band is painted as cavity.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
from scipy.spatial import Delaunay

from engine.errors import InputError
from engine.face import topology as tp
from engine.face.model import FaceModel

log = logging.getLogger(__name__)

# Head surface beyond the face oval: rings at these multiples of the oval (about its centre), each
# this many IODs deeper than the oval point it extends, moving with the head by this weight (an outer
# ring can fade toward the fixed crop border); below the chin the weight can fade out (neck stays).
# Measured (benchmarks/face_geometry.py pose rows): a 3-ring head (1.15/1.4/1.7 x, 0.2/0.5/0.8 IOD
# deep, weights 1/0.8/0.3, 0.8 IOD neck fade) raises the tracker's yaw gain 0.79-0.83 -> 0.82-0.89
# but not the error (mean pose error 1.67 -> 1.71 % IOD), so the single rigid ring is kept.
HEAD_RING_SCALES: tuple[float, ...] = (1.28,)
HEAD_RING_DEPTHS: tuple[float, ...] = (0.0,)
HEAD_RING_WEIGHTS: tuple[float, ...] = (1.0,)
NECK_FADE = 0.0  # IODs below the chin over which ring motion fades to zero (0: no fade)
BORDER_POINTS = 9  # anchors per crop side that never move
_SHIFT = 4  # fixed-point bits for sub-pixel rasterisation
CAVITY_RGB = np.array([52.0, 20.0, 24.0])
TEETH_RGB = np.array([226.0, 222.0, 212.0])
LASH_RGB = np.array([45.0, 32.0, 30.0])


def head_rings(neutral: np.ndarray, iod: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(M, 3) head-surface points around the face oval (crop px) and their (M,) pose weights."""
    oval = tp.face_oval()
    o = neutral[oval]
    centre = o[:, :2].mean(axis=0)
    chin_y = float(neutral[152, 1])
    pts, wts = [], []
    for scale, depth, weight in zip(HEAD_RING_SCALES, HEAD_RING_DEPTHS, HEAD_RING_WEIGHTS):
        xy = centre + scale * (o[:, :2] - centre)
        z = o[:, 2] + depth * iod
        w = np.full(len(o), float(weight))
        if NECK_FADE > 0:
            w *= np.clip(1.0 - (xy[:, 1] - chin_y) / (NECK_FADE * iod), 0.0, 1.0)
        pts.append(np.concatenate([xy, z[:, None]], axis=1))
        wts.append(w)
    p, w = np.concatenate(pts), np.concatenate(wts)
    lim = size * 0.03, size * 0.97
    keep = np.all((p[:, :2] > lim[0]) & (p[:, :2] < lim[1]), axis=1)
    return p[keep], w[keep]


def _smooth01(x: float) -> float:
    t = min(max(x, 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


class ReferenceRenderer:
    """Render (size×size×3 uint8 RGB) frames of a FaceModel for coefficient rows."""

    def __init__(self, model: FaceModel, size: int | None = None) -> None:
        self.model = model
        self.size = int(size or model.size)
        if self.size < 32:
            raise InputError(f"render size must be >= 32 px, got {self.size}")
        self.scale = self.size / model.size
        interp = cv2.INTER_AREA if self.scale < 1.0 else cv2.INTER_LINEAR
        self.texture = (
            model.crop.copy()
            if self.size == model.size
            else cv2.resize(model.crop, (self.size, self.size), interpolation=interp)
        )
        neutral = model.neutral.astype(np.float64)
        oval = tp.face_oval()
        ring, ring_w = head_rings(neutral, model.iod, model.size)
        self._ring3 = ring
        self._ring_w = ring_w[:, None]
        edge = np.linspace(0.0, model.size, BORDER_POINTS)
        border = np.concatenate(
            [
                np.stack([edge[:-1], np.zeros(BORDER_POINTS - 1)], 1),
                np.stack([np.full(BORDER_POINTS - 1, float(model.size)), edge[:-1]], 1),
                np.stack([edge[1:], np.full(BORDER_POINTS - 1, float(model.size))], 1),
                np.stack([np.zeros(BORDER_POINTS - 1), edge[1:]], 1),
            ]
        )
        self._border = border
        n_mesh, n_ring = tp.N_MESH, len(ring)
        self._n_mesh = n_mesh
        src = np.concatenate([neutral[:n_mesh, :2], ring[:, :2], border])
        self._src = self._to_cv(src)
        # Background: Delaunay over outline + ring + border, keeping triangles outside the face oval.
        bg_idx = np.concatenate([oval, n_mesh + np.arange(n_ring), n_mesh + n_ring + np.arange(len(border))])
        dl = Delaunay(src[bg_idx])
        bg_tris = bg_idx[dl.simplices]
        oval_poly = neutral[oval, :2].astype(np.float32).reshape(-1, 1, 2)
        cents = src[bg_tris].mean(axis=1)
        outside = np.array([cv2.pointPolygonTest(oval_poly, (float(x), float(y)), False) < 0 for x, y in cents])
        self._bg = bg_tris[outside]
        # Mouth interior: the portrait's own opening is split at its midline; the upper half moves with
        # the upper lip, the lower half with the lower lip, and only the band opened beyond the
        # portrait's own gap (virtual chains A and B, both sampling the midline) is painted as cavity.
        up, lo = tp.LIP_UPPER_INNER, tp.LIP_LOWER_INNER
        mid3 = 0.5 * (neutral[up[1:-1]] + neutral[lo[1:-1]])
        self._mouth_off_up = mid3 - neutral[up[1:-1]]
        self._mouth_off_lo = mid3 - neutral[lo[1:-1]]
        n_mid = len(mid3)
        base = n_mesh + n_ring + len(border)
        chain_a = np.concatenate([up[:1], base + np.arange(n_mid), up[-1:]])
        chain_b = np.concatenate([lo[:1], base + n_mid + np.arange(n_mid), lo[-1:]])
        self._chain_a, self._chain_b = chain_a, chain_b
        own = np.linalg.norm(neutral[lo, :2] - neutral[up, :2], axis=1) * self.scale
        self._own_gaps = own
        self._src = np.concatenate([self._src, self._to_cv(np.concatenate([mid3[:, :2], mid3[:, :2]]))])
        mouth = np.concatenate(
            [tp.strip_triangles(up, chain_a), tp.strip_triangles(chain_a, chain_b), tp.strip_triangles(chain_b, lo)]
        )
        eyes = np.concatenate(
            [tp.strip_triangles(tp.R_EYE_UPPER, tp.R_EYE_LOWER), tp.strip_triangles(tp.L_EYE_UPPER, tp.L_EYE_LOWER)]
        )
        self._fg = np.concatenate([tp.mesh_triangles(), mouth, eyes])
        push = np.zeros(len(self._fg))
        push[len(self._fg) - len(eyes) - len(mouth) : len(self._fg) - len(eyes)] = 0.4 * model.iod
        push[len(self._fg) - len(eyes) :] = 0.05 * model.iod
        self._fg_push = push
        self._tris = np.concatenate([self._bg, self._fg])
        ys, xs = np.mgrid[0 : self.size, 0 : self.size].astype(np.float32)
        self._xs, self._ys = xs, ys
        self._label = np.zeros((self.size, self.size), np.int32)
        self._neutral_gaps = self._gaps(neutral[:, :2])
        self._lid_rgb = [self._sample_lid(tp.R_EYE_UPPER, tp.R_BROW), self._sample_lid(tp.L_EYE_UPPER, tp.L_BROW)]
        log.debug("reference renderer: %d fg + %d bg triangles at %d px", len(self._fg), len(self._bg), self.size)

    # ---- helpers ------------------------------------------------------------------------------

    def _to_cv(self, pts: np.ndarray) -> np.ndarray:
        """MediaPipe-convention crop coordinates -> OpenCV pixel coordinates at render size."""
        return (pts + 0.5) * self.scale - 0.5 if self.scale != 1.0 else np.asarray(pts, np.float64)

    def _gaps(self, xy: np.ndarray) -> tuple[float, float, float]:
        mouth = float(np.linalg.norm(xy[14] - xy[13]))
        r_eye = float(np.linalg.norm(xy[145] - xy[159]))
        l_eye = float(np.linalg.norm(xy[374] - xy[386]))
        return mouth, r_eye, l_eye

    def _sample_lid(self, upper: np.ndarray, brow: np.ndarray) -> np.ndarray:
        """Median skin colour between the upper lid and the brow in the neutral crop."""
        xy = self.model.neutral[:, :2].astype(np.float64)
        lid = xy[upper[2:-2]]
        b = xy[brow].mean(axis=0)
        pts = [lid + f * (b - lid) for f in (0.3, 0.45)]
        p = self._to_cv(np.concatenate(pts))
        ix = np.clip(np.round(p).astype(int), 0, self.size - 1)
        return np.median(self.texture[ix[:, 1], ix[:, 0]].astype(np.float64), axis=0)

    # ---- rendering ----------------------------------------------------------------------------

    def render(self, coeffs: np.ndarray) -> np.ndarray:
        """One (size, size, 3) uint8 RGB frame for a (dim,) coefficient row."""
        c = np.asarray(coeffs, np.float64)
        if c.shape != (self.model.spec.dim,):
            raise InputError(f"coefficients must have shape ({self.model.spec.dim},), got {c.shape}")
        if not np.isfinite(c).all():
            raise InputError("coefficients contain NaN or inf")
        c = c.copy()
        ne = self.model.spec.n_expression
        np.clip(c[:ne], 0.0, 1.0, out=c[:ne])
        dst, depth, mesh = self._geometry(c)
        out = self._warp(dst, depth)
        xy = self._to_cv(mesh[:, :2])
        self._paint_mouth(out, xy, dst[self._chain_a], dst[self._chain_b])
        self._paint_lids(out, xy)
        return out

    def _geometry(self, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Destination points (cv px), their depths and the posed 478-point mesh for one clipped row."""
        expr = self.model.expression_mesh(c[None])[0]
        up, lo = tp.LIP_UPPER_INNER[1:-1], tp.LIP_LOWER_INNER[1:-1]
        extra = np.concatenate([self._ring3, expr[up] + self._mouth_off_up, expr[lo] + self._mouth_off_lo])
        posed = self.model.apply_pose(np.concatenate([expr, extra])[None], c[None])[0]
        mesh, ring, mid = posed[:478], posed[478 : 478 + len(self._ring3)], posed[478 + len(self._ring3) :]
        ring = self._ring3 + self._ring_w * (ring - self._ring3)
        dst = self._to_cv(np.concatenate([mesh[: self._n_mesh, :2], ring[:, :2], self._border, mid[:, :2]]))
        far = np.full(len(self._border), 1e4)  # fixed border anchors: farthest, drawn first
        depth = np.concatenate([mesh[: self._n_mesh, 2], ring[:, 2], far, mid[:, 2]])
        return dst, depth, mesh

    def render_batch(self, coeffs: np.ndarray) -> np.ndarray:
        """(T, size, size, 3) uint8 frames for (T, dim) coefficients."""
        c = np.asarray(coeffs)
        if c.ndim != 2:
            raise InputError(f"coefficients must have shape (T, {self.model.spec.dim}), got {c.shape}")
        out = np.empty((c.shape[0], self.size, self.size, 3), np.uint8)
        for i, row in enumerate(c):
            out[i] = self.render(row)
        return out

    def _warp(self, dst: np.ndarray, depth: np.ndarray) -> np.ndarray:
        tris = self._tris
        d = dst[tris]  # (T, 3, 2)
        s = self._src[tris]
        m = np.concatenate([d, np.ones((len(tris), 3, 1))], axis=2)  # rows [x, y, 1]
        det = np.linalg.det(m)
        ok = np.abs(det) > 1e-6
        m[~ok] = np.eye(3)
        aff = np.linalg.solve(m, s)  # (T, 3, 2): src = [x y 1] @ aff
        table = np.zeros((len(tris) + 1, 6), np.float32)
        table[0] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
        table[1:, 0:3] = aff[:, :, 0]
        table[1:, 3:6] = aff[:, :, 1]
        # painter's order: background first, then face triangles far to near
        n_bg = len(self._bg)
        fg_depth = depth[self._fg].mean(axis=1) + self._fg_push
        bg_depth = depth[self._bg].mean(axis=1)
        order = np.concatenate([np.argsort(-bg_depth, kind="stable"), n_bg + np.argsort(-fg_depth, kind="stable")])
        order = order[ok[order]]
        pts = np.round(d * (1 << _SHIFT)).astype(np.int32)
        label = self._label
        label.fill(0)
        fill = cv2.fillConvexPoly
        for t in order.tolist():
            fill(label, pts[t], t + 1, cv2.LINE_8, _SHIFT)
        g = table[label]  # (H, W, 6)
        xs, ys = self._xs, self._ys
        mapx = g[..., 0] * xs + g[..., 1] * ys + g[..., 2]
        mapy = g[..., 3] * xs + g[..., 4] * ys + g[..., 5]
        return cv2.remap(self.texture, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def _blend_poly(self, out: np.ndarray, polys: list[np.ndarray], rgb: np.ndarray, alpha: float,
                    clip: np.ndarray | None = None) -> np.ndarray | None:
        """Alpha-fill polygons (cv coords) into `out` in place; returns the anti-aliased coverage mask."""
        allp = np.concatenate(polys)
        x0, y0 = np.floor(allp.min(axis=0)).astype(int) - 1
        x1, y1 = np.ceil(allp.max(axis=0)).astype(int) + 2
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1, self.size), min(y1, self.size)
        if x1 <= x0 or y1 <= y0:
            return None
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        shifted = [np.round((p - (x0, y0)) * (1 << _SHIFT)).astype(np.int32) for p in polys]
        cv2.fillPoly(mask, shifted, 255, cv2.LINE_AA, _SHIFT)
        a = mask.astype(np.float32) * (alpha / 255.0)
        if clip is not None:
            a = np.minimum(a, clip[y0:y1, x0:x1])
        roi = out[y0:y1, x0:x1].astype(np.float32)
        roi += a[..., None] * (rgb.astype(np.float32) - roi)
        out[y0:y1, x0:x1] = np.clip(roi + 0.5, 0, 255).astype(np.uint8)
        full = np.zeros((self.size, self.size), np.float32)
        full[y0:y1, x0:x1] = a
        return full

    def _paint_mouth(self, out: np.ndarray, xy: np.ndarray, up: np.ndarray, lo: np.ndarray) -> None:
        """Paint the cavity (and teeth) in the band between the mid chains `up` and `lo` (cv coords)."""
        gap = float(np.linalg.norm(xy[14] - xy[13])) / self.scale
        extra = gap - self._neutral_gaps[0]
        alpha = _smooth01(extra / (0.05 * self.model.iod))
        if alpha <= 0.0:
            return
        cavity = np.concatenate([up, lo[::-1][1:-1]])
        mask = self._blend_poly(out, [cavity], CAVITY_RGB, alpha)
        if mask is None:
            return
        iod = self.model.iod * self.scale
        # Teeth the portrait already shows in its own opening (own, per contour point) are not repainted.
        gaps = np.linalg.norm(lo - up, axis=1)
        own = self._own_gaps
        full = gaps + own
        h_up = np.clip(np.minimum(0.32 * full, 0.085 * iod) - 0.5 * own, 0.0, None)[2:-2, None]
        band = up[2:-2]
        upper_teeth = np.concatenate([band, (band + np.concatenate([np.zeros_like(h_up), h_up], 1))[::-1]])
        self._blend_poly(out, [upper_teeth], TEETH_RGB, 0.92 * alpha, clip=mask)
        h_lo = np.clip(np.minimum(0.15 * full, 0.04 * iod) - 0.5 * own, 0.0, None)[3:-3, None]
        band = lo[3:-3]
        lower_teeth = np.concatenate([band, (band - np.concatenate([np.zeros_like(h_lo), h_lo], 1))[::-1]])
        self._blend_poly(out, [lower_teeth], TEETH_RGB * 0.85, 0.7 * alpha, clip=mask)

    def _paint_lids(self, out: np.ndarray, xy: np.ndarray) -> None:
        eyes = ((tp.R_EYE_UPPER, tp.R_EYE_LOWER, 159, 145, 1), (tp.L_EYE_UPPER, tp.L_EYE_LOWER, 386, 374, 2))
        for k, (upper, lower, top, bottom, gi) in enumerate(eyes):
            g0 = self._neutral_gaps[gi]
            if g0 <= 1e-3:
                continue
            gap = float(np.linalg.norm(xy[bottom] - xy[top])) / self.scale
            closure = 1.0 - gap / g0
            alpha = _smooth01((closure - 0.35) / 0.5)
            if alpha <= 0.0:
                continue
            lid = np.concatenate([xy[upper], xy[lower][::-1][1:-1]])
            self._blend_poly(out, [lid], self._lid_rgb[k], alpha)
            lash = alpha * _smooth01((closure - 0.7) / 0.3)
            if lash > 0.0:
                line = xy[lower]
                pts = np.round(line * (1 << _SHIFT)).astype(np.int32)
                col = tuple(float(v) for v in (lash * LASH_RGB + (1 - lash) * self._lid_rgb[k]))
                cv2.polylines(out, [pts], False, col, 1, cv2.LINE_AA, _SHIFT)
