"""`s2t bench`: latency benchmark scenarios against our engine, our server, the virtual camera or any endpoint.

`s2t bench --scenario benchmarks/scenarios/smoke.toml --json out.json [--html out.html] [--endpoint URL]`
runs a scenario and writes JSON (with an "errors" list; partial results are kept), an optional
self-contained HTML report and a one-screen summary; `s2t bench --compare A.json B.json` puts two
runs side by side. The modules behind it: scenario (TOML), session/rtc (drivers), analyze, report.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from typing import Any

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "bench", help="latency benchmark: e2e, glass-to-glass, fps, load (JSON + HTML report)",
        description="Run a benchmark scenario (TOML) against the engine in-process, our WebRTC server, the "
                    "virtual-camera path, or an external WebRTC endpoint; or compare two result files.",
    )
    p.add_argument("--scenario", help="scenario TOML (see benchmarks/scenarios/ and docs/bench.md)")
    p.add_argument("--json", dest="json_out", help="write the result JSON here")
    p.add_argument("--html", dest="html_out", help="write the self-contained HTML report here")
    p.add_argument("--endpoint", default="",
                   help="measure this endpoint instead: http(s)://host/offer (aiortc-style JSON) or whep+http(s)://…")
    p.add_argument("--token", default="", help="bearer token for the endpoint")
    p.add_argument("--endpoint-marker", action="store_true",
                   help="the endpoint stamps our timing marker (e.g. `s2t serve --timing-marker`): read it")
    p.add_argument("--targets", default="", help="comma-separated subset: inprocess,webrtc,vcam (overrides the scenario)")
    p.add_argument("--duration", type=float, help="override the scenario's duration_s")
    p.add_argument("--no-load", action="store_true", help="skip the scenario's load ramp")
    p.add_argument("--inject-delay-ms", type=float, help="self-check: also watch our server's session through a WHEP copy delayed this much")
    p.add_argument("--vcam-backend", default="", help="pyvirtualcam backend for the vcam target (default: a null camera)")
    p.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"), help="compare two result files")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from clients.bench import report
    from engine.errors import InputError

    if args.compare:
        a, b = (report.read_json(x) for x in args.compare)
        rows = report.compare(a, b)
        sys.stdout.write(report.compare_text(rows, args.compare[0], args.compare[1]) + "\n")
        if args.json_out:
            report.write_json({"a": args.compare[0], "b": args.compare[1], "rows": rows}, args.json_out)
        if args.html_out:
            report.write_html(b, args.html_out, rows)
        return 0
    if not args.scenario:
        raise InputError("give --scenario FILE.toml (or --compare A.json B.json)")
    from clients.bench.run import run_scenario
    from clients.bench.scenario import load_scenario

    try:
        s = load_scenario(args.scenario)
        if args.targets:
            from clients.bench.scenario import parse_scenario

            s = parse_scenario({**_as_dict(s), "targets": [t.strip() for t in args.targets.split(",") if t.strip()]},
                               args.scenario)
        if args.duration:
            s = replace(s, duration_s=float(args.duration))
        if args.inject_delay_ms is not None:
            s = replace(s, inject_delay_ms=float(args.inject_delay_ms))
    except InputError as e:
        if args.json_out:  # keep a record of the failure where the result was expected
            report.write_json({"errors": [str(e)], "e2e_ms": {}, "glass_to_glass_ms": {}, "fps": None, "sessions": 0},
                              args.json_out)
        raise
    if args.endpoint:
        s = replace(s, marker=args.endpoint_marker)
    result = asyncio.run(run_scenario(s, endpoint=args.endpoint, token=args.token, vcam_backend=args.vcam_backend,
                                      load=False if args.no_load else None))
    if args.json_out:
        report.write_json(result, args.json_out)
    if args.html_out:
        report.write_html(result, args.html_out)
    sys.stdout.write(report.terminal_summary(report.json_safe(result)) + "\n")
    if result["errors"]:
        sys.stderr.write(f"s2t bench: {len(result['errors'])} error(s); partial results kept"
                         f"{' in ' + args.json_out if args.json_out else ''}: {result['errors'][0]}\n")
        return 1
    return 0


def _as_dict(s: Any) -> dict[str, Any]:
    from dataclasses import asdict

    d = asdict(s)
    d["targets"] = list(d["targets"])
    return d
