"""Hand-built blendshape basis: one displacement field per ARKit-style channel over the face-mesh regions.

Every field is built in a head frame measured on the portrait's own mesh (origin between the eyes,
x toward the subject's left, y down, z away from the camera, unit = inter-ocular distance), so the
same recipe fits any face. Fields are linear in their coefficient, which keeps `FaceModel.fit` a
smooth least-squares problem; jawOpen is the chord of a rigid rotation of the lower face about a jaw
pivot (exact at 1, so the chin swings down and back without the tangent's stretch of the jaw).
"""

from __future__ import annotations

import numpy as np

from engine.face import topology as tp
from engine.spec import EXPRESSION_CHANNELS

JAW_ANGLE = 0.40  # radians of jaw rotation at jawOpen = 1
JAW_PIVOT = (0.0, 0.15, 0.40)  # head-frame pivot; shallow so the chin moves less than the lips (tracks best)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    t = np.clip(x, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _gauss(h: np.ndarray, centre: np.ndarray, su: float, sv: float) -> np.ndarray:
    du = (h[:, 0] - centre[0]) / su
    dv = (h[:, 1] - centre[1]) / sv
    return np.exp(-0.5 * (du * du + dv * dv))


def _contour_v(h: np.ndarray, idx: np.ndarray, u: np.ndarray) -> np.ndarray:
    """v of a contour (landmark indices) interpolated at horizontal positions u (clamped at ends)."""
    cu, cv = h[idx, 0], h[idx, 1]
    order = np.argsort(cu)
    return np.interp(u, cu[order], cv[order])


class _Regions:
    """Soft region weights on one head-frame mesh (478×3, IOD units)."""

    def __init__(self, h: np.ndarray) -> None:
        self.h = h
        u, v = h[:, 0], h[:, 1]
        self.u, self.v = u, v
        cr, cl = h[tp.MOUTH_CORNER_R], h[tp.MOUTH_CORNER_L]
        self.corner_r, self.corner_l = cr, cl
        self.mouth_centre = 0.5 * (h[13] + h[14])
        self.mouth_half = 0.5 * abs(cl[0] - cr[0])
        # Lip line: midline between the inner lips across the mouth, extended through the corners.
        up_v = _contour_v(h, tp.LIP_UPPER_INNER, u)
        lo_v = _contour_v(h, tp.LIP_LOWER_INNER, u)
        mid = 0.5 * (up_v + lo_v)
        beyond = np.clip(np.abs(u - self.mouth_centre[0]) - self.mouth_half, 0.0, None)
        slope = (cl[1] - cr[1]) / max(cl[0] - cr[0], 1e-6)
        line_side = np.where(u < self.mouth_centre[0], cr[1] + slope * (u - cr[0]), cl[1] + slope * (u - cl[0]))
        self.lip_line = np.where(beyond > 0, line_side, mid)
        below = v - self.lip_line
        band = 0.02 + 0.8 * beyond
        lower = _smoothstep(below / band)
        lower[tp.LIP_LOWER_INNER] = 1.0
        lower[tp.LIP_LOWER_OUTER] = 1.0
        lower[tp.LIP_UPPER_INNER] = 0.0
        lower[tp.LIP_UPPER_OUTER] = 0.0
        for c in (tp.MOUTH_CORNER_R, tp.MOUTH_CORNER_L, 78, 308):
            lower[c] = 0.35
        lower[tp.IRIS] = 0.0
        self.lower = lower
        self.upper = (v < self.lip_line + 0.01).astype(np.float64)
        self.upper[tp.LIP_LOWER_INNER[1:-1]] = 0.0
        self.upper[tp.LIP_LOWER_OUTER[1:-1]] = 0.0
        mc = self.mouth_centre
        self.lips = _gauss(h, mc, 0.9 * self.mouth_half + 0.05, 0.2)
        self.lips[tp.IRIS] = 0.0

    def lid_zone(self, upper: np.ndarray, lower: np.ndarray, brow: np.ndarray, top: bool) -> np.ndarray:
        """Weight 1 on an eyelid contour decaying to 0 toward the brow (top) or the cheek (bottom)."""
        u, v = self.u, self.v
        lo_u, hi_u = float(self.h[upper, 0].min()), float(self.h[upper, 0].max())
        inside = _smoothstep((u - lo_u) / 0.05) * _smoothstep((hi_u - u) / 0.05)
        if top:
            lid = _contour_v(self.h, upper, u)
            brow_v = _contour_v(self.h, brow, u)
            height = np.maximum(lid - brow_v, 0.05) * 0.85
            d = (lid - v) / height
        else:
            lid = _contour_v(self.h, lower, u)
            d = (v - lid) / 0.22
        w = np.where((d >= -0.02) & (d <= 1.0), 1.0 - np.clip(d, 0.0, 1.0), 0.0) * inside
        contour = upper if top else lower
        other = lower if top else upper
        w[contour] = 1.0 * inside[contour]
        w[other[1:-1]] = 0.0
        w[tp.IRIS] = 0.0
        return w


def _eye_sets(right: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if right:
        return tp.R_EYE_UPPER, tp.R_EYE_LOWER, tp.R_BROW
    return tp.L_EYE_UPPER, tp.L_EYE_LOWER, tp.L_BROW


def build_basis(h: np.ndarray) -> np.ndarray:
    """(28, 478, 3) displacement fields in head-frame IOD units, rows in EXPRESSION_CHANNELS order."""
    h = np.asarray(h, np.float64)
    n = h.shape[0]
    r = _Regions(h)
    u, v = r.u, r.v
    fields: dict[str, np.ndarray] = {}

    def vec(du: np.ndarray | float = 0.0, dv: np.ndarray | float = 0.0, dz: np.ndarray | float = 0.0) -> np.ndarray:
        out = np.zeros((n, 3))
        out[:, 0], out[:, 1], out[:, 2] = du, dv, dz
        return out

    # jawOpen: rotate the lower face about the jaw pivot (x axis).
    piv = np.asarray(JAW_PIVOT)
    rel = h - piv
    ca, sa = np.cos(JAW_ANGLE), np.sin(JAW_ANGLE)
    jaw = np.stack([np.zeros(n), rel[:, 1] * (ca - 1.0) - rel[:, 2] * sa, rel[:, 1] * sa + rel[:, 2] * (ca - 1.0)], 1)
    jaw *= r.lower[:, None]
    fields["jawOpen"] = jaw

    # mouthClose: press the lips toward the lip line (thinner lips), inner edges stay.
    toward = np.clip((v - r.lip_line) / 0.12, -1.0, 1.0)
    fields["mouthClose"] = vec(dv=-0.035 * toward * r.lips)

    # funnel: lips forward, corners in, a round opening at the centre.
    rel_u = u - r.mouth_centre[0]
    centre_open = np.exp(-0.5 * (rel_u / (0.5 * r.mouth_half + 1e-6)) ** 2)
    open_v = (-0.03 * (1.0 - r.lower) * r.upper + 0.05 * r.lower) * centre_open * r.lips
    fields["mouthFunnel"] = vec(du=-0.25 * rel_u * r.lips, dv=open_v, dz=-0.08 * r.lips)
    fields["mouthPucker"] = vec(du=-0.40 * rel_u * r.lips, dz=-0.10 * r.lips)

    for side, corner, sgn in (("Left", r.corner_l, 1.0), ("Right", r.corner_r, -1.0)):
        wc = _gauss(h, corner, 0.22, 0.22)
        wc[tp.IRIS] = 0.0
        fields[f"mouthSmile{side}"] = vec(du=sgn * 0.06 * wc, dv=-0.08 * wc, dz=0.02 * wc)
        fields[f"mouthFrown{side}"] = vec(du=sgn * 0.01 * wc, dv=0.07 * wc)
        fields[f"mouthStretch{side}"] = vec(du=sgn * 0.08 * wc, dv=0.02 * wc)
        mid_u = r.mouth_centre[0] + sgn * 0.45 * r.mouth_half
        wu = np.exp(-0.5 * ((u - mid_u) / 0.14) ** 2) * r.lips * (1.0 - r.lower) * r.upper
        fields[f"mouthUpperUp{side}"] = vec(dv=-0.06 * wu)
        wl = np.exp(-0.5 * ((u - mid_u) / 0.14) ** 2) * r.lips * r.lower
        fields[f"mouthLowerDown{side}"] = vec(dv=0.07 * wl)

    # brows
    brow_w: dict[str, np.ndarray] = {}
    for side, right in (("Left", False), ("Right", True)):
        up, lo, brow = _eye_sets(right)
        bu = h[brow, 0]
        brow_v = _contour_v(h, brow, u)
        lateral = _smoothstep((u - (bu.min() - 0.12)) / 0.12) * _smoothstep(((bu.max() + 0.12) - u) / 0.12)
        vert = np.exp(-0.5 * ((v - brow_v) / 0.13) ** 2)
        w = lateral * vert
        w[up] = 0.0
        w[lo] = 0.0
        w[tp.IRIS] = 0.0
        lid = r.lid_zone(up, lo, brow, top=True)
        w = np.maximum(w * (1.0 - lid), 0.0) + 0.25 * lid * (lid < 0.999) * lateral
        brow_w[side] = w
        inner_u = bu[np.argmin(np.abs(bu))]
        outer_u = bu[np.argmax(np.abs(bu))]
        fields[f"_inner{side}"] = vec(dv=-0.08 * w * np.exp(-0.5 * ((u - inner_u) / 0.18) ** 2))
        fields[f"browDown{side}"] = vec(du=-np.sign(outer_u) * 0.015 * w, dv=0.06 * w)
        fields[f"browOuterUp{side}"] = vec(dv=-0.08 * w * np.exp(-0.5 * ((u - outer_u) / 0.18) ** 2))
    fields["browInnerUp"] = fields.pop("_innerLeft") + fields.pop("_innerRight")

    # eyes
    for side, right in (("Left", False), ("Right", True)):
        up, lo, brow = _eye_sets(right)
        top = r.lid_zone(up, lo, brow, top=True)
        bottom = r.lid_zone(up, lo, brow, top=False)
        gap = _contour_v(h, lo, u) - _contour_v(h, up, u)
        gap = np.clip(gap, 0.0, None)
        fields[f"eyeBlink{side}"] = vec(dv=0.92 * top * gap - 0.08 * bottom * gap)
        fields[f"eyeWide{side}"] = vec(dv=-0.05 * top + 0.01 * bottom)
        fields[f"eyeSquint{side}"] = vec(dv=-0.035 * bottom + 0.012 * top)

    # cheeks and nose
    puff = np.zeros((n, 3))
    for sgn in (1.0, -1.0):
        centre = np.array([r.mouth_centre[0] + sgn * (r.mouth_half + 0.32), r.mouth_centre[1] - 0.1])
        w = _gauss(h, centre, 0.22, 0.28)
        w[tp.IRIS] = 0.0
        puff[:, 0] += sgn * 0.06 * w
        puff[:, 2] -= 0.03 * w
    fields["cheekPuff"] = puff
    for side, ala in (("Left", tp.NOSE_ALA_L), ("Right", tp.NOSE_ALA_R)):
        w = _gauss(h, h[ala], 0.12, 0.12)
        w[tp.IRIS] = 0.0
        fields[f"noseSneer{side}"] = vec(dv=-0.045 * w)

    missing = [c for c in EXPRESSION_CHANNELS if c not in fields]
    if missing:
        raise RuntimeError(f"basis has no field for {missing}")
    return np.stack([fields[c] for c in EXPRESSION_CHANNELS]).astype(np.float32)

