"""Runs a scenario: each target in turn, then the load ramp; collects figures and errors, never loses them.

A failing target (unreachable endpoint, no video, engine error) adds a line to `errors` and keeps
whatever it measured; the other targets still run. The headline figures (`e2e_ms`,
`glass_to_glass_ms`, `fps`, `sessions`) come from the first target that produced them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import platform
import time
from dataclasses import asdict, replace
from typing import Any

import numpy as np

from clients.bench.analyze import analyze
from clients.bench.rtc import EndpointError, run_client, run_own_server
from clients.bench.scenario import Scenario, SpeechPlan, load_clip, speech_plan
from clients.bench.session import Recording, run_engine_session, run_vcam_session
from engine.errors import S2TError

log = logging.getLogger(__name__)


def machine() -> dict[str, Any]:
    import psutil

    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1), "load_before": list(os.getloadavg())}


async def _apertures(rec: Recording) -> np.ndarray | None:
    if not rec.images:
        return None
    from engine.face.tracker import mouth_aperture_series

    ap = await asyncio.to_thread(mouth_aperture_series, rec.images)
    rec.images.clear()  # free the frames once measured
    return ap


async def run_target(target: str, s: Scenario, plan: SpeechPlan, endpoint: str = "", token: str = "",
                     vcam_backend: str = "") -> tuple[dict[str, Any], list[str]]:
    """One target: its figures (first session in full, the others summarised) and its errors."""
    n = s.sessions if target in ("inprocess", "vcam") else 1
    recs = [Recording(f"{target}-{i}", plan, keep_images=s.face_tracking and i == 0) for i in range(n)]
    errors: list[str] = []

    copies: list[Recording] = []

    async def one(rec: Recording) -> None:
        if target == "inprocess":
            await run_engine_session(s, plan, rec)
        elif target == "vcam":
            await run_vcam_session(s, plan, rec, vcam_backend)
        elif target == "webrtc":
            copy = await run_own_server(s, plan, rec)
            if copy is not None:
                copies.append(copy)
        else:
            await run_client(endpoint, s, plan, rec, token=token, marker=s.marker)

    t0 = time.monotonic()
    outcomes = await asyncio.gather(*(one(r) for r in recs), return_exceptions=True)
    for rec, o in zip(recs, outcomes):
        if isinstance(o, (EndpointError, S2TError, OSError)):
            errors.append(f"{target}: {o}")
        elif isinstance(o, BaseException):
            errors.append(f"{target}: unexpected {type(o).__name__}: {o}")
            log.error("%s failed", target, exc_info=o)
    try:
        ap = await _apertures(recs[0])
    except (RuntimeError, ValueError, OSError) as e:
        errors.append(f"{target}: face tracking failed: {e}")
        ap = None
    errors += [f"{target}: {e}" for r in recs for e in r.errors]
    res = analyze(recs[0], s, ap)
    res["target"] = target
    if copies:
        res["delayed_copy"] = self_check(res, analyze(copies[0], s), s.inject_delay_ms)
    res["wall_s"] = time.monotonic() - t0
    if n > 1:
        res["sessions"] = [{k: a.get(k) for k in ("label", "fps", "e2e_ms", "e2e_p95_steady_ms", "delivered_ms")}
                           for a in (analyze(r, s) for r in recs)]
    return res, errors


def self_check(direct: dict[str, Any], delayed: dict[str, Any], injected_ms: float) -> dict[str, Any]:
    """The delayed WHEP copy's figures and how much later than the direct view the harness measured it."""
    gd, gc = direct.get("glass_to_glass", {}), delayed.get("glass_to_glass", {})
    diff = {"xcorr_ms": gc.get("marker_xcorr_ms", math.nan) - gd.get("marker_xcorr_ms", math.nan),
            "marker_p50_ms": (gc.get("marker") or {}).get("p50", math.nan) - (gd.get("marker") or {}).get("p50", math.nan)}
    delayed.pop("series", None)
    return {"injected_ms": injected_ms, "measured_ms": diff, "copy": delayed}


async def run_load(s: Scenario, clip: np.ndarray) -> dict[str, Any]:
    """N concurrent in-process sessions, N = start..max, until a step breaks the budget or the fps floor."""
    ld = s.load
    steps: list[dict[str, Any]] = []
    best = 0
    quiet = replace(s, face_tracking=False, warmup_s=ld.warmup_s)
    plan = speech_plan(quiet, clip, ld.step_s)
    for n in range(ld.start_sessions, ld.max_sessions + 1):
        recs = [Recording(f"load{n}-{i}", plan, keep_images=False) for i in range(n)]
        outcomes = await asyncio.gather(*(run_engine_session(quiet, plan, r) for r in recs), return_exceptions=True)
        failed = [f"{type(o).__name__}: {o}" for o in outcomes if isinstance(o, BaseException)]
        figs = [analyze(r, quiet) for r in recs]
        p95 = max((f.get("e2e_p95_steady_ms", math.nan) for f in figs), default=math.nan)
        fps = min((f.get("fps", 0.0) for f in figs), default=0.0)
        size = min((f.get("render_size_min", s.resolution) for f in figs), default=s.resolution)
        full = min((f.get("full_size_fraction", 0.0) for f in figs), default=0.0)
        holds = not failed and np.isfinite(p95) and p95 <= s.budget_ms and fps >= ld.min_fps_fraction * s.fps \
            and full >= ld.min_full_size_fraction
        step = {"sessions": n, "e2e_p95_ms_worst": p95, "fps_min": fps, "render_size_min": size,
                "full_size_fraction_min": full, "holds": bool(holds),
                "e2e_ms_session_worst": max((f.get("e2e_ms", {}).get("p95", math.nan) for f in figs), default=math.nan),
                "delivered_p95_ms_worst": max((f.get("delivered_ms", {}).get("p95", math.nan) for f in figs), default=math.nan),
                "cpu_pct_mean": figs[0].get("cpu_pct", {}).get("mean", math.nan) if figs else math.nan,
                "errors": failed}
        steps.append(step)
        log.info("load: %d session(s): worst steady p95 %.0f ms, min fps %.1f, full size %.0f%% -> %s", n, p95, fps,
                 full * 100, "holds" if holds else "breaks")
        if not holds:
            break
        best = n
    return {"budget_ms": s.budget_ms, "resolution": s.resolution, "step_s": ld.step_s, "steps": steps,
            "max_sessions_within_budget": best}


def headline(result: dict[str, Any]) -> None:
    """Top-level e2e / glass-to-glass / fps / sessions from the first target that has them."""
    targets = list(result["targets"].values())
    e2e = next((t["e2e_ms"] for t in targets if t.get("e2e_ms")), None)
    result["e2e_ms"] = e2e or {"p50": math.nan, "p95": math.nan, "p99": math.nan}
    g = {"p50": math.nan, "p95": math.nan, "method": None, "target": None}
    found = [(method, t) for method in ("face", "marker") for t in targets
             if (t.get("glass_to_glass", {}).get(method) or {}).get("paired")]
    if found:
        method, t = found[0]
        m = t["glass_to_glass"][method]
        g = {"p50": m["p50"], "p95": m["p95"], "method": method, "target": t["target"]}
    result["glass_to_glass_ms"] = g
    result["fps"] = next((t["fps"] for t in targets if t.get("fps")), 0.0)
    check = next((t["delayed_copy"] for t in targets if t.get("delayed_copy")), None)
    if check:
        result["self_check"] = {"injected_ms": check["injected_ms"], **check["measured_ms"]}
    load = result.get("load")
    result["sessions"] = load["max_sessions_within_budget"] if load else result["scenario"]["sessions"]


async def run_scenario(s: Scenario, endpoint: str = "", token: str = "", vcam_backend: str = "",
                       load: bool | None = None) -> dict[str, Any]:
    """Every target of `s` (or only `endpoint`), then the load ramp when enabled; the full result dict."""
    result: dict[str, Any] = {"scenario": asdict(s), "machine": machine(), "targets": {}, "errors": [],
                              "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if endpoint:
        result["endpoint"] = endpoint
    t0 = time.monotonic()
    try:
        clip = load_clip(s.audio)
        plan = speech_plan(s, clip)
        result["plan"] = {"seconds": plan.seconds, "bursts": [list(b) for b in plan.bursts], "barge_ins": list(plan.barge_ins)}
        for target in (["endpoint"] if endpoint else list(s.targets)):
            log.info("bench %s: %s for %.0f s", s.name, endpoint or target, plan.seconds)
            res, errs = await run_target(target, s, plan, endpoint, token, vcam_backend)
            result["targets"][target] = res
            result["errors"] += errs
        if (s.load.enabled if load is None else load) and not endpoint:
            result["load"] = await run_load(s, clip)
    except S2TError as e:
        result["errors"].append(str(e))
    result["machine"]["load_after"] = list(os.getloadavg())
    result["wall_s"] = time.monotonic() - t0
    headline(result)
    return result

