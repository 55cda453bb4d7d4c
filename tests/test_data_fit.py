"""`s2t data fit`: faceless frames, silent audio, manifest licences, speakers, 25 fps resampling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.data.fit import _resample, fit_directory, fit_video, frame_times, manifest_rows, read_frames_timed, speaker_of
from engine.errors import NoFaceError


def _write_video(path: Path, frames: list[np.ndarray], fps: int = 25, audio: np.ndarray | None = None) -> None:
    import av

    with av.open(str(path), "w") as c:
        vs = c.add_stream("mpeg4", rate=fps)
        vs.width, vs.height, vs.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        vs.bit_rate = 4_000_000
        as_ = c.add_stream("aac", rate=16000, layout="mono") if audio is not None else None
        for f in frames:
            for p in vs.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        if as_ is not None and audio is not None:
            n = as_.codec_context.frame_size or 1024
            for i in range(0, len(audio) - n + 1, n):
                fr = av.AudioFrame.from_ndarray(audio[None, i : i + n].astype(np.float32), format="fltp", layout="mono")
                fr.sample_rate, fr.pts = 16000, i
                for p in as_.encode(fr):
                    c.mux(p)
            for p in as_.encode():
                c.mux(p)


def test_faceless_video_raises_and_is_reported(tmp_path: Path) -> None:
    gray = [np.full((128, 128, 3), 120, np.uint8) for _ in range(4)]
    _write_video(tmp_path / "blank.mp4", gray)
    with pytest.raises(NoFaceError):
        fit_video(tmp_path / "blank.mp4")
    card = fit_directory(tmp_path, tmp_path / "out")
    assert card["clips"] == [] and card["failed"][0]["file"] == "blank.mp4"
    assert json.loads((tmp_path / "out" / "card.json").read_text())["median_reprojection_error_iod"] is None


def test_partial_face_video_with_silent_audio(shared_data: Path, tmp_path: Path) -> None:
    from engine.face.image import load_image

    img = load_image(shared_data / "portraits" / "photo_anne_aligned.png")
    img = np.ascontiguousarray(img[: img.shape[0] // 2 * 2, : img.shape[1] // 2 * 2])
    blank = np.full_like(img, 90)
    frames = [img] * 4 + [blank] * 2 + [img] * 2
    vdir = tmp_path / "videos"
    vdir.mkdir()
    _write_video(vdir / "anne.mp4", frames, audio=np.zeros(16000 * len(frames) // 25 + 4096, np.float32))
    card = fit_directory(vdir, tmp_path / "out")
    (clip,) = card["clips"]
    assert clip["faceless_frames"] == 2 and clip["has_audio"] is False  # silent track: coefficients only
    assert clip["median_error_iod"] < 0.05
    with np.load(tmp_path / "out" / "anne.npz", allow_pickle=False) as z:
        assert z["coeffs"].shape == (8, 34) and np.isfinite(z["coeffs"]).all()
        assert z["valid"].tolist() == [True] * 4 + [False] * 2 + [True] * 2
        assert "audio" not in z.files
        ap, mesh = z["aperture"], z["mesh_aperture"]
    assert ap.shape == mesh.shape == (8,)
    assert np.isnan(ap[4:6]).all() and np.isfinite(ap[[0, 1, 2, 3, 6, 7]]).all()  # NaN where no face was tracked
    assert 0.0 <= np.nanmin(ap) and np.nanmax(ap) < 0.5 and np.isfinite(mesh).all()  # a still face: lip gap < IOD/2
    assert abs(float(np.nanmedian(ap)) - float(np.median(mesh[:4]))) < 0.05  # the fitted mesh reproduces the gap


def test_apertures_is_the_inner_lip_gap_over_the_inter_ocular_distance() -> None:
    from engine.face.tracker import mouth_aperture, mouth_apertures

    rng = np.random.default_rng(0)
    lms = rng.random((5, 478, 3)) * 100
    lms[:, 263, :2] = lms[:, 33, :2] + [[40.0, 0.0]]  # IOD 40 px
    lms[:, 14, :2] = lms[:, 13, :2] + np.array([0.0, 4.0]) * np.arange(1, 6)[:, None]  # gap 4, 8, .. 20 px
    lms[2] = np.nan
    got = mouth_apertures(lms)
    np.testing.assert_allclose(got[[0, 1, 3, 4]], [0.1, 0.2, 0.4, 0.5], atol=1e-9)
    assert np.isnan(got[2])
    np.testing.assert_allclose(got[0], mouth_aperture(lms[0]), atol=1e-12)


def test_resample_to_25fps_interpolates_over_gaps() -> None:
    c = np.arange(6, dtype=np.float32)[:, None].repeat(34, 1)
    valid = np.array([True, True, False, False, True, True])
    out, v = _resample(c, valid, (np.arange(6) + 0.5) / 30.0, 5)
    assert out.shape == (5, 34) and v.dtype == bool
    assert np.all(np.diff(out[:, 0]) > 0)  # monotone ramp, gap bridged linearly
    assert not v.all() and v[0]


def test_variable_frame_rate_uses_pts(tmp_path: Path) -> None:
    """Frames sit at their presentation times (VFR steps, late start), not at i/fps."""
    import av
    from fractions import Fraction

    pts = [1, 2, 3, 5, 6, 8, 9]  # in 1/30 s: steps of one and two frame intervals, first frame at 1/30 s
    with av.open(str(tmp_path / "vfr.mp4"), "w") as c:
        vs = c.add_stream("mpeg4", rate=30)
        vs.width = vs.height = 64
        vs.pix_fmt, vs.time_base = "yuv420p", Fraction(1, 30)
        for i, t in enumerate(pts):
            f = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 20 * i, np.uint8), format="rgb24")
            f.pts, f.time_base = t, Fraction(1, 30)
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
    frames, times, _fps = read_frames_timed(tmp_path / "vfr.mp4")
    assert len(frames) == 7
    np.testing.assert_allclose(times * 30, [1.5, 2.5, 4.0, 5.5, 7.0, 8.5, 9.5], atol=0.03)  # centres, within 1 ms
    # a ramp sampled at those times resamples to the true ramp on the 25 fps grid (i/fps spacing would not)
    ramp = times[:, None].repeat(34, 1).astype(np.float32)
    out, _ = _resample(ramp, np.ones(7, bool), times, 7)
    t_out = (np.arange(7) + 0.5) / 25
    inside = (t_out >= times[0]) & (t_out <= times[-1])
    np.testing.assert_allclose(out[inside, 0], t_out[inside], atol=1e-4)
    np.testing.assert_allclose(frame_times(np.array([0.0, 0.1, 0.1]), 10.0), [0.05, 0.15, 0.25])  # bad pts: i/fps


def test_manifest_licences_and_speakers(shared_data: Path) -> None:
    rows = manifest_rows(shared_data / "MANIFEST.md")
    talking = [k for k, r in rows.items() if r["path"].startswith("talking/")]
    assert len(talking) == len(list((shared_data / "talking").glob("*.mp4")))
    assert rows["styletalk_Obama_clip1.mp4"]["license"] == "MIT"
    a = speaker_of("videoretalking_face3_AOC", rows["videoretalking_face3_AOC.mp4"]["notes"])
    b = speaker_of("sadtalker_WDA_AlexandriaOcasioCortez_000",
                   rows["sadtalker_WDA_AlexandriaOcasioCortez_000.mp4"]["notes"])
    assert a == b == "alexandria ocasio-cortez"
    assert speaker_of("W009_front_sad_level3_001", "source video of the .mat") == "W009"


def test_merge_real_splits_by_speaker(tmp_path: Path) -> None:
    from engine.data.fit import merge_real

    fit, corpus = tmp_path / "fit", tmp_path / "corpus"
    fit.mkdir()
    corpus.mkdir()
    clips = []
    rng = np.random.default_rng(0)
    for i, spk in enumerate(["ann", "ann", "bob", "cat", "dan", "eve"]):
        name = f"clip{i}"
        np.savez(fit / f"{name}.npz", coeffs=rng.random((50, 34), dtype=np.float32),
                 audio=(rng.standard_normal(32000) * 3000).astype(np.int16))
        clips.append({"clip": name, "has_audio": True, "speaker": spk, "seconds": 2.0, "license": "MIT",
                      "source": "x"})
    (fit / "card.json").write_text(json.dumps({"clips": clips, "median_reprojection_error_iod": 0.01}))
    rows, card = merge_real(fit, corpus, seed=0)
    assert len(rows) == 6 and card["clips"][0]["license"] == "MIT"
    by_spk: dict[str, set[str]] = {}
    for r in rows:
        by_spk.setdefault(r["voice"], set()).add(r["split"])
    assert all(len(s) == 1 for s in by_spk.values())  # a speaker never straddles splits
    assert {r["split"] for r in rows} >= {"train", "test"}
    with np.load(corpus / "real_00000.npz", allow_pickle=False) as z:
        assert z["coeff_offsets"][-1] == sum(r["frames"] for r in rows) == len(z["coeffs"])
        assert z["audio_offsets"][-1] == len(z["audio"]) == 640 * len(z["coeffs"])
