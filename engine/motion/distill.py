"""Progressive distillation (Salimans & Ho 2022) of the Style-E teacher into 4-, 2- and 1-step students.

Why progressive rather than consistency distillation: the teacher is a deterministic DDIM sampler over
a short, frozen schedule, so halving it round by round (32 -> 16 -> 8 -> 4 -> 2 -> 1) gives each
student an exact two-step target, needs no ODE-solver or EMA target network, converges in a few hundred
CPU steps per round, and yields every step count the quality ladder needs as a by-product.
Classifier-free guidance is folded in during the first round: the student takes the guidance strength
`w` as an input and learns x0_cond + w (x0_cond - x0_uncond), so guided sampling needs no doubled batch.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import TYPE_CHECKING

import numpy as np
import torch

from engine.motion.denoiser import Denoiser
from engine.motion.style_encoder import StyleEncoder
from engine.motion.sampler import ddim_step, make_schedule, x0_for_target

if TYPE_CHECKING:
    from engine.motion.train import Batcher, TrainConfig

log = logging.getLogger(__name__)
W_MAX = 2.0  # guidance strengths sampled in [0, W_MAX] while distilling


def guided_x0(model: Denoiser, inputs: dict[str, torch.Tensor], w: torch.Tensor, teacher: bool) -> torch.Tensor:
    """x0 with guidance: the teacher needs two passes (cond, uncond); a student reads `w` directly."""
    if not teacher:
        return model(**(inputs | {"w": w}))
    ones = torch.ones_like(inputs["cond_mask"])
    zero = torch.zeros_like(w)
    x_c = model(**(inputs | {"cond_mask": ones, "w": zero}))
    x_u = model(**(inputs | {"cond_mask": 0 * ones, "w": zero}))
    return x_c + w[:, None, None] * (x_c - x_u)


def distill(teacher: Denoiser, style_encoder: StyleEncoder, bt: "Batcher", teacher_steps: int, rounds: int, cfg: "TrainConfig",
            seconds: float, keep: tuple[int, ...] = (4, 2, 1), data: float = 0.0) -> dict[int, Denoiser]:
    """Halve the step count `rounds` times; returns the students whose step counts are in `keep`.

    `data` > 0 mixes the clean training latent into every target, (1 - data) * teacher + data * clean: the
    student then leans toward the conditional mean (smoother, closer to the ground truth on average, less
    like the teacher's own sample). 0 is plain progressive distillation.
    """
    from engine.motion.train import noised

    out: dict[int, Denoiser] = {}
    prev, prev_is_teacher, n_t = teacher, True, teacher_steps
    iters = max(50, int(seconds / max(rounds, 1) / 0.1))
    t0 = time.perf_counter()
    for r in range(rounds):
        n_s = n_t // 2
        if n_s < 1:
            break
        st, ss = make_schedule(n_t), make_schedule(n_s)
        student = copy.deepcopy(prev).train()
        opt = torch.optim.AdamW(student.parameters(), 3e-4 if r else 5e-4)
        ks = (1, 2, 4, 8, 16)
        r0 = time.perf_counter()
        for it in range(iters):
            if time.perf_counter() - r0 > seconds / rounds and it >= 20:
                log.info("distill round %d: time cap at iteration %d", r, it)
                break
            b = bt(cfg.batch, ks[it % len(ks)])
            with torch.no_grad():
                style = style_encoder(b["ref"])
            i = torch.randint(0, n_s, (cfg.batch,))
            t = torch.from_numpy(ss.times[i.numpy()].astype(np.float32))
            x = noised(b["z"], t, torch.randn_like(b["z"]))
            cm = torch.ones(cfg.batch, 1)
            w = torch.rand(cfg.batch) * W_MAX
            base = {"past": b["past"], "past_mask": b["past_mask"], "audio": b["audio"], "emotion": b["emotion"],
                    "style": style, "cond_mask": cm}
            with torch.no_grad():
                col = lambda arr, idx: torch.from_numpy(arr[idx].astype(np.float32))[:, None, None]  # noqa: E731
                k0 = 2 * i.numpy()
                xt = x
                for kk in (k0, k0 + 1):
                    x0 = guided_x0(prev, base | {"x": xt, "t": torch.from_numpy(st.times[kk].astype(np.float32))},
                                   w, prev_is_teacher)
                    xt = ddim_step(xt, x0, col(st.alphas, kk), col(st.sigmas, kk), col(st.alphas, kk + 1),
                                   col(st.sigmas, kk + 1))
                ii = i.numpy()
                target = x0_for_target(x, xt, col(ss.alphas, ii), col(ss.sigmas, ii), col(ss.alphas, ii + 1),
                                       col(ss.sigmas, ii + 1))
                if data > 0:
                    target = (1.0 - data) * target + data * b["z"]
            pred = student(**(base | {"x": x, "t": t, "w": w}))
            new = 1.0 - b["past_mask"]
            loss = (((pred - target) ** 2) * new).sum() / (new.sum() * pred.shape[-1])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
            opt.step()
            if it % 100 == 0 or it == iters - 1:
                log.info("distill round %d (%d->%d steps) it %d loss %.4f (%.0f s)", r, n_t, n_s, it, loss.item(),
                         time.perf_counter() - t0)
        prev, prev_is_teacher, n_t = student.eval(), False, n_s
        if n_s in keep:
            out[n_s] = student
    return out
