"""Style-E training recipe: audio encoder (real clips + synthetic), motion VAE, text projection, teacher denoiser.

Everything is loaded into memory once (mel computed once per utterance), each stage trains for a fixed
number of steps or a wall-clock cap, and the weights go to one .npz (no pickle) + a JSON config.
Distillation of the few-step students lives in distill.py; ONNX export in exporters/onnx_style_e.py.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.audio.features import mel_for_video
from engine.errors import InputError, NotAvailableError
from engine.metrics import best_lag_pearson
from engine.motion.audio_encoder import MEL_DIM, N_MOUTH, AudioEncoder, AudioEncoderConfig
from engine.motion.audio_train import encode_audio, train_audio_encoder
from engine.motion.denoiser import Denoiser, DenoiserConfig
from engine.motion.amplitude import mouth_tempo, reference_spread
from engine.motion.reference import REFERENCE_SCALE_FILE, ReferenceScale
from engine.motion.sampler import alpha_sigma
from engine.motion.style_encoder import StyleEncoder
from engine.motion.text_encoder import minilm_embed
from engine.motion.text_train import train_text_encoder
from engine.motion.vae import MotionVAE

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """One recipe run. Step counts are CPU defaults; `minutes` caps each stage's share of wall time."""

    corpus: str = "out/corpus"
    real: str = "out/fit_talking"
    lookahead: int = 2  # L chosen from the lookahead table (docs/style_e.md)
    past: int = 8  # motion frames of past context in the denoiser window
    no_past: float = 0.1  # share of denoiser windows trained without past (stream start)
    past_noise: float = 0.0  # past latents get N(0, u^2) noise, u ~ U(0, past_noise) per window (exposure bias)
    distill_data: float = 0.3  # share of the clean training latent in each distillation target (0: teacher only)
    skip: bool = False  # denoiser x0 = alpha x_t + sigma F (DenoiserConfig.skip)
    shards: int = 8  # synthetic shards loaded (each ~0.3 h)
    audio_steps: int = 300  # the encoder memorises the real clips: more steps do not help held-out speakers
    vae_steps: int = 1500
    text_steps: int = 3000  # same as `python -m engine.motion.text_train`
    denoise_steps: int = 5000
    batch: int = 48
    real_share: float = 0.75  # share of audio-encoder segments from real clips (the rest: synthetic, 13 channels)
    synth_velocity: float = 0.0  # weight of the velocity-matching term on the encoder's 13 synthetic mouth channels
    audio_dropout: float = 0.1
    linear_jaw: bool = True  # jaw from a ridge head over the encoder's window (audio_train.fit_linear_jaw)
    audio_channels: int = 128  # audio encoder width
    seed: int = 0
    exclude_speakers: tuple[str, ...] = ()  # leave-one-speaker-out: never train on these
    align_real: bool = True  # bring each real clip's jaw lead to the common one before training (align_reals)
    real_lead: int = 0  # jaw lead (frames) the real clips are aligned to (-1: their median); 0 measured best
    minutes: float = 20.0


@dataclass(slots=True)
class Utt:
    """One utterance in memory."""

    mel: np.ndarray  # (T, 320) float16
    coeffs: np.ndarray  # (T, 34) float32
    weights: np.ndarray  # (8,) emotion weights
    emotion: int
    style: int
    text_id: int
    split: str
    voice: str
    audio: np.ndarray | None = None  # (N,) float32 16 kHz, only with load_corpus(keep_audio=True)
    cond: np.ndarray | None = None  # (T, 15) audio encoder output
    motion: np.ndarray | None = None  # (T, 34) what the VAE/denoiser model: coeffs minus the encoder's mouth (motion_target)
    latent: np.ndarray | None = None  # (T, 16) unit-scaled VAE means
    mouth: np.ndarray | None = None  # (T,) real clips: tracked mouth opening (the fit's `aperture`), the jaw's target


@dataclass(slots=True)
class Corpus:
    synth: list[Utt]
    real: list[Utt]  # split = speaker
    text_emb: np.ndarray  # (n_texts, 384)
    text_label: np.ndarray  # (n_texts,) primary*100 + level*10 + secondary
    text_held: np.ndarray  # (n_texts,) bool
    text_primary: np.ndarray
    texts: list[str] = field(default_factory=list)
    real_lead: int = 0  # jaw lead (frames) the real clips were aligned to


def av_offset(audio: np.ndarray, jaw: np.ndarray, max_lag: int = 8) -> int:
    """Frames by which the fitted jaw leads the audio envelope (best envelope correlation within ±max_lag).

    The real clips carry clip-specific audio/video offsets (median ~4 frames of jaw lead, 0..8); a model
    cannot learn lip sync across speakers from misaligned pairs, so training clips are aligned first
    (as SyncNet-style offset correction does for talking-head datasets).
    """
    from engine.audio.features import rms_envelope

    e = np.log(rms_envelope(audio)[: len(jaw)] + 1e-4)
    return best_lag_pearson(jaw[: len(e)], e, max_lag, min_points=1)[1]


def mouth_of(u: Utt) -> np.ndarray:
    """A real clip's mouth opening: the tracked aperture when the fit stored one, else the fitted jawOpen."""
    return u.mouth if u.mouth is not None else u.coeffs[:, 0]


def _delay(x: np.ndarray, d: int) -> np.ndarray:
    """`x` delayed by d frames (negative: advanced), edges held."""
    return np.concatenate([np.repeat(x[:1], d, 0), x[: len(x) - d]]) if d > 0 else \
        np.concatenate([x[-d:], np.repeat(x[-1:], -d, 0)]) if d < 0 else x


def align_reals(reals: list[Utt], lead: int | None = None) -> tuple[list[Utt], int]:
    """Shift each clip's coefficients so its jaw leads the audio envelope by the same `lead` frames.

    The fitted jaw leads the envelope by a clip-specific -1..8 frames (median 4): part anticipation (the
    mouth opens before the sound), part recording offsets. `lead` None aligns to the clips' median lead;
    TrainConfig uses lead 0 (jaw in step with the envelope), which scored better on held-out speakers and
    on flite voices (docs/style_e.md). Clips whose jaw does not move keep their timing and do not vote.
    Needs `audio` on every Utt.
    """
    ks = [av_offset(u.audio, m) if (m := mouth_of(u)).std() > 1e-3 else None for u in reals]  # type: ignore[arg-type]
    moving = [k for k in ks if k is not None]
    target = int(lead if lead is not None else round(float(np.median(moving))) if moving else 0)
    out = []
    for u, k in zip(reals, ks):
        d = 0 if k is None else k - target  # delay the coefficients by d frames
        out.append(replace(u, coeffs=_delay(u.coeffs, d), mouth=None if u.mouth is None else _delay(u.mouth, d)))
    log.info("real clips aligned to a jaw lead of %d frames (clip leads %s)", target, ks)
    return out, target


def load_corpus(root: str | Path, real: str | Path | None, shards: int, splits: tuple[str, ...] = ("train", "test"),
                exclude_speakers: tuple[str, ...] = (), keep_audio: bool = False, align_real: bool = False,
                lead: int = -1) -> Corpus:
    """Read `shards` synthetic shards (the given splits) and every fitted real clip into memory (`align_real`:
    jaw lead aligned to `lead` frames, or to the loaded clips' median lead when `lead` < 0; see align_reals)."""
    root = Path(root)
    if not (root / "index.json").is_file():
        raise InputError(f"not a corpus (no index.json): {root}; build one with `s2t data synth`")
    index = json.loads((root / "index.json").read_text())
    names = [s for s in index["shards"] if str(s).startswith("shard_") and (root / s).is_file()][:shards]
    rows_by_shard: dict[str, list[dict[str, object]]] = {}
    for r in index["utterances"]:
        if r.get("source", "synth") == "synth" and r["shard"] in names and r["split"] in splits:
            rows_by_shard.setdefault(str(r["shard"]), []).append(r)
    synth: list[Utt] = []
    for name in names:
        with np.load(root / name, allow_pickle=False) as z:
            d = {k: z[k] for k in ("audio", "audio_offsets", "coeffs", "coeff_offsets", "emotion_weights",
                                   "emotion_id", "style_id", "text_id")}
        for r in rows_by_shard.get(name, []):
            j = int(r["row"])  # type: ignore[call-overload]
            a = d["audio"][d["audio_offsets"][j] : d["audio_offsets"][j + 1]].astype(np.float32) / 32767.0
            c = d["coeffs"][d["coeff_offsets"][j] : d["coeff_offsets"][j + 1]]
            mel = mel_for_video(a, 25.0)[: len(c)].reshape(-1, MEL_DIM)
            n = min(len(mel), len(c))
            synth.append(Utt(mel[:n].astype(np.float16), c[:n].astype(np.float32), d["emotion_weights"][j],
                             int(d["emotion_id"][j]), int(d["style_id"][j]), int(d["text_id"][j]), str(r["split"]),
                             str(r["voice"]), a if keep_audio else None))
    reals: list[Utt] = []
    target_lead = 0
    if real is not None:
        card = json.loads((Path(real) / "card.json").read_text())
        for clip in card["clips"]:
            if clip["speaker"] in exclude_speakers:
                continue
            with np.load(Path(real) / f"{clip['clip']}.npz", allow_pickle=False) as z:
                c, mel, valid = z["coeffs"], z["mel"].astype(np.float32), z["valid"]
                z_audio = z["audio"].astype(np.float32) / 32767.0
                ap = np.nan_to_num(z["aperture"].astype(np.float32)) if "aperture" in z.files else None
            n = min(len(c), len(mel))
            c = c[:n].copy()
            if not valid[:n].all():  # hold the last valid frame over tracking gaps
                idx = np.maximum.accumulate(np.where(valid[:n], np.arange(n), 0))
                c = c[idx]
                ap = None if ap is None else ap[:n][idx]
            reals.append(Utt(mel[:n].reshape(n, MEL_DIM).astype(np.float16), c, np.eye(8, dtype=np.float32)[0], 0,
                             -1, -1, str(clip["speaker"]), str(clip["clip"]), z_audio,
                             mouth=None if ap is None else ap[:n].copy()))
        if align_real:
            reals, target_lead = align_reals(reals, None if lead < 0 else lead)
        if not keep_audio:
            for u in reals:
                u.audio = None
    with np.load(root / "texts.npz", allow_pickle=False) as t:
        emb = t["embedding"].astype(np.float32)
        label = t["primary"].astype(np.int64) * 100 + t["level"].astype(np.int64) * 10 + t["secondary"]
        held, primary, texts = t["heldout"].astype(bool), t["primary"].astype(np.int64), [str(x) for x in t["text"]]
    log.info("corpus: %d synthetic utterances (%s), %d real clips", len(synth), ",".join(splits), len(reals))
    return Corpus(synth, reals, emb, label, held, primary, texts, target_lead)


class Progress:
    """Training progress as max(step share, wall-time share); drives a warm-up + cosine LR so a time cap
    (a busy CPU) still ends at a low learning rate."""

    def __init__(self, opt: torch.optim.Optimizer, lr: float, steps: int, seconds: float, warmup: float = 0.05) -> None:
        self.opt, self.lr, self.steps, self.seconds, self.warmup = opt, lr, steps, seconds, warmup
        self.t0 = time.perf_counter()

    def done(self, step: int) -> float:
        return max(step / max(self.steps, 1), (time.perf_counter() - self.t0) / max(self.seconds, 1e-6))

    def step(self, step: int) -> bool:
        """Set the LR for this step; False when the step or time budget is spent."""
        f = self.done(step)
        if f >= 1.0:
            return False
        lr = self.lr * min(1.0, (f + 1e-3) / self.warmup) * 0.5 * (1 + np.cos(np.pi * f))
        for g in self.opt.param_groups:
            g["lr"] = lr
        return True


def motion_target(coeffs: np.ndarray, cond: np.ndarray) -> np.ndarray:
    """What the VAE and denoiser model: the coefficients minus the audio encoder's 14 mouth channels.

    The decoder adds the encoder's mouth back (vae.LatentDecoder), so the generated mouth is the encoder's
    prediction (learned on real speakers) plus a residual from the denoiser (emotion, style, articulation
    the encoder misses) and never loses what the encoder knows.
    """
    out = np.asarray(coeffs, np.float32).copy()
    out[:, :N_MOUTH] -= cond[: len(out), :N_MOUTH]
    return out


def train_vae(c: Corpus, mean: np.ndarray, std: np.ndarray, cfg: TrainConfig, seconds: float,
              win: int = 32) -> MotionVAE:
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed + 1)
    vae = MotionVAE()
    data = [(u.motion - mean) / std for u in c.synth if u.split == "train" and len(u.coeffs) >= win]  # type: ignore[operator]
    opt = torch.optim.AdamW(vae.parameters(), 2e-3)
    prog = Progress(opt, 2e-3, cfg.vae_steps, seconds)
    step = 0
    while prog.step(step):
        xs = []
        for _ in range(64):
            d = data[rng.integers(len(data))]
            s = int(rng.integers(0, len(d) - win + 1))
            xs.append(d[s : s + win])
        x = torch.from_numpy(np.stack(xs).astype(np.float32))
        mu, logvar = vae.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        rec = ((vae.decode(z) - x) ** 2).mean()
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).mean()
        loss = rec + 1e-3 * kl
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 300 == 0:
            log.info("vae step %d rec %.4f kl %.3f", step, rec.item(), kl.item())
        step += 1
    log.info("vae: %d steps, last rec %.4f", step, rec.item())
    vae.eval()
    with torch.no_grad():
        mus = torch.cat([vae.encode(torch.from_numpy(d[None].astype(np.float32)))[0][0] for d in data[:400]])
        vae.latent_scale.copy_(mus.std(0).clamp(min=1e-3))
    return vae


@torch.no_grad()
def encode_latent(vae: MotionVAE, coeffs: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(((coeffs - mean) / std).astype(np.float32))[None]
    return (vae.encode(x)[0][0] / vae.latent_scale).numpy()


@dataclass
class Batcher:
    """Denoiser training windows: latents, audio conditioning, emotion/style labels and a same-style reference."""

    c: Corpus
    mean: np.ndarray
    std: np.ndarray
    past: int
    rng: np.random.Generator
    max_new: int = 16
    ref_len: int = 100
    no_past: float = 0.1  # share of windows without past
    past_noise: float = 0.0  # max std of the noise on the past latents the denoiser sees

    def __post_init__(self) -> None:
        self.items = [u for u in self.c.synth if u.split == "train" and len(u.coeffs) >= self.past + self.max_new]
        self.by_style: dict[int, list[Utt]] = {}
        for u in self.items:
            if len(u.coeffs) >= 40:
                self.by_style.setdefault(u.style, []).append(u)

    def reference(self, style: int) -> np.ndarray:
        pool = self.by_style[style]
        u = pool[self.rng.integers(len(pool))]
        n = min(len(u.coeffs), self.ref_len)
        s = int(self.rng.integers(0, len(u.coeffs) - n + 1))
        ref = (u.coeffs[s : s + n] - self.mean) / self.std
        return np.resize(ref, (self.ref_len, ref.shape[1])) if n < self.ref_len else ref

    def __call__(self, b: int, k: int) -> dict[str, torch.Tensor]:
        n = self.past + k
        z, a, e, st, ref, co = [], [], [], [], [], []
        for _ in range(b):
            u = self.items[self.rng.integers(len(self.items))]
            s = int(self.rng.integers(0, len(u.coeffs) - n + 1))
            z.append(u.latent[s : s + n])  # type: ignore[index]
            co.append((u.motion[s : s + n] - self.mean) / self.std)  # type: ignore[index]
            a.append(u.cond[s : s + n])  # type: ignore[index]
            e.append(u.weights)
            st.append(u.style)
            ref.append(self.reference(u.style))
        pm = np.zeros((b, n, 1), np.float32)
        pm[:, : self.past] = 1.0
        pm[self.rng.random(b) < self.no_past] = 0.0  # stream start: no past
        f = lambda x: torch.from_numpy(np.stack(x).astype(np.float32))  # noqa: E731
        zz = f(z)
        past = zz
        if self.past_noise > 0:  # the past the denoiser conditions on is its own imperfect output at run time
            level = self.rng.uniform(0, self.past_noise, (b, 1, 1)).astype(np.float32)
            past = zz + torch.from_numpy(level * self.rng.standard_normal(zz.shape).astype(np.float32))
        return {"z": zz, "past": past, "audio": f(a), "emotion": f(e), "style_id": torch.tensor(st), "ref": f(ref),
                "past_mask": torch.from_numpy(pm), "coeffs": f(co)}


def denoiser_inputs(batch: dict[str, torch.Tensor], style: torch.Tensor, t: torch.Tensor, x: torch.Tensor,
                    cond_mask: torch.Tensor, w: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"x": x, "past": batch["past"], "past_mask": batch["past_mask"], "audio": batch["audio"], "t": t,
            "emotion": batch["emotion"], "style": style, "cond_mask": cond_mask, "w": w}


def noised(z: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    a, s = alpha_sigma(t.numpy())
    return torch.from_numpy(a.astype(np.float32))[:, None, None] * z + torch.from_numpy(s.astype(np.float32))[:, None, None] * noise


def mouth_loss(vae: MotionVAE | None, b: dict[str, torch.Tensor], pred: torch.Tensor) -> torch.Tensor:
    """MSE of the decoded mouth channels (normalised units) on the new frames: the mouth must follow the audio."""
    if vae is None:
        return pred.sum() * 0.0
    m = b["past_mask"]
    z = (b["z"] * m + pred * (1 - m)) * vae.latent_scale
    dec = vae.decode(z)[..., :N_MOUTH]
    return (((dec - b["coeffs"][..., :N_MOUTH]) ** 2) * (1 - m)).sum() / ((1 - m).sum() * N_MOUTH)


def train_denoiser(bt: Batcher, cfg: TrainConfig, seconds: float, n_styles: int,
                   vae: MotionVAE | None = None, mouth_weight: float = 1.0) -> tuple[Denoiser, StyleEncoder]:
    """Teacher: x0-prediction MSE on the new frames (+ decoded-mouth MSE when `vae` is given), condition
    dropout 15%, style encoder trained jointly."""
    if vae is not None:
        vae.requires_grad_(False)
    torch.manual_seed(cfg.seed)
    den, sty = Denoiser(DenoiserConfig(skip=cfg.skip)), StyleEncoder(n_styles=n_styles)
    params = list(den.parameters()) + list(sty.parameters())
    opt = torch.optim.AdamW(params, 1e-3, weight_decay=1e-2)
    prog = Progress(opt, 1e-3, cfg.denoise_steps, seconds)
    t0 = time.perf_counter()
    ks = (1, 2, 4, 8, 16)
    step = 0
    while prog.step(step):
        k = ks[step % len(ks)]
        b = bt(cfg.batch, k)
        code = sty(b["ref"])
        style_ce = nn.functional.cross_entropy(sty.head(code), b["style_id"])
        t = torch.rand(cfg.batch)
        noise = torch.randn_like(b["z"])
        x = noised(b["z"], t, noise)
        cm = (torch.rand(cfg.batch, 1) > 0.15).float()
        pred = den(**denoiser_inputs(b, code, t, x, cm, torch.zeros(cfg.batch)))
        new = 1.0 - b["past_mask"]
        mse = (((pred - b["z"]) ** 2) * new).sum() / (new.sum() * pred.shape[-1])
        loss = mse + 0.1 * style_ce + mouth_weight * mouth_loss(vae, b, pred)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 250 == 0:
            log.info("denoiser step %d mse %.4f style_ce %.3f (%.0f s)", step, mse.item(), style_ce.item(),
                     time.perf_counter() - t0)
        step += 1
    log.info("denoiser: %d steps in %.0f s", step, time.perf_counter() - t0)
    return den.eval(), sty.eval()


def state_arrays(prefix: str, module: nn.Module) -> dict[str, np.ndarray]:
    return {f"{prefix}.{k}": v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def load_state(module: nn.Module, arrays: dict[str, np.ndarray], prefix: str) -> nn.Module:
    sd = {k[len(prefix) + 1 :]: torch.from_numpy(np.asarray(v)) for k, v in arrays.items() if k.startswith(prefix + ".")}
    module.load_state_dict(sd)
    return module.eval()


def train_denoiser_stack(c: Corpus, mean: np.ndarray, std: np.ndarray, vae: MotionVAE, cfg: TrainConfig,
                         teacher_steps: int, distill_rounds: int, teacher_s: float,
                         distill_s: float) -> tuple[dict[str, np.ndarray], list[int]]:
    """Teacher denoiser + style encoder on the corpus's latents, then its distilled students: their arrays
    (`style.*`, `teacher.*`, `student<n>.*`, `neutral_style`) and the students' step counts."""
    from engine.data.styles import STYLE_NAMES
    from engine.motion.distill import distill

    bt = Batcher(c, mean, std, cfg.past, np.random.default_rng(cfg.seed + 2), no_past=cfg.no_past,
                 past_noise=cfg.past_noise)
    den, sty = train_denoiser(bt, cfg, teacher_s, len(STYLE_NAMES), vae=vae)
    students = distill(den, sty, bt, teacher_steps, distill_rounds, cfg, distill_s, data=cfg.distill_data)
    with torch.no_grad():
        neutral = torch.cat([sty(bt(cfg.batch, 1)["ref"]) for _ in range(8)]).mean(0).numpy()
    arrays = {"neutral_style": neutral.astype(np.float32)} | state_arrays("style", sty) | state_arrays("teacher", den)
    for steps, s in students.items():
        arrays |= state_arrays(f"student{steps}", s)
    return arrays, sorted(students)


def run_recipe(cfg: TrainConfig, out: str | Path, distill_rounds: int = 5, teacher_steps: int = 32) -> dict[str, object]:
    """Train every Style-E part and write `out/style_e.npz` + `out/style_e.json`; returns the config/metrics."""
    from engine.data.styles import STYLE_NAMES

    t0 = time.perf_counter()
    budget = cfg.minutes * 60.0
    c = load_corpus(cfg.corpus, cfg.real, cfg.shards, ("train",), cfg.exclude_speakers, align_real=cfg.align_real,
                    lead=cfg.real_lead)
    enc = train_audio_encoder(c, cfg, cfg.lookahead, cfg.audio_steps, 0.25 * budget)
    for u in c.synth:
        u.cond = encode_audio(enc, u)
        u.motion = motion_target(u.coeffs, u.cond)
    train_motion = np.concatenate([u.motion for u in c.synth])  # type: ignore[misc]
    mean, std = train_motion.mean(0), np.maximum(train_motion.std(0), 1e-3)
    vae = train_vae(c, mean, std, cfg, 0.1 * budget)
    for u in c.synth:
        u.latent = encode_latent(vae, u.motion, mean, std)  # type: ignore[arg-type]
    text, span, _ = train_text_encoder(minilm_embed, cfg.text_steps, cfg.seed)  # corpus-free: texts + lexicon
    den_arrays, students = train_denoiser_stack(c, mean.astype(np.float32), std.astype(np.float32), vae, cfg,
                                                teacher_steps, distill_rounds, 0.45 * budget, 0.15 * budget)
    arrays = {"coef_mean": mean.astype(np.float32), "coef_std": std.astype(np.float32)} | den_arrays
    arrays |= state_arrays("audio", enc) | state_arrays("vae", vae) | state_arrays("text", text)
    if span is not None:
        arrays |= state_arrays("text_span", span)
    meta = {"config": asdict(cfg), "teacher_steps": teacher_steps, "students": students,
            "styles": list(STYLE_NAMES), "train_seconds": round(time.perf_counter() - t0, 1),
            "synthetic_utterances": len(c.synth), "real_clips": [u.voice for u in c.real],
            "real_jaw_lead": c.real_lead, "mouth": "decoder output = VAE decode + the audio encoder's 14 mouth channels",
            "linear_jaw": enc.jaw_fit or None}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "style_e.npz", **arrays)
    (out / "style_e.json").write_text(json.dumps(meta, indent=1))
    if cfg.real is not None:
        write_reference_scale(out, cfg.corpus, cfg.real, cfg.shards)
    log.info("wrote %s (%.0f s)", out / "style_e.npz", time.perf_counter() - t0)
    return meta


def fit_reference_scale(corpus: str | Path, real: str | Path, shards: int) -> tuple[ReferenceScale, dict[str, object]]:
    """The corpus's and the face tracker's per-channel scales (engine.motion.reference): levels = the mean of the
    training utterances' mean levels, tempo = the mean of their mouth_tempo, spread = the mean of their
    reference_spread; corpus mean/spread over their frames; fitted mean/spread over the valid frames of every fitted
    real clip in `real` (an `s2t data fit` folder). Returns it and its provenance."""
    c = load_corpus(corpus, None, shards, ("train",))
    synth = [u.coeffs for u in c.synth if len(u.coeffs) >= 40]
    if not synth:
        raise InputError(f"no synthetic training utterances in {corpus}")
    fits = []
    for f in sorted(Path(real).glob("*.npz")):
        with np.load(f, allow_pickle=False) as z:
            if "coeffs" in z.files and "valid" in z.files:
                fits.append(np.asarray(z["coeffs"], np.float64)[np.asarray(z["valid"], bool)])
    fits = [x for x in fits if len(x)]
    if not fits:
        raise InputError(f"no fitted clips (npz with coeffs + valid) in {real}; run `s2t data fit` first")
    frames, fitted = np.concatenate(synth).astype(np.float64), np.concatenate(fits)
    scale = ReferenceScale(np.mean([u.mean(0) for u in synth], 0).astype(np.float32),
                           np.mean([mouth_tempo(u) for u in synth], 0).astype(np.float32),
                           frames.mean(0).astype(np.float32), frames.std(0).astype(np.float32),
                           fitted.mean(0).astype(np.float32), fitted.std(0).astype(np.float32),
                           np.mean([reference_spread(u) for u in synth], 0).astype(np.float32))
    return scale, {"synthetic_utterances": len(synth), "synthetic_frames": len(frames), "fitted_clips": len(fits),
                   "fitted_frames": len(fitted), "corpus": str(corpus), "real": str(real)}


def write_reference_scale(weights_dir: str | Path, corpus: str | Path, real: str | Path, shards: int) -> Path:
    """Compute the reference scale (fit_reference_scale) into `weights_dir`/reference_scale.json."""
    scale, provenance = fit_reference_scale(corpus, real, shards)
    out = Path(weights_dir) / REFERENCE_SCALE_FILE
    out.write_text(scale.to_json(**provenance) + "\n")
    log.info("wrote %s (%d utterances, %d fitted clips)", out, provenance["synthetic_utterances"],
             provenance["fitted_clips"])
    return out


@dataclass(slots=True)
class Modules:
    """The torch modules of one Style-E checkpoint (export and parity tests)."""

    audio: AudioEncoder
    vae: MotionVAE
    style: StyleEncoder
    denoisers: dict[str, Denoiser]  # "teacher", "student4", "student2", "student1"
    text: nn.Sequential
    mean: np.ndarray
    std: np.ndarray
    meta: dict[str, object]


def load_encoder(arrays: dict[str, np.ndarray], prefix: str, lookahead: int) -> AudioEncoder:
    """An audio encoder from saved arrays (its width read from the arrays)."""
    cfg = AudioEncoderConfig(channels=int(arrays[f"{prefix}.inp.weight"].shape[0]), lookahead=lookahead)
    enc = AudioEncoder(cfg)
    # encoders saved before the linear jaw head existed: keep the head off (the conv's jaw)
    old = {f"{prefix}.{k}": v.numpy() for k, v in enc.state_dict().items() if f"{prefix}.{k}" not in arrays}
    return load_state(enc, arrays | old, prefix)  # type: ignore[return-value]


TRANSPOSED = ":T"  # suffix of an ONNX initializer holding a torch weight transposed (the exporter's MatMul layout)
ALIASES = "s2t_aliases"  # graph metadata: JSON {torch key: initializer} for weights the exporter stored once


def denoiser_names(meta: dict[str, object]) -> list[str]:
    return ["teacher"] + [f"student{s}" for s in meta["students"]]  # type: ignore[union-attr]


def graph_arrays(path: str | Path, prefix: str) -> dict[str, np.ndarray]:
    """A module's arrays read back from its exported ONNX graph, keyed `prefix.<torch key>`: the exporter names
    every initializer after its torch key (`key:T` where the graph stores the transpose) and lists in the graph's
    metadata the keys whose equal weight it stored only once."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    meta = {p.key: p.value for p in model.metadata_props}
    names = {n: n for n in graph} | json.loads(meta.get(ALIASES, "{}"))  # torch key -> initializer
    out: dict[str, np.ndarray] = {}
    for key, name in names.items():
        a = graph[name].T if name.endswith(TRANSPOSED) else graph[name]
        out[f"{prefix}.{key.removesuffix(TRANSPOSED)}"] = np.array(a, copy=True, order="C")
    return out


def load_modules(weights: str | Path) -> Modules:
    """Rebuild the torch modules from `style_e.npz` + `style_e.json` (no pickle); a denoiser not in the npz
    (the shipped weights keep them only as graphs) is read back from `denoiser_<name>.onnx` beside it."""
    weights = Path(weights)
    meta = json.loads(weights.with_suffix(".json").read_text())
    with np.load(weights, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for name in denoiser_names(meta):
        if not any(k.startswith(f"{name}.") for k in arrays):
            graph = weights.parent / f"denoiser_{name}.onnx"
            if not graph.is_file():
                raise NotAvailableError(f"denoiser {name!r} is neither in {weights} nor beside it as {graph.name}")
            arrays |= graph_arrays(graph, name)
    look = int(meta["config"]["lookahead"])  # type: ignore[index]
    audio = load_encoder(arrays, "audio", look)
    vae = load_state(MotionVAE(), arrays, "vae")
    style = load_state(StyleEncoder(n_styles=len(meta["styles"])), arrays, "style")  # type: ignore[arg-type]
    text = load_state(nn.Sequential(nn.Linear(arrays["text.0.weight"].shape[1], arrays["text.0.weight"].shape[0]),
                                    nn.GELU(), nn.Linear(arrays["text.0.weight"].shape[0], 8)), arrays, "text")
    den_cfg = DenoiserConfig(skip=bool(meta["config"].get("skip", False)))  # type: ignore[union-attr]
    dens = {name: load_state(Denoiser(den_cfg), arrays, name) for name in denoiser_names(meta)}
    return Modules(audio, vae, style, dens, text, arrays["coef_mean"], arrays["coef_std"], meta)  # type: ignore[arg-type]


def _checkpoint_corpus(m: Modules, cfg: TrainConfig) -> Corpus:
    """The synthetic training corpus encoded by a checkpoint's own audio encoder and VAE (its latents)."""
    c = load_corpus(cfg.corpus, None, cfg.shards, ("train",))
    for u in c.synth:
        u.cond = encode_audio(m.audio, u)
        u.motion = motion_target(u.coeffs, u.cond)
        u.latent = encode_latent(m.vae, u.motion, m.mean, m.std)  # type: ignore[arg-type]
    return c


def _npz_without(weights: Path, prefixes: tuple[str, ...]) -> dict[str, np.ndarray]:
    with np.load(weights, allow_pickle=False) as z:
        return {k: z[k] for k in z.files if not k.startswith(prefixes)}


def _write_checkpoint(weights: Path, arrays: dict[str, np.ndarray], meta: dict[str, object]) -> None:
    np.savez_compressed(weights, **arrays)
    weights.with_suffix(".json").write_text(json.dumps(meta, indent=1))


def retrain_denoiser(weights: str | Path, cfg: TrainConfig, distill_rounds: int = 5) -> dict[str, object]:
    """Train the teacher denoiser and style encoder anew (cfg's past/no_past/past_noise), distil the students and
    swap them into an existing checkpoint; the audio encoder, VAE and text encoder stay (re-export ONNX after)."""
    t0 = time.perf_counter()
    weights = Path(weights)
    m = load_modules(weights)
    meta = dict(m.meta)
    arrays = _npz_without(weights, ("style.", "teacher.", "student"))
    c = _checkpoint_corpus(m, cfg)
    budget = cfg.minutes * 60.0
    den_arrays, students = train_denoiser_stack(c, m.mean, m.std, m.vae, cfg, int(meta["teacher_steps"]),  # type: ignore[call-overload]
                                                distill_rounds, 0.75 * budget, 0.25 * budget)
    arrays |= den_arrays
    meta["students"] = students
    meta["config"] = meta["config"] | {"past": cfg.past, "no_past": cfg.no_past, "past_noise": cfg.past_noise,  # type: ignore[operator]
                                       "distill_data": cfg.distill_data, "skip": cfg.skip}
    meta["denoiser"] = {"retrained": True, "minutes": cfg.minutes, "shards": cfg.shards, "steps_cap": cfg.denoise_steps,
                        "seconds": round(time.perf_counter() - t0, 1)}
    _write_checkpoint(weights, arrays, meta)
    return meta


def retrain_students(weights: str | Path, cfg: TrainConfig, distill_rounds: int = 5) -> dict[str, object]:
    """Distil the students anew from the checkpoint's own teacher and style encoder (cfg.distill_data, the
    whole cfg.minutes for distillation) and swap them in; everything else stays (re-export ONNX after)."""
    from engine.motion.distill import distill

    t0 = time.perf_counter()
    weights = Path(weights)
    m = load_modules(weights)
    meta = dict(m.meta)
    arrays = _npz_without(weights, ("student",))
    arrays |= state_arrays("teacher", m.denoisers["teacher"])  # slim weights keep it only in its graph
    c = _checkpoint_corpus(m, cfg)
    old = meta["config"]  # the teacher's own windows
    bt = Batcher(c, m.mean, m.std, int(old["past"]), np.random.default_rng(cfg.seed + 2),  # type: ignore[index]
                 no_past=float(old["no_past"]), past_noise=float(old["past_noise"]))  # type: ignore[index]
    students = distill(m.denoisers["teacher"], m.style, bt, int(meta["teacher_steps"]), distill_rounds, cfg,  # type: ignore[call-overload]
                       cfg.minutes * 60.0, data=cfg.distill_data)
    for steps, s in students.items():
        arrays |= state_arrays(f"student{steps}", s)
    meta["students"] = sorted(students)
    meta["config"] = meta["config"] | {"distill_data": cfg.distill_data}  # type: ignore[operator]
    meta["students_retrained"] = {"minutes": cfg.minutes, "shards": cfg.shards, "distill_data": cfg.distill_data,
                                  "seconds": round(time.perf_counter() - t0, 1)}
    _write_checkpoint(weights, arrays, meta)
    return meta


def retrain_audio_encoder(weights: str | Path, cfg: TrainConfig) -> dict[str, object]:
    """Train only the audio encoder (e.g. at another lookahead) and swap it into an existing checkpoint.

    The interface is the encoder's named mouth channels (not hidden features), and the decoder adds them to
    the output, so the new encoder's mouth passes straight through; the denoiser's residual was trained
    against the old encoder's errors (re-export ONNX afterwards).
    """
    weights = Path(weights)
    meta = json.loads(weights.with_suffix(".json").read_text())
    arrays = _npz_without(weights, ("audio.",))
    c = load_corpus(cfg.corpus, cfg.real, cfg.shards, ("train",), cfg.exclude_speakers, align_real=cfg.align_real,
                    lead=cfg.real_lead)
    enc = train_audio_encoder(c, cfg, cfg.lookahead, cfg.audio_steps, cfg.minutes * 60.0)
    arrays |= state_arrays("audio", enc)
    meta["config"]["lookahead"] = cfg.lookahead
    meta["audio_encoder"] = {"retrained": True, "steps_cap": cfg.audio_steps, "minutes": cfg.minutes,
                             "shards": cfg.shards, "real_share": cfg.real_share, "synth_velocity": cfg.synth_velocity}
    meta["linear_jaw"] = enc.jaw_fit or None
    _write_checkpoint(weights, arrays, meta)
    return meta
