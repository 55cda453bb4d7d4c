"""`s2t bench`: scenarios, the timing marker, analysis on known delays, bad input, and the real paths.

The runs against the engine use the real runtime (worker processes, ZeroMQ, pacing, our WebRTC server
and aiortc) with the cheap fake stages of runtime_fakes.py, except the smoke CLI run, which uses the
real stages end to end.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clients import cli, g2g
from clients.bench import report
from clients.bench.analyze import analyze
from clients.bench.run import run_scenario
from clients.bench.scenario import load_clip, load_scenario, parse_scenario, speech_plan
from clients.bench.session import CHUNK, Recording
from engine.errors import InputError

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "benchmarks" / "scenarios"


def _fake_engine_toml(tmp: Path) -> str:
    p = tmp / "fake_engine.toml"
    p.write_text('[motion]\nkind = "runtime_fakes:make_motion"\n[render]\nkind = "runtime_fakes:make_render"\n')
    return str(p)


# ---------------------------------------------------------------------- scenarios
def test_committed_scenarios_load_and_smoke_is_short() -> None:
    files = sorted(SCENARIOS.glob("*.toml"))
    assert {"smoke", "default"} <= {f.stem for f in files}
    for f in files:
        s = load_scenario(f)
        assert s.name == f.stem and s.targets
    smoke = load_scenario(SCENARIOS / "smoke.toml")
    assert smoke.duration_s <= 15 and not smoke.load.enabled


def test_scenario_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown config key.*colour"):
        parse_scenario({"colour": "red"})
    with pytest.raises(InputError, match="unknown config key.*in pattern: talk"):
        parse_scenario({"pattern": {"talk": 2.0}})
    with pytest.raises(InputError, match="unknown target"):
        parse_scenario({"targets": ["inprocess", "zoom"]})
    with pytest.raises(InputError, match="duration_s"):
        parse_scenario({"duration_s": 0.1})
    with pytest.raises(InputError, match="expected float"):
        parse_scenario({"budget_ms": "fast"})
    with pytest.raises(InputError, match="not found"):
        load_scenario(tmp_path / "nope.toml")


def test_cli_bad_scenario_one_line_and_json_with_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('duration_s = 5.0\nspeed = "fast"\n')
    out = tmp_path / "out.json"
    assert cli.main(["bench", "--scenario", str(bad), "--json", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown config key" in err[0] and "speed" in err[0], err
    data = json.loads(out.read_text())
    assert "speed" in data["errors"][0] and data["sessions"] == 0


def test_speech_plan_bursts_pauses_and_barge_ins() -> None:
    s = parse_scenario({"duration_s": 20.0, "pattern": {"talk_s": 1.5, "pause_s": 0.8, "barge_in_every": 3,
                                                          "barge_in_after_s": 0.6}})
    plan = speech_plan(s, load_clip(""))
    assert plan.seconds == pytest.approx(20.0, abs=0.01) and plan.pcm.dtype == np.float32
    starts = np.array([a for a, _ in plan.bursts])
    gaps = starts[1:] - np.array([b for _, b in plan.bursts])[:-1]
    assert len(plan.bursts) >= 6 and gaps.min() >= 0.35 - 1e-6
    assert len(plan.barge_ins) >= 2
    assert all(any(abs(b - e) < 1e-6 for _, e in plan.bursts) for b in plan.barge_ins)  # a barge-in ends a burst
    # the measurement core finds (nearly) one onset per burst in the plan's own audio
    t, db = g2g.level_series(plan.pcm, 16000)
    on = g2g.speech_onsets(t, db)
    hits = sum(np.any(np.abs(on - a) < 0.15) for a in starts)
    assert hits >= 0.8 * len(starts), (on, starts)


# ---------------------------------------------------------------------- marker and analysis
def test_marker_stamp_read_and_xcorr() -> None:
    img = np.full((64, 64, 3), 30, np.uint8)
    out = g2g.stamp_marker(img, 200.0)
    assert img[-1, -1, 0] == 30 and g2g.read_marker(out) == pytest.approx(200, abs=0.5)
    assert out[:-16].tolist() == img[:-16].tolist()  # only the corner changes
    assert g2g.marker_value(-100.0) == 0 and g2g.marker_value(0.0) == 255
    assert g2g.block_level_db(np.zeros(640)) == g2g.SILENCE_DB
    rng = np.random.default_rng(0)
    t = np.arange(0, 15, 0.04)
    a = (rng.random(t.size) > 0.5).astype(float)
    lag, r = g2g.lag_by_xcorr(t, a, t + 0.23, a + rng.normal(0, 0.1, t.size))
    assert lag == pytest.approx(230, abs=10) and r > 0.8
    assert math.isnan(g2g.lag_by_xcorr(t, a, t + 50.0, a)[0])  # no overlap: no answer


def _synthetic_recording(delay_s: float, fps: float = 25.0) -> tuple[Recording, Any]:
    """A recording as a perfect endpoint `delay_s` behind would produce: frame k carries audio block k."""
    s = parse_scenario({"duration_s": 12.0, "warmup_s": 1.0})
    plan = speech_plan(s, load_clip(""))
    rec = Recording("synthetic", plan, keep_images=False)
    t0 = 1000.0
    rec.started = t0
    n = plan.pcm.size // CHUNK
    rec.chunk_times = list(t0 + np.arange(n) * 0.02)
    spf = int(16000 / fps)
    for k in range(plan.pcm.size // spf):
        block = plan.pcm[k * spf : (k + 1) * spf]
        rec.add_frame(t0 + k / fps + delay_s, None, float(g2g.marker_value(g2g.block_level_db(block))))
    return rec, s


@pytest.mark.parametrize("delay_ms", [60.0, 180.0])
def test_analysis_recovers_a_known_delay(delay_ms: float) -> None:
    rec, s = _synthetic_recording(delay_ms / 1e3)
    res = analyze(rec, s)
    g = res["glass_to_glass"]
    assert g["marker_xcorr_ms"] == pytest.approx(delay_ms, abs=8), g["marker_xcorr_ms"]
    m = g["marker"]
    assert m["paired"] >= 0.8 * m["onsets"] >= 3
    # frame k carries audio [k/fps, (k+1)/fps) and arrives `delay` after that block starts, so the
    # frame with an onset in it arrives between one frame interval before onset + delay and onset + delay
    assert delay_ms - 40 - 10 <= m["p50"] <= delay_ms + 10, m
    assert res["fps"] == pytest.approx(25.0, abs=0.01) and res["jitter_ms"] < 1e-6
    html = report.html_report(report.json_safe({**_wrap(res, s), "load": None}))
    assert "<img" in html and "http://" not in html and "https://" not in html


def _wrap(target: dict[str, Any], s: Any) -> dict[str, Any]:
    from dataclasses import asdict

    r = {"scenario": asdict(s), "machine": {}, "targets": {"synthetic": {**target, "target": "synthetic"}}, "errors": []}
    from clients.bench.run import headline

    headline(r)
    return r


def test_compare_ratios_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec, s = _synthetic_recording(0.1)
    a = _wrap(analyze(rec, s), s)
    b = json.loads(json.dumps(report.json_safe(a)))
    b["e2e_ms"] = {"p50": 50.0, "p95": 120.0, "p99": 130.0}
    a["e2e_ms"] = {"p50": 40.0, "p95": 100.0, "p99": 110.0}
    rows = {r["figure"]: r for r in report.compare(a, b)}
    assert rows["e2e p95 ms"]["ratio"] == pytest.approx(1.2) and rows["fps"]["ratio"] == pytest.approx(1.0)
    pa, pb = tmp_path / "a.json", tmp_path / "b.json"
    report.write_json(a, pa)
    report.write_json(b, pb)
    assert cli.main(["bench", "--compare", str(pa), str(pb), "--html", str(tmp_path / "c.html")]) == 0
    out = capsys.readouterr().out
    assert "e2e p95 ms" in out and "1.200" in out
    assert "Comparison" in (tmp_path / "c.html").read_text()
    assert cli.main(["bench", "--compare", str(pa), str(tmp_path / "missing.json")]) == 1


# ---------------------------------------------------------------------- bad endpoints
async def test_unreachable_endpoint_keeps_partial_result(tmp_path: Path) -> None:
    s = parse_scenario({"duration_s": 3.0, "face_tracking": False})
    res = await run_scenario(s, endpoint="http://127.0.0.1:9/offer")
    assert len(res["errors"]) == 1 and "cannot reach endpoint" in res["errors"][0]
    assert res["targets"]["endpoint"]["frames"] == 0 and "e2e_ms" in res and res["fps"] == 0.0
    report.write_json(res, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["errors"] == res["errors"]
    res = await run_scenario(s, endpoint="rtsp://example/stream")
    assert "unsupported endpoint" in res["errors"][0]


async def test_endpoint_that_sends_no_video(monkeypatch: pytest.MonkeyPatch) -> None:
    """An aiortc-style endpoint that answers the offer but never sends a video frame."""
    from aiohttp import web
    from aiortc import RTCPeerConnection, RTCSessionDescription

    from clients.bench import rtc

    monkeypatch.setattr(rtc, "FIRST_FRAME_TIMEOUT_S", 3.0)
    pcs: list[RTCPeerConnection] = []

    async def offer(request: web.Request) -> web.Response:
        body = await request.json()
        pc = RTCPeerConnection()
        pcs.append(pc)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())  # no tracks of its own: no video
        return web.json_response({"sdp": pc.localDescription.sdp, "type": "answer"})

    app = web.Application()
    app.router.add_post("/offer", offer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        s = parse_scenario({"duration_s": 3.0, "face_tracking": False})
        res = await run_scenario(s, endpoint=f"http://127.0.0.1:{port}/offer")
    finally:
        for pc in pcs:
            await pc.close()
        await runner.cleanup()
    assert len(res["errors"]) == 1 and "sent no video" in res["errors"][0], res["errors"]
    t = res["targets"]["endpoint"]
    assert t["frames"] == 0 and t["audio_sent_s"] > 1.0  # what was measured (audio went out) is kept


# ---------------------------------------------------------------------- the real runtime
async def test_paths_and_injected_delay_measured(tmp_path: Path) -> None:
    """In-process, virtual camera and our WebRTC server (marker on) all measured; the same WebRTC session
    watched through a WHEP copy delayed by 100 ms measures 100 ms later; a short load ramp."""
    s = parse_scenario({"duration_s": 7.0, "warmup_s": 1.5, "tail_s": 0.5, "face_tracking": False,
                        "engine_config": _fake_engine_toml(tmp_path), "standby": False, "inject_delay_ms": 100.0,
                        "targets": ["inprocess", "vcam", "webrtc"],
                        "pattern": {"talk_s": 1.2, "pause_s": 0.8, "jitter": 0.2, "barge_in_every": 3},
                        "load": {"enabled": True, "max_sessions": 2, "step_s": 3.5, "warmup_s": 1.0}})
    res = await run_scenario(s)
    assert res["errors"] == [], res["errors"]
    for name in ("inprocess", "vcam", "webrtc"):
        t = res["targets"][name]
        assert t["fps"] > 20 and t["frames"] > 100, (name, t["fps"], t["frames"])
        assert t["e2e_ms"]["p95"] > 0 and t["barge_ins"] >= 1
        stop = t["glass_to_glass"]["barge_in_stop_ms"]
        assert stop["stopped"] >= 1 and 0 <= stop["p50"] < 1000, (name, stop)
        assert t["glass_to_glass"]["marker"]["paired"] >= 2, (name, t["glass_to_glass"]["marker"])
        assert t["cpu_pct"]["mean"] > 0 and t["rss_mb"]["max"] > 50
    for key in ("e2e_ms", "glass_to_glass_ms", "fps", "sessions"):
        assert key in res
    assert res["glass_to_glass_ms"]["method"] == "marker"
    # our server: the legs (uplink, engine, downlink) add up to the whole glass-to-glass lag
    g = res["targets"]["webrtc"]["glass_to_glass"]
    assert sum(g["legs_ms"].values()) == pytest.approx(g["marker_xcorr_ms"], abs=25), g
    # the self-check: the delayed copy of the same session measures 100 ms later
    check = res["self_check"]
    print(f"injected 100 ms measured as +{check['xcorr_ms']:.1f} ms (xcorr), +{check['marker_p50_ms']:.1f} ms (onsets p50)")
    assert check["xcorr_ms"] == pytest.approx(100, abs=20), check
    # the onset measure differences two medians of a few marker onsets, each read at a frame's arrival: on a
    # loaded 2-core machine one side slips a frame (40 ms) now and then (139 ms in one of session 11's two
    # clean-clone runs), so it is held to one frame interval plus 10 ms; the sub-frame cross-correlation above is
    # the precise one
    assert check["marker_p50_ms"] == pytest.approx(100, abs=50), check
    assert res["targets"]["webrtc"]["delayed_copy"]["copy"]["fps"] > 20
    load = res["load"]
    assert [st["sessions"] for st in load["steps"]][0] == 1 and load["max_sessions_within_budget"] >= 1
    assert res["sessions"] == load["max_sessions_within_budget"]


def test_smoke_cli_real_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, page = tmp_path / "smoke.json", tmp_path / "smoke.html"
    code = cli.main(["-q", "bench", "--scenario", str(SCENARIOS / "smoke.toml"), "--duration", "7",
                     "--json", str(out), "--html", str(page)])
    data = json.loads(out.read_text())
    assert code == 0, data["errors"]
    assert set(data["e2e_ms"]) >= {"p50", "p95", "p99"} and set(data["glass_to_glass_ms"]) >= {"p50", "p95"}
    assert data["fps"] > 20 and data["sessions"] == 1 and data["e2e_ms"]["p95"] > 0
    face = data["targets"]["inprocess"]["glass_to_glass"]["face"]
    assert face["paired"] >= 2 and 0 < face["p50"] < 1000, face  # the tracker sees the mouth open after speech
    text = page.read_text()
    assert text.count("data:image/png;base64,") >= 3 and "src=\"http" not in text
    assert "glass-to-glass" in capsys.readouterr().out


async def test_sampler_reads_gpu_when_nvidia_smi_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CPU/RSS always; GPU utilisation and memory through nvidia-smi's CSV when it is on PATH."""
    from clients.bench.session import Sampler

    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho '37, 1234'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    rec, _ = _synthetic_recording(0.1)
    sampler = Sampler(rec, lambda: {"fps": 25.0})
    assert await sampler._gpu() == {"gpu_pct": 37.0, "gpu_mem_mb": 1234.0}
    await sampler.sample()
    assert rec.system[0]["gpu_pct"] == 37.0 and rec.system[0]["rss_mb"] > 10 and rec.stats[0]["fps"] == 25.0
