"""Fit per-frame coefficients to real talking videos (face tracker + FaceModel), with audio features."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import AudioError, InputError, NoFaceError
from engine.spec import DEFAULT_SPEC

log = logging.getLogger(__name__)
FPS = 25.0
VIDEO_EXT = (".mp4", ".mov", ".mkv", ".webm", ".avi")


@dataclass(frozen=True, slots=True)
class ClipFit:
    """Coefficients fitted to one video, resampled to 25 fps, with the fit's reprojection error."""

    name: str
    coeffs: np.ndarray  # (T, 34) float32 at 25 fps
    valid: np.ndarray  # (T,) bool: a face was tracked at (or next to) this instant
    errors: np.ndarray  # (T_src,) float64 error per source frame (fraction of IOD; NaN without a face)
    src_fps: float
    audio: np.ndarray | None  # (N,) float32 16 kHz, None when the video has no audio
    aperture: np.ndarray | None = None  # (T,) tracked inner-lip gap / IOD at 25 fps (NaN where not `valid`)
    mesh_aperture: np.ndarray | None = None  # (T,) the same gap measured on the fitted mesh (coeffs through the model)

    @property
    def median_error(self) -> float:
        e = self.errors[np.isfinite(self.errors)]
        return float(np.median(e)) if e.size else float("nan")


def read_frames(path: str | Path, max_frames: int | None = None) -> tuple[list[np.ndarray], float]:
    """All RGB frames of a video and its frame rate; InputError if unreadable or empty."""
    frames, _times, fps = read_frames_timed(path, max_frames)
    return frames, fps


def read_frames_timed(path: str | Path, max_frames: int | None = None,
                      max_side: int | None = None) -> tuple[list[np.ndarray], np.ndarray, float]:
    """RGB frames, each frame's centre time in seconds on the audio clock, and the average frame rate.

    `max_side` scales larger frames down (aspect kept) as they are decoded, so a long 4K upload does not
    hold gigabytes of frames.

    A frame is shown from its pts to the next frame's pts; its time is the middle of that span, measured
    from the audio stream's start (so variable-frame-rate videos and a video stream that starts later than
    the audio keep lip/audio timing). InputError if unreadable or empty.
    """
    import av

    p = Path(path)
    if not p.is_file():
        raise InputError(f"video not found: {p}")
    try:
        with av.open(str(p)) as c:
            if not c.streams.video:
                raise InputError(f"no video stream in {p}")
            s = c.streams.video[0]
            fps = float(s.average_rate or s.guessed_rate or FPS)
            a = c.streams.audio[0] if c.streams.audio else None
            t0 = float(a.start_time * a.time_base) if a is not None and a.start_time is not None else 0.0
            frames, pts = [], []
            for f in c.decode(s):
                scale = min(1.0, max_side / max(f.width, f.height)) if max_side else 1.0
                size = {"width": max(2, round(f.width * scale)), "height": max(2, round(f.height * scale))}
                frames.append(f.to_ndarray(format="rgb24", **(size if scale < 1.0 else {})))
                pts.append(float(f.pts * f.time_base) if f.pts is not None and f.time_base is not None else np.nan)
                if max_frames and len(frames) >= max_frames:
                    break
    except av.error.FFmpegError as e:
        raise InputError(f"cannot read video {p}: {e}") from None
    if not frames:
        raise InputError(f"video has no frames: {p}")
    return frames, frame_times(np.array(pts, np.float64), fps) - t0, fps


def frame_times(pts: np.ndarray, fps: float) -> np.ndarray:
    """Frame centre times (s) from presentation times; i/fps spacing where pts are missing or not increasing."""
    n = len(pts)
    if n == 0 or not np.isfinite(pts).all() or (n > 1 and np.any(np.diff(pts) <= 0)):
        start = float(pts[0]) if n and np.isfinite(pts[0]) else 0.0
        return start + (np.arange(n) + 0.5) / fps
    step = np.diff(pts)
    last = float(np.median(step)) if n > 1 else 1.0 / fps
    return pts + 0.5 * np.append(step, last)


def _resample(coeffs: np.ndarray, valid: np.ndarray, t_src: np.ndarray, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation of valid source frames (centre times `t_src`, s) onto the 25 fps grid (frame centres)."""
    t_src = np.asarray(t_src, np.float64)
    t_out = (np.arange(n_out) + 0.5) / FPS
    ok = np.flatnonzero(valid)
    out = np.empty((n_out, coeffs.shape[1]), np.float32)
    for k in range(coeffs.shape[1]):  # 34 channels: np.interp is 1-D
        out[:, k] = np.interp(t_out, t_src[ok], coeffs[ok, k])
    right = np.clip(np.searchsorted(t_src, t_out), 0, len(t_src) - 1)
    left = np.maximum(right - 1, 0)
    nearest = np.where(np.abs(t_out - t_src[left]) < np.abs(t_src[right] - t_out), left, right)  # closest centre
    return out, valid[nearest]


def fit_video(path: str | Path, size: int = 256, max_frames: int | None = None,
              max_side: int | None = None) -> ClipFit:
    """Track every frame, build a FaceModel from the first good frame, fit the sequence.

    Frames without a face are kept as gaps (interpolated over, marked invalid); a video with no face
    at all raises NoFaceError.
    """
    from engine.face.model import FaceModel
    from engine.face.tracker import FaceTracker, mouth_apertures

    frames, times, fps = read_frames_timed(path, max_frames, max_side)
    lms = np.full((len(frames), 478, 3), np.nan, np.float32)
    first = -1
    with FaceTracker(static_image_mode=False) as trk:
        for i, fr in enumerate(frames):
            try:
                lms[i] = trk.track(fr).landmarks
            except NoFaceError:
                continue
            if first < 0:
                first = i
    if first < 0:
        raise NoFaceError(f"no face found in any frame of {path}")
    model = FaceModel.from_portrait(frames[first], size=size)
    crop_lms = lms.copy()
    good = np.isfinite(lms[:, 0, 0])
    crop_lms[good] = model.image_to_crop(lms[good])
    coeffs, errors = model.fit_sequence(crop_lms)  # single-threaded BLAS inside (see FaceModel.fit)
    audio: np.ndarray | None
    try:
        from engine.audio.ingest import decode_audio

        from engine.data.synth import check_audio

        audio = decode_audio(path)
        check_audio(audio, Path(path).name)
    except AudioError as e:
        log.warning("%s: no usable audio (%s); coefficients only", Path(path).name, e)
        audio = None
    step = times[-1] - times[-2] if len(times) > 1 else 1.0 / fps
    dur = float(times[-1]) + 0.5 * step  # end of the last frame on the audio clock
    n_out = int(np.ceil(dur * FPS - 1e-6))
    c25, v25 = _resample(coeffs, good, times, n_out)
    ap = np.nan_to_num(mouth_apertures(lms))[:, None]  # tracked landmarks (image px); faceless rows are not interpolated
    ap25 = _resample(ap, good, times, n_out)[0][:, 0]
    ap25[~v25] = np.nan
    mesh_ap = mouth_apertures(model.deform_batch(c25)).astype(np.float32)  # the fitted coefficients' own lip gap
    log.info("%s: %d frames @ %.1f fps, %d without face, median err %.2f%% IOD", Path(path).name, len(frames),
             fps, int((~good).sum()), 100 * float(np.nanmedian(errors)))
    return ClipFit(Path(path).stem, c25, v25, errors, fps, audio, ap25.astype(np.float32), mesh_ap)


def manifest_rows(manifest: Path) -> dict[str, dict[str, str]]:
    """file name -> {"source", "license", "notes"} from shared/data/MANIFEST.md tables."""
    rows: dict[str, dict[str, str]] = {}
    if not manifest.is_file():
        return rows
    for line in manifest.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 6 and "/" in cells[0] and not cells[0].startswith("---"):
            rows[Path(cells[0]).name] = {"path": cells[0], "source": cells[1], "commit": cells[2],
                                         "license": cells[3], "notes": cells[5]}
    return rows


def speaker_of(name: str, notes: str) -> str:
    """Speaker identity: MEAD actor id from the name, else the person named first in the manifest notes."""
    m = re.search(r"(?<![A-Za-z])([MW]\d{3})(?!\d)", name)
    if m:
        return m.group(1)
    if notes and not notes.lower().startswith(("source video", "3dmm")):
        return re.split(r"[(,]", notes)[0].strip().lower() or name
    return name


def write_clip(fit: ClipFit, file: str, odir: Path, info: dict[str, str]) -> dict[str, object]:
    """Write odir/<clip>.npz (coeffs, valid, errors, aperture, mesh_aperture, + audio int16 and mel when the video
    has audio); its card row."""
    from engine.audio.features import mel_for_video

    arrays: dict[str, np.ndarray] = {"coeffs": fit.coeffs, "valid": fit.valid, "errors": fit.errors}
    if fit.aperture is not None:
        arrays["aperture"] = fit.aperture
    if fit.mesh_aperture is not None:
        arrays["mesh_aperture"] = fit.mesh_aperture
    if fit.audio is not None:
        arrays["audio"] = np.round(np.clip(fit.audio, -1, 1) * 32767).astype(np.int16)
        mel = mel_for_video(fit.audio, FPS)
        n = min(len(mel), len(fit.coeffs))
        arrays["mel"] = mel[:n].astype(np.float16)
    np.savez(odir / f"{fit.name}.npz", **arrays)
    return {"clip": fit.name, "file": file, "frames_25fps": len(fit.coeffs), "src_fps": fit.src_fps,
            "seconds": round(len(fit.coeffs) / FPS, 3), "faceless_frames": int(np.isnan(fit.errors).sum()),
            "median_error_iod": round(fit.median_error, 5), "has_audio": fit.audio is not None,
            "speaker": speaker_of(fit.name, info.get("notes", "")), "source": info.get("source", "unknown"),
            "license": info.get("license", "unknown (not in MANIFEST.md)")}


def fit_directory(videos: str | Path, out: str | Path, size: int = 256, max_frames: int | None = None,
                  manifest: str | Path | None = None) -> dict[str, object]:
    """Fit every video in `videos`; write out/<clip>.npz and out/card.json (median reprojection error)."""
    vdir, odir = Path(videos), Path(out)
    if not vdir.is_dir():
        raise InputError(f"--videos must be a directory: {vdir}")
    files = sorted(p for p in vdir.iterdir() if p.suffix.lower() in VIDEO_EXT)
    if not files:
        raise InputError(f"no videos ({', '.join(VIDEO_EXT)}) in {vdir}")
    odir.mkdir(parents=True, exist_ok=True)
    man_path = Path(manifest) if manifest else next((p / "MANIFEST.md" for p in (vdir, *vdir.parents)
                                                     if (p / "MANIFEST.md").is_file()), None)
    man = manifest_rows(man_path) if man_path else {}
    clips, all_err, failed = [], [], []
    for f in files:
        try:
            fit = fit_video(f, size, max_frames)
        except (NoFaceError, InputError) as e:
            log.warning("skipping %s: %s", f.name, e)
            failed.append({"file": f.name, "error": str(e)})
            continue
        clips.append(write_clip(fit, f.name, odir, man.get(f.name, {})))
        all_err.append(fit.errors[np.isfinite(fit.errors)])
    errs = np.concatenate(all_err) if all_err else np.zeros(0)
    card = {"clips": clips, "failed": failed, "videos_dir": str(vdir), "spec": DEFAULT_SPEC.to_dict(),
            "fps": FPS, "median_reprojection_error_iod": round(float(np.median(errs)), 5) if errs.size else None,
            "median_of_clip_medians_iod": round(float(np.median([c["median_error_iod"] for c in clips])), 5)
            if clips else None, "frames_fitted": int(errs.size),
            "error_unit": "mean landmark distance / inter-ocular distance"}
    (odir / "card.json").write_text(json.dumps(card, indent=1))
    return card


def merge_real(fitdir: Path, corpus: Path, seed: int) -> tuple[list[dict[str, object]], dict[str, object]]:
    """Pack fitted clips with audio into a corpus shard; split by speaker. Returns (index rows, card part)."""
    card_path = fitdir / "card.json"
    if not card_path.is_file():
        raise InputError(f"--real must be an `s2t data fit` output (no card.json in {fitdir})")
    fc = json.loads(card_path.read_text())
    clips = [c for c in fc["clips"] if c["has_audio"]]
    speakers = sorted({c["speaker"] for c in clips})
    order = np.random.default_rng([seed, 7]).permutation(len(speakers))
    n_test = max(1, round(0.2 * len(speakers))) if len(speakers) >= 3 else 0
    n_val = max(1, round(0.1 * len(speakers))) if len(speakers) >= 5 else 0
    split_of = {speakers[i]: ("test" if k < n_test else "val" if k < n_test + n_val else "train")
                for k, i in enumerate(order)}
    from engine.data.emotions import EMOTIONS

    audio, a_off, coeffs, c_off, rows = [], [0], [], [0], []
    for c in clips:
        with np.load(fitdir / f"{c['clip']}.npz", allow_pickle=False) as z:
            a, co = z["audio"], z["coeffs"]
        n = min(len(co), int(np.ceil(len(a) / 640)))
        audio.append(a[: n * 640])
        coeffs.append(co[:n])
        a_off.append(a_off[-1] + len(audio[-1]))
        c_off.append(c_off[-1] + n)
        rows.append({"source": "real", "clip": c["clip"], "split": split_of[c["speaker"]], "voice": f"real:{c['speaker']}",
                     "style": "real", "emotion": "unknown", "secondary": "neutral", "level": "none", "frames": n,
                     "seconds": n / FPS, "text_id": -1, "shard": "real_00000.npz", "row": len(rows),
                     "license": c["license"], "source_ref": c["source"]})
    k = len(rows)
    np.savez(corpus / "real_00000.npz", audio=np.concatenate(audio) if audio else np.zeros(0, np.int16),
             audio_offsets=np.array(a_off, np.int64), coeffs=np.concatenate(coeffs) if coeffs else
             np.zeros((0, DEFAULT_SPEC.dim), np.float32), coeff_offsets=np.array(c_off, np.int64),
             emotion_weights=np.tile(np.eye(len(EMOTIONS), dtype=np.float32)[0] * 0, (k, 1)),
             emotion_id=np.full(k, -1, np.int8), intensity=np.zeros(k, np.float32), style_id=np.full(k, -1, np.int8),
             text_id=np.full(k, -1, np.int32), uid=np.arange(k, dtype=np.int64) + 10**12)
    card = {"clips": [{"clip": c["clip"], "speaker": c["speaker"], "split": split_of[c["speaker"]],
                       "seconds": c["seconds"], "license": c["license"], "source": c["source"]} for c in clips],
            "speakers": {s: split_of[s] for s in speakers}, "hours": round(sum(r["seconds"] for r in rows) / 3600, 4),
            "median_reprojection_error_iod": fc.get("median_reprojection_error_iod"),
            "licence_caveat": "repo licences cover the repos, not the people shown; research/evaluation use only"}
    return rows, card
