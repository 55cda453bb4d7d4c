"""Frozen dataclass configs with one root (`EngineConfig`), loadable from TOML with unknown keys refused."""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from engine.errors import InputError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AudioConfig:
    sample_rate: int = 16_000  # everything downstream runs at this rate, mono float32
    frame_ms: int = 20  # ingest frame size (webrtcvad takes 10/20/30 ms)
    vad_mode: int = 2  # webrtcvad aggressiveness 0..3
    n_mels: int = 80
    win_ms: float = 25.0
    hop_ms: float = 10.0


@dataclass(frozen=True, slots=True)
class MotionConfig:
    kind: str = "style-e"  # "style-e" (the trained generator) or "baseline" (the loudness envelope)
    emotion: str = "neutral"
    chunk_frames: int = 2  # K: new frames per chunk
    lookahead_frames: int = 2  # L
    context_frames: int = 8  # P
    seed: int = 0
    # Style-E: share of the mouth from recognised phones (engine.audio.phones: the jaw's value, the lips' motion).
    # 0.2, the largest weight whose held-out real-speaker jaw stays within 0.005 of the encoder's alone (0.301 vs
    # 0.297 at lag 0, leave-one-speaker-out), lifts unheard synthetic voices' jaw from 0.42 to 0.53; 0.8 suits
    # synthesized speech (0.71), at 0.24 on real speakers (benchmarks/results/motion_quality.json
    # "by_phone_weight", docs/style_e.md).
    phone_weight: float = 0.2


def check_phone_weight(w: object, name: str = "phone weight") -> float:
    """`w` as a float when it is a number in 0..1 (MotionConfig.phone_weight), else InputError naming `name`."""
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0.0 <= float(w) <= 1.0:
        raise InputError(f"{name} must be a number from 0 to 1, got {w!r}")
    return float(w)


@dataclass(frozen=True, slots=True)
class RenderConfig:
    kind: str = "reference"  # "reference" or "style-a"
    size: int = 256
    art_style_strength: float = 1.0


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    # end-to-end p95 target, audio captured -> frame ready; 0 = DESIGN's budget for the stages (budget_ms_for)
    budget_ms: float = 0.0
    transport: str = "ipc"  # "ipc" (one host), "tcp", or "inproc"
    host: str = "127.0.0.1"
    render_workers: int = 1
    high_water_mark: int = 8
    curve_server_secret: str = ""  # z85 keys; set for tcp across hosts
    curve_server_public: str = ""
    curve_client_secret: str = ""
    curve_client_public: str = ""
    # A worker that has had work pending this long (counted only while work is pending, and at
    # most two frame intervals per hub tick, so a starved hub does not count) without answering
    # is killed and restarted. 3 s: well above any healthy stall seen on a loaded 2-core box.
    worker_timeout_s: float = 3.0
    standby: bool = True  # keep one warm spare worker per role that takes over at once on a failure


BASELINE_BUDGET_MS = 150.0  # DESIGN: baselines on a 2-core CPU
STYLE_BUDGET_MS = 250.0  # DESIGN: Style-E + Style-A on that CPU
_STYLE_KINDS = ("style-e", "style-a", "engine.motion.style_e:load_stage")


def budget_ms_for(cfg: EngineConfig) -> float:
    """The session's end-to-end budget: `runtime.budget_ms` when set, else DESIGN's for the configured stages."""
    if cfg.runtime.budget_ms < 0:
        raise InputError(f"runtime.budget_ms must be positive (or 0 for the default), got {cfg.runtime.budget_ms}")
    if cfg.runtime.budget_ms > 0:
        return float(cfg.runtime.budget_ms)
    styled = cfg.motion.kind in _STYLE_KINDS or cfg.render.kind in _STYLE_KINDS
    return STYLE_BUDGET_MS if styled else BASELINE_BUDGET_MS


@dataclass(frozen=True, slots=True)
class EngineConfig:
    fps: float = 25.0
    portrait: str = ""  # path; empty = the bundled portrait
    audio: AudioConfig = field(default_factory=AudioConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass `cls` from a nested dict; unknown keys and wrong types raise InputError."""
    if not isinstance(data, dict):
        raise InputError(f"config section {where or cls.__name__!r} must be a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise InputError(f"unknown config key(s) in {where or 'root'}: {', '.join(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        hint = hints[name]
        path = f"{where}.{name}" if where else name
        if dataclasses.is_dataclass(hint):
            kwargs[name] = from_dict(hint, value, path)  # type: ignore[arg-type]
        else:
            kwargs[name] = _coerce(hint, value, path)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, path: str) -> Any:
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str, bool) and type(value) is hint:
        return value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            try:
                return _coerce(arg, value, path)
            except InputError:
                continue
    if hint is type(None) and value is None:
        return None
    raise InputError(f"config key {path}: expected {getattr(hint, '__name__', hint)}, got {value!r}")


def read_toml(path: str | Path, what: str = "config") -> dict[str, Any]:
    """Parse a TOML file; a missing or malformed file is an InputError naming `what` and the path."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} file not found: {p}")
    try:
        return tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{what} file {p} is not valid TOML: {e}") from None


def load_config(path: str | Path | None = None, **overrides: Any) -> EngineConfig:
    """Read an EngineConfig from TOML (or defaults when `path` is None), then apply top-level overrides."""
    data = read_toml(path) if path is not None else {}
    cfg = from_dict(EngineConfig, data)
    return dataclasses.replace(cfg, **overrides) if overrides else cfg
