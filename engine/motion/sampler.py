"""Diffusion sampling as pure functions of a frozen, precomputed schedule (cosine, x0-prediction, DDIM).

Works on numpy arrays and torch tensors alike (arithmetic only), so training, distillation and the
ONNX runtime loop share one implementation. Noise is passed in; there is no hidden step counter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import numpy as np

A = TypeVar("A")  # np.ndarray or torch.Tensor
S = Any  # a float, or an array/tensor broadcastable against A


COSINE_OFFSET = 0.008  # Nichol & Dhariwal's s: keeps the noise scale off zero near t = 0


def cosine_angle(t: A) -> A:
    """The cosine schedule's angle at time t (arithmetic only: numpy or torch); alpha_bar = (cos(angle) /
    cos(angle at 0))^2, so the in-graph schedule (denoiser.alpha_sigma_t) is this one."""
    return (t + COSINE_OFFSET) / (1.0 + COSINE_OFFSET) * (math.pi / 2)  # type: ignore[operator]


COSINE_F0 = math.cos(cosine_angle(0.0))


def alpha_sigma(t: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Cosine schedule (Nichol & Dhariwal): signal and noise scales at continuous time t in [0, 1]."""
    abar = np.clip((np.cos(cosine_angle(np.asarray(t, np.float64))) / COSINE_F0) ** 2, 0.0, 1.0)
    return np.sqrt(abar), np.sqrt(1.0 - abar)


@dataclass(frozen=True, slots=True)
class Schedule:
    """`steps` DDIM steps from t=1 to t=0: times (steps+1,), alphas and sigmas at each time."""

    steps: int
    times: np.ndarray
    alphas: np.ndarray
    sigmas: np.ndarray


def make_schedule(steps: int) -> Schedule:
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    times = np.linspace(1.0, 0.0, steps + 1)
    a, s = alpha_sigma(times)
    for arr in (times, a, s):
        arr.setflags(write=False)
    return Schedule(steps, times, a, s)


def ddim_step(x: A, x0: A, a_t: S, s_t: S, a_next: S, s_next: S) -> A:
    """Deterministic DDIM update from time t to the next time given the x0 prediction.

    The scales are floats or arrays broadcastable against x (per-sample times); s_t > 0 (t > 0).
    """
    eps = (x - a_t * x0) / s_t  # type: ignore[operator]
    return a_next * x0 + s_next * eps  # type: ignore[operator,return-value]


def x0_for_target(x_t: A, x_target: A, a_t: S, s_t: S, a_next: S, s_next: S) -> A:
    """The x0 that makes one DDIM step from x_t land on x_target (progressive-distillation target)."""
    ratio = s_next / s_t  # type: ignore[operator]
    return (x_target - ratio * x_t) / (a_next - ratio * a_t)  # type: ignore[operator,return-value]


def sample(predict_x0: Callable[[A, float], A], noise: A, schedule: Schedule) -> A:
    """Run the whole schedule: `predict_x0(x, t)` is the (guided) model; `noise` is x at t=1."""
    x = noise
    for i in range(schedule.steps):
        x0 = predict_x0(x, float(schedule.times[i]))
        x = ddim_step(x, x0, float(schedule.alphas[i]), float(schedule.sigmas[i]),
                      float(schedule.alphas[i + 1]), float(schedule.sigmas[i + 1]))
    return x
