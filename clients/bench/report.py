"""Bench output: JSON on disk, a one-screen terminal summary, a self-contained HTML report, run comparisons.

The HTML has no external resources: plots are matplotlib (Agg) PNGs inlined as base64.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

from engine.errors import InputError


def json_safe(x: Any) -> Any:
    """JSON-safe copy: NaN/inf -> None, numpy scalars -> Python numbers."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def write_json(result: dict[str, Any], path: str | Path) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(json_safe(result), indent=1))


def read_json(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"bench result not found: {p}")
    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{p} is not a bench JSON result: {e}") from None
    if not isinstance(data, dict) or "e2e_ms" not in data:
        raise InputError(f"{p} is not a bench JSON result (no e2e_ms)")
    return data


def _f(v: Any, nd: int = 0, unit: str = "") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, (int, float)):
        return f"{v:.{nd}f}{unit}"
    return str(v)


def _g(t: dict[str, Any], method: str, key: str) -> Any:
    return (t.get("glass_to_glass", {}).get(method) or {}).get(key)


def target_rows(result: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(figure, value per target) rows shared by the terminal and HTML tables."""
    ts = list(result.get("targets", {}).values())
    rows: list[tuple[str, list[str]]] = [
        ("e2e p50/p95/p99 ms", [f"{_f(t.get('e2e_ms', {}).get('p50'))}/{_f(t.get('e2e_ms', {}).get('p95'))}/"
                                f"{_f(t.get('e2e_ms', {}).get('p99'))}" for t in ts]),
        ("e2e p95 steady ms", [_f(t.get("e2e_p95_steady_ms")) for t in ts]),
        ("g2g face p50/p95 ms", [f"{_f(_g(t, 'face', 'p50'))}/{_f(_g(t, 'face', 'p95'))} "
                                 f"({_f(_g(t, 'face', 'paired'))}/{_f(_g(t, 'face', 'onsets'))})" for t in ts]),
        ("g2g marker p50/p95 ms", [f"{_f(_g(t, 'marker', 'p50'))}/{_f(_g(t, 'marker', 'p95'))} "
                                   f"({_f(_g(t, 'marker', 'paired'))}/{_f(_g(t, 'marker', 'onsets'))})" for t in ts]),
        ("g2g marker xcorr ms", [_f(t.get("glass_to_glass", {}).get("marker_xcorr_ms")) for t in ts]),
        ("g2g legs up/engine/down ms", ["/".join(_f((t.get("glass_to_glass", {}).get("legs_ms") or {}).get(k))
                                                 for k in ("uplink_ms", "engine_ms", "downlink_ms")) for t in ts]),
        ("delayed copy: injected/measured ms", [
            f"{_f(t['delayed_copy']['injected_ms'])}/+{_f(t['delayed_copy']['measured_ms']['xcorr_ms'], 1)}"
            if t.get("delayed_copy") else "-" for t in ts]),
        ("barge-in -> quiet p50/p95 ms", [
            f"{_f((t.get('glass_to_glass', {}).get('barge_in_stop_ms') or {}).get('p50'))}/"
            f"{_f((t.get('glass_to_glass', {}).get('barge_in_stop_ms') or {}).get('p95'))}" for t in ts]),
        ("delivered p50/p95 ms", [f"{_f(t.get('delivered_ms', {}).get('p50'))}/{_f(t.get('delivered_ms', {}).get('p95'))}"
                                  for t in ts]),
        ("fps / jitter ms", [f"{_f(t.get('fps'), 1)} / {_f(t.get('jitter_ms'), 1)}" for t in ts]),
        ("dropped / repeated", [f"{_f(t.get('dropped'))} / {_f(t.get('repeated'))}" for t in ts]),
        ("A/V offset ms", [_f(t.get("av_offset_ms"), 1) for t in ts]),
        ("ladder changes / final", [f"{_f(t.get('ladder_changes'))} / {_f(t.get('level_final'))}" for t in ts]),
        ("CPU % mean/max", [f"{_f(t.get('cpu_pct', {}).get('mean'))}/{_f(t.get('cpu_pct', {}).get('max'))}" for t in ts]),
        ("RSS MB max", [_f(t.get("rss_mb", {}).get("max")) for t in ts]),
    ]
    if any("gpu" in t for t in ts):
        rows.append(("GPU % / MB", [f"{_f(t.get('gpu', {}).get('util_pct_mean'))} / {_f(t.get('gpu', {}).get('mem_mb_max'))}"
                                    for t in ts]))
    stages = sorted({k for t in ts for k in t.get("stages_ms", {})})
    for st in stages:
        rows.append((f"stage {st} p50/p95 ms", [f"{_f(t.get('stages_ms', {}).get(st, {}).get('p50'), 1)}/"
                                                f"{_f(t.get('stages_ms', {}).get(st, {}).get('p95'), 1)}" for t in ts]))
    return rows


def terminal_summary(result: dict[str, Any]) -> str:
    """One screen: headline, per-target table, load ramp, errors."""
    sc = result.get("scenario", {})
    g = result.get("glass_to_glass_ms", {})
    e = result.get("e2e_ms", {})
    lines = [f"s2t bench: {sc.get('name')} ({result.get('endpoint') or ', '.join(result.get('targets', {}))}), "
             f"{_f(result.get('wall_s'))} s, load {_f(result.get('machine', {}).get('load_before', [None])[0], 1)}",
             f"  e2e p50 {_f(e.get('p50'))} / p95 {_f(e.get('p95'))} / p99 {_f(e.get('p99'))} ms   "
             f"glass-to-glass p50 {_f(g.get('p50'))} / p95 {_f(g.get('p95'))} ms ({g.get('method')}, {g.get('target')})   "
             f"fps {_f(result.get('fps'), 1)}   sessions {result.get('sessions')}"]
    names = list(result.get("targets", {}))
    if names:
        w = max(24, *(len(r[0]) for r in target_rows(result)))
        lines.append("  " + " " * w + "".join(f"{n:>22}" for n in names))
        for label, vals in target_rows(result):
            lines.append(f"  {label:<{w}}" + "".join(f"{v:>22}" for v in vals))
    load = result.get("load")
    if load:
        steps = ", ".join(f"{s['sessions']}:{_f(s['e2e_p95_ms_worst'])}ms/{_f(s['fps_min'], 1)}fps{'' if s['holds'] else ' X'}"
                          for s in load["steps"])
        lines.append(f"  load ({load['resolution']}px, budget {_f(load['budget_ms'])} ms): {steps} -> "
                     f"max {load['max_sessions_within_budget']} session(s)")
    chk = result.get("self_check")
    if chk:
        lines.append(f"  self-check: video delayed by {_f(chk['injected_ms'])} ms measured +{_f(chk['xcorr_ms'], 1)} ms "
                     f"(marker xcorr), +{_f(chk['marker_p50_ms'], 1)} ms (marker onset p50)")
    for err in result.get("errors", []):
        lines.append(f"  ERROR {err}")
    return "\n".join(lines)


# ---------------------------------------------------------------------- comparison
COMPARE_KEYS = (("e2e p50 ms", ("e2e_ms", "p50")), ("e2e p95 ms", ("e2e_ms", "p95")), ("e2e p99 ms", ("e2e_ms", "p99")),
                ("g2g p50 ms", ("glass_to_glass_ms", "p50")), ("g2g p95 ms", ("glass_to_glass_ms", "p95")),
                ("fps", ("fps",)), ("sessions", ("sessions",)))


def _dig(d: dict[str, Any], path: tuple[str, ...]) -> Any:
    for k in path:
        d = d.get(k) if isinstance(d, dict) else None  # type: ignore[assignment]
    return d


def compare(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Headline figures of two runs side by side with b/a ratios (per target too, where both have it)."""
    rows = []
    for label, path in COMPARE_KEYS:
        rows.append(_row(label, _dig(a, path), _dig(b, path)))
    for name in [n for n in a.get("targets", {}) if n in b.get("targets", {})]:
        ta, tb = a["targets"][name], b["targets"][name]
        for label, path in (("e2e p95 ms", ("e2e_ms", "p95")), ("g2g face p50 ms", ("glass_to_glass", "face", "p50")),
                            ("g2g marker p50 ms", ("glass_to_glass", "marker", "p50")),
                            ("g2g marker xcorr ms", ("glass_to_glass", "marker_xcorr_ms")), ("fps", ("fps",)),
                            ("jitter ms", ("jitter_ms",)), ("CPU % mean", ("cpu_pct", "mean"))):
            rows.append(_row(f"{name}: {label}", _dig(ta, path), _dig(tb, path)))
    return rows


def _row(label: str, va: Any, vb: Any) -> dict[str, Any]:
    ok = isinstance(va, (int, float)) and isinstance(vb, (int, float)) and va not in (0, None) and vb is not None
    ratio = float(vb) / float(va) if ok and math.isfinite(va) and math.isfinite(vb) else None
    return {"figure": label, "a": va, "b": vb, "ratio": ratio}


def compare_text(rows: list[dict[str, Any]], name_a: str, name_b: str) -> str:
    w = max(len(r["figure"]) for r in rows)
    out = [f"{'':<{w}} {name_a[-20:]:>20} {name_b[-20:]:>20} {'b/a':>7}"]
    for r in rows:
        out.append(f"{r['figure']:<{w}} {_f(r['a'], 1):>20} {_f(r['b'], 1):>20} {_f(r['ratio'], 3):>7}")
    return "\n".join(out)


# ---------------------------------------------------------------------- HTML
def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return '<img alt="plot" src="data:image/png;base64,' + base64.b64encode(buf.getvalue()).decode() + '">'


def _arr(xs: list[Any]) -> Any:
    import numpy as np

    return np.asarray([math.nan if v is None else v for v in xs], np.float64)


def _timeline_plot(t: dict[str, Any]) -> str:
    import matplotlib.pyplot as plt

    s = t.get("series") or {}
    fig, axes = plt.subplots(3, 1, figsize=(11, 6.5), sharex=True)
    a = s.get("audio") or {}
    axes[0].plot(_arr(a.get("t", [])), _arr(a.get("db", [])), lw=0.6, color="tab:blue")
    axes[0].set_ylabel("sent audio dB")
    fr = s.get("frames") or {}
    axes[1].plot(_arr(fr.get("t", [])), _arr(fr.get("marker", [])), lw=0.8, color="tab:orange", label="marker")
    axes[1].set_ylabel("marker level")
    ap = s.get("aperture")
    if ap:
        axes[2].plot(_arr(ap["t"]), _arr(ap["v"]), lw=0.8, color="tab:green")
    axes[2].set_ylabel("mouth aperture")
    for ax in axes:
        ax.grid(alpha=0.3)
        for x in s.get("onsets") or []:
            ax.axvline(x, color="k", lw=0.5, ls=":")
    axes[2].set_xlabel("session time (s)")
    fig.suptitle(f"{t.get('target')}: sent speech, received marker and mouth (dotted: speech onsets)")
    fig.tight_layout()
    return _png(fig)


def _per_second_plot(result: dict[str, Any]) -> str:
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.5))
    for name, t in result.get("targets", {}).items():
        ps = (t.get("series") or {}).get("per_second") or []
        if ps:
            ax1.plot([p["t"] for p in ps], _arr([p["e2e_p95"] for p in ps]), ".-", label=name)
            ax2.plot([p["t"] for p in ps], _arr([p["fps"] for p in ps]), ".-", label=name)
    ax1.axhline(result.get("scenario", {}).get("budget_ms", math.nan), color="r", ls="--", lw=1, label="budget")
    ax1.set_title("end-to-end p95 per second (ms)")
    ax2.set_title("engine fps per second")
    for ax in (ax1, ax2):
        ax.set_xlabel("s")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _g2g_plot(result: dict[str, Any]) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 3.2))
    labels, data = [], []
    for name, t in result.get("targets", {}).items():
        for method in ("face", "marker"):
            lat = [v for v in ((t.get("glass_to_glass", {}).get(method) or {}).get("latencies_ms") or []) if v is not None]
            if lat:
                labels.append(f"{name}\n{method}")
                data.append(lat)
    if data:
        ax.boxplot(data, orientation="horizontal", tick_labels=labels, showfliers=True)
    ax.set_xlabel("glass-to-glass latency per speech onset (ms)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def _load_plot(load: dict[str, Any]) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    st = load["steps"]
    ax.plot([s["sessions"] for s in st], _arr([s["e2e_p95_ms_worst"] for s in st]), "o-", label="worst steady e2e p95")
    ax.plot([s["sessions"] for s in st], _arr([s["delivered_p95_ms_worst"] for s in st]), "s--", label="worst delivered p95")
    ax.axhline(load["budget_ms"], color="r", ls="--", lw=1, label="budget")
    ax.set_xlabel("concurrent sessions")
    ax.set_ylabel("ms")
    ax.set_title(f"load ramp at {load['resolution']}px: max {load['max_sessions_within_budget']} session(s) in budget")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _table(header: list[str], rows: list[list[str]]) -> str:
    h = "".join(f"<th>{html.escape(c)}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def html_report(result: dict[str, Any], compare_rows: list[dict[str, Any]] | None = None) -> str:
    """The whole report as one self-contained HTML page."""
    import matplotlib

    matplotlib.use("Agg")
    sc = result.get("scenario", {})
    e, g = result.get("e2e_ms", {}), result.get("glass_to_glass_ms", {})
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>s2t bench: " + html.escape(str(sc.get("name"))) + "</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
        ".err{color:#b00}img{max-width:100%}</style></head><body>",
        f"<h1>s2t bench: {html.escape(str(sc.get('name')))}</h1><p>{html.escape(str(sc.get('description', '')))}</p>",
        _table(["headline", "value"], [
            ["end-to-end p50 / p95 / p99 (ms)", f"{_f(e.get('p50'))} / {_f(e.get('p95'))} / {_f(e.get('p99'))}"],
            ["glass-to-glass p50 / p95 (ms)", f"{_f(g.get('p50'))} / {_f(g.get('p95'))} ({g.get('method')}, {g.get('target')})"],
            ["fps", _f(result.get("fps"), 1)], ["sessions", str(result.get("sessions"))],
            *([["self-check: delayed copy injected / measured (ms)",
                f"{_f(result['self_check']['injected_ms'])} / +{_f(result['self_check']['xcorr_ms'], 1)} (xcorr), "
                f"+{_f(result['self_check']['marker_p50_ms'], 1)} (onset p50)"]] if result.get("self_check") else []),
            ["started (UTC)", str(result.get("started_utc"))], ["wall time (s)", _f(result.get("wall_s"))],
            ["machine", f"{result.get('machine', {}).get('platform')}, {result.get('machine', {}).get('cpus')} CPUs, "
                        f"load {result.get('machine', {}).get('load_before')} -> {result.get('machine', {}).get('load_after')}"],
            ["scenario", f"{_f(sc.get('duration_s'))} s, {sc.get('resolution')} px, budget {_f(sc.get('budget_ms'))} ms, "
                         f"{sc.get('sessions')} session(s), targets {sc.get('targets')}"],
        ]),
    ]
    if result.get("errors"):
        parts.append("<h2>Errors</h2><ul class='err'>" + "".join(f"<li>{html.escape(x)}</li>" for x in result["errors"]) + "</ul>")
    names = list(result.get("targets", {}))
    if names:
        parts.append("<h2>Per target</h2>" + _table(["figure", *names], [[lbl, *vals] for lbl, vals in target_rows(result)]))
        parts.append(_per_second_plot(result))
        parts.append("<h2>Glass to glass</h2><p>Audio onset (as sent) to the first mouth opening the face tracker finds "
                     "on the received frames (face), and to the first rise of the timing marker (marker).</p>")
        parts.append(_g2g_plot(result))
        for t in result["targets"].values():
            parts.append(_timeline_plot(t))
    load = result.get("load")
    if load:
        parts.append("<h2>Load ramp</h2>" + _table(
            ["sessions", "worst steady e2e p95 ms", "worst session e2e p95 ms", "worst delivered p95 ms", "min fps",
             "time at full size", "min render px", "holds"],
            [[str(s["sessions"]), _f(s["e2e_p95_ms_worst"]), _f(s["e2e_ms_session_worst"]), _f(s["delivered_p95_ms_worst"]),
              _f(s["fps_min"], 1), f"{_f(100 * (s.get('full_size_fraction_min') or 0))}%", str(s["render_size_min"]),
              "yes" if s["holds"] else "no"] for s in load["steps"]]))
        parts.append(_load_plot(load))
    if compare_rows:
        parts.append("<h2>Comparison</h2>" + _table(["figure", "A", "B", "B/A"],
                                                    [[r["figure"], _f(r["a"], 1), _f(r["b"], 1), _f(r["ratio"], 3)]
                                                     for r in compare_rows]))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(result: dict[str, Any], path: str | Path, compare_rows: list[dict[str, Any]] | None = None) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(html_report(json_safe(result), compare_rows))
