"""`s2t probe AUDIO`: a quick check of a recording — format, duration, rate, channels, speech fraction."""

from __future__ import annotations

import argparse
import json
import logging
import sys

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("probe", help="check an audio file: format, duration, sample rate, speech fraction")
    p.add_argument("audio", help="audio or video file (wav, mp3, ogg, flac, m4a, mp4)")
    p.add_argument("--json", action="store_true", help="print the facts as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.audio.ingest import decode_audio, probe_audio
    from engine.audio.vad import vad_flags

    info = probe_audio(args.audio)
    samples = decode_audio(args.audio)
    flags = vad_flags(samples)
    facts = {
        "path": info.path,
        "format": info.container.split(",")[0],
        "codec": info.codec,
        "duration_s": round(len(samples) / 16000, 3),
        "sample_rate": info.sample_rate,
        "channels": info.channels,
        "speech_fraction": round(float(flags.mean()) if flags.size else 0.0, 3),
        "peak": round(float(abs(samples).max()) if samples.size else 0.0, 3),
    }
    if args.json:
        sys.stdout.write(json.dumps(facts) + "\n")
    else:
        sys.stdout.write(
            f"{facts['path']}: {facts['format']}/{facts['codec']}, {facts['duration_s']:.2f} s, "
            f"{facts['sample_rate']} Hz, {facts['channels']} ch, speech {100 * facts['speech_fraction']:.0f}%\n"
        )
    if facts["speech_fraction"] < 0.05:
        log.warning("almost no speech detected in %s", info.path)
    return 0
