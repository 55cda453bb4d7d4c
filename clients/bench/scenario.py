"""Benchmark scenarios as data: TOML files (unknown keys refused) and the speech pattern they describe.

A scenario names the speech clip, how it is cut into bursts with silences and barge-ins, the
targets to run against, the budget, resolution, session count and duration, and the load ramp.
`speech_plan` turns it into one PCM track plus the times of its onsets and barge-ins.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from engine.clock import AUDIO_RATE
from engine.config import EngineConfig, from_dict, load_config, read_toml
from engine.errors import InputError

TARGETS = ("inprocess", "webrtc", "vcam", "endpoint")


@dataclass(frozen=True, slots=True)
class PatternConfig:
    talk_s: float = 2.5  # length of each speech burst
    pause_s: float = 1.0  # silence between bursts (onsets need >= 0.3 s before them)
    jitter: float = 0.3  # +- fraction of random variation of talk/pause lengths
    seed: int = 0
    barge_in_every: int = 0  # every Nth burst is cut by a barge-in (interrupt); 0 = never
    barge_in_after_s: float = 1.0  # how far into that burst the barge-in comes


@dataclass(frozen=True, slots=True)
class LoadConfig:
    enabled: bool = False
    start_sessions: int = 1
    max_sessions: int = 6
    step_s: float = 12.0  # how long each step of the ramp runs
    warmup_s: float = 3.0  # excluded from each step's figures
    min_fps_fraction: float = 0.9  # a step also fails below this fraction of the target fps
    min_full_size_fraction: float = 0.9  # ... or when the ladder renders below `resolution` more of the time


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str = "unnamed"
    description: str = ""
    targets: tuple[str, ...] = ("inprocess",)
    audio: str = ""  # speech clip; empty = the bundled demo speech
    duration_s: float = 15.0
    warmup_s: float = 2.0  # excluded from fps/jitter figures
    tail_s: float = 1.0  # keep receiving after the audio ends
    resolution: int = 256
    fps: float = 25.0
    budget_ms: float = 250.0
    sessions: int = 1  # concurrent sessions in the measured run (in-process)
    engine_config: str = ""  # engine TOML; resolution/fps/budget above override it
    standby: bool = True  # warm spare workers (the engine default)
    marker: bool = True  # ask our own endpoints to stamp the timing marker
    inject_delay_ms: float = 0.0  # delay our endpoint's outgoing video (self-check of the harness)
    face_tracking: bool = True  # glass-to-glass by the face tracker on received frames
    emotion: str = ""
    pattern: PatternConfig = field(default_factory=PatternConfig)
    load: LoadConfig = field(default_factory=LoadConfig)

    def engine(self) -> EngineConfig:
        """The engine config this scenario runs with."""
        cfg = load_config(self.engine_config or None)
        return replace(cfg, fps=self.fps, render=replace(cfg.render, size=self.resolution),
                       runtime=replace(cfg.runtime, budget_ms=self.budget_ms, standby=self.standby))


def _check(s: Scenario) -> Scenario:
    bad = [t for t in s.targets if t not in TARGETS]
    if bad or not s.targets:
        raise InputError(f"scenario {s.name}: unknown target(s) {bad or '(none)'} (expected {', '.join(TARGETS)})")
    for name, value, lo, hi in (("duration_s", s.duration_s, 1.0, 3600.0), ("resolution", s.resolution, 64, 2048),
                                ("fps", s.fps, 1.0, 120.0), ("budget_ms", s.budget_ms, 20.0, 5000.0),
                                ("sessions", s.sessions, 1, 64), ("pattern.talk_s", s.pattern.talk_s, 0.2, 60.0),
                                ("pattern.pause_s", s.pattern.pause_s, 0.0, 60.0),
                                ("inject_delay_ms", s.inject_delay_ms, 0.0, 5000.0),
                                ("load.max_sessions", s.load.max_sessions, 1, 64),
                                ("load.start_sessions", s.load.start_sessions, 1, s.load.max_sessions)):
        if not lo <= value <= hi:
            raise InputError(f"scenario {s.name}: {name} = {value} is outside {lo}..{hi}")
    if s.resolution % 16:
        raise InputError(f"scenario {s.name}: resolution must be a multiple of 16, got {s.resolution}")
    return s


def parse_scenario(data: dict[str, object], where: str = "scenario") -> Scenario:
    """A Scenario from a TOML-shaped dict; unknown keys and wrong types raise InputError."""
    d = dict(data)
    targets = d.pop("targets", None)
    try:
        s = from_dict(Scenario, d)
    except InputError as e:
        raise InputError(f"{where}: {e}") from None
    if targets is not None:
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise InputError(f"{where}: targets must be a list of names, e.g. [\"inprocess\", \"webrtc\"]")
        s = replace(s, targets=tuple(targets))
    return _check(s)


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario TOML file; the file's stem names it unless it sets `name`."""
    p = Path(path)
    data = read_toml(p, "scenario")
    data.setdefault("name", p.stem)
    return parse_scenario(data, str(p))


@dataclass(frozen=True, slots=True)
class SpeechPlan:
    """The PCM to send (16 kHz mono float32) and, in seconds from its start, its bursts and barge-ins."""

    pcm: np.ndarray
    bursts: tuple[tuple[float, float], ...]
    barge_ins: tuple[float, ...]

    @property
    def seconds(self) -> float:
        return self.pcm.size / AUDIO_RATE


def load_clip(path: str) -> np.ndarray:
    """The scenario's speech clip at 16 kHz mono (the bundled demo speech when `path` is empty)."""
    from engine.audio.ingest import decode_audio

    if not path:
        from engine.assets import asset_path

        path = str(asset_path("demo_speech.wav"))
    x = decode_audio(path)
    if x.size < AUDIO_RATE // 5:
        raise InputError(f"speech clip {path} is shorter than 0.2 s")
    return x.astype(np.float32, copy=False)


def speech_plan(s: Scenario, clip: np.ndarray, seconds: float | None = None) -> SpeechPlan:
    """Bursts cut from the (looped) clip, separated by pauses, for `seconds` (default: the scenario's)."""
    total = int(round((seconds or s.duration_s) * AUDIO_RATE))
    p = s.pattern
    rng = np.random.default_rng(p.seed)
    pcm = np.zeros(total, np.float32)
    bursts: list[tuple[float, float]] = []
    barges: list[float] = []
    pos, src, k = int(0.5 * AUDIO_RATE), 0, 0  # half a second of silence first: the first onset counts
    while pos < total:
        talk = p.talk_s * (1 + p.jitter * rng.uniform(-1, 1))
        pause = max(0.35, p.pause_s * (1 + p.jitter * rng.uniform(-1, 1))) if p.pause_s > 0 else 0.0
        barge = p.barge_in_every > 0 and k % p.barge_in_every == p.barge_in_every - 1
        if barge:
            talk = min(talk, p.barge_in_after_s)
        n = min(int(talk * AUDIO_RATE), total - pos)
        idx = (src + np.arange(n)) % clip.size
        pcm[pos : pos + n] = clip[idx]
        bursts.append((pos / AUDIO_RATE, (pos + n) / AUDIO_RATE))
        if barge and pos + n < total:
            barges.append((pos + n) / AUDIO_RATE)
        src = int((src + n) % clip.size)
        pos += n + int(pause * AUDIO_RATE)
        k += 1
    return SpeechPlan(pcm, tuple(bursts), tuple(barges))
