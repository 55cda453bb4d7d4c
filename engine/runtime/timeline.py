"""The hub's two clocks of audio (pure logic, injected clock): the input timeline and the playout buffer.

`AudioTimeline` cuts pushed PCM into frame-interval slots and releases each one when its audio is
complete in real time: pushed live it goes out at once; a burst (10 s pushed at once) goes out one
slot per frame interval, as it would play; when nobody pushes, silence slots keep the avatar alive.
`Playout` pairs every released slot's audio with the image rendered from it and hands out exactly
one (image, audio) pair per output tick, `delay` after the slot's release: a missing image repeats
the previous one (audio goes on), an image arriving after its slot played is dropped as late, and
the buffer never holds more than about one frame beyond its delay (older slots are dropped).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from engine.errors import AudioError

MIN_RATE, MAX_RATE = 4_000, 192_000


def prepare_pcm(pcm: np.ndarray, sample_rate: int) -> tuple[np.ndarray, bool, bool]:
    """Pushed PCM -> (16 kHz mono float32 in -1..1, resampled?, repaired?); AudioError when unusable.

    int16 is scaled; other rates and (n, 1) shapes go through the ingest resampler; NaN/inf are
    zeroed and samples beyond ±1 clipped.
    """
    from engine.clock import AUDIO_RATE

    x = np.asarray(pcm)
    if x.dtype == np.int16:
        x = x.astype(np.float32) / 32768.0
    if x.dtype.kind != "f":
        raise AudioError(f"push_audio takes float32 PCM in -1..1 (or int16), got dtype {x.dtype}")
    if x.ndim == 2 and 1 in x.shape:
        x = x.reshape(-1)
    if not MIN_RATE <= int(sample_rate) <= MAX_RATE:
        raise AudioError(f"unsupported sample rate {sample_rate} Hz (expected {MIN_RATE}..{MAX_RATE})")
    resampled = x.ndim != 1 or int(sample_rate) != AUDIO_RATE
    if resampled:
        from engine.audio.ingest import to_mono_16k

        x = to_mono_16k(x, int(sample_rate))
    x = np.asarray(x, np.float32)
    bad = ~np.isfinite(x)
    sanitized = bool(bad.any() or np.abs(x).max(initial=0.0) > 1.0)
    if sanitized:
        x = np.clip(np.where(bad, 0.0, x), -1.0, 1.0).astype(np.float32)
    return x, resampled, sanitized


@dataclass(frozen=True, slots=True)
class Slot:
    """One frame interval of audio on the session timeline."""

    index: int
    capture_time: float  # monotonic time its first sample was captured (or would have been, live)
    release_time: float  # when the hub let it into the pipeline
    samples: np.ndarray  # (samples_per_frame,) float32
    silence: bool  # True when the hub made it up because no audio was pushed


class AudioTimeline:
    """Input side: pushed PCM -> released `Slot`s, paced in real time, silence-filled when idle."""

    def __init__(
        self,
        fps: float,
        sample_rate: int,
        start_time: float,
        max_backlog_s: float = 30.0,
        grace_frames: int = 2,
    ) -> None:
        self.fps = float(fps)
        self.sample_rate = int(sample_rate)
        self.frame_s = 1.0 / self.fps
        self.max_backlog = int(max_backlog_s * sample_rate)
        self.grace_s = grace_frames * self.frame_s
        self.next_index = 0
        self._acc = np.zeros(0, np.float32)
        self._acc_capture = start_time
        self._last_release = start_time - self.frame_s
        self._idle = True
        self.silence_slots = 0

    def frame_len(self, index: int) -> int:
        """Samples in slot `index` (exact for non-integer rate/fps ratios, over the long run)."""
        r = self.sample_rate / self.fps
        return int(round((index + 1) * r)) - int(round(index * r))

    @property
    def backlog_samples(self) -> int:
        return int(self._acc.size)

    def push(self, pcm: np.ndarray, capture_time: float) -> None:
        """Append 16 kHz float32 PCM whose first sample was captured at `capture_time`."""
        if self._acc.size + pcm.size > self.max_backlog:
            raise AudioError(
                f"audio backlog would exceed {self.max_backlog / self.sample_rate:.0f} s "
                f"({(self._acc.size + pcm.size) / self.sample_rate:.1f} s queued); push in real time or interrupt()"
            )
        if self._acc.size == 0:
            self._acc_capture = capture_time
            self._acc = np.array(pcm, np.float32)
        else:
            self._acc = np.concatenate([self._acc, pcm])

    def clear(self, now: float) -> int:
        """Barge-in: forget queued audio; returns how many samples were dropped. Goes idle at once."""
        dropped = int(self._acc.size)
        self._acc = np.zeros(0, np.float32)
        self._idle = True
        self._last_release = now - self.frame_s
        return dropped

    def release(self, now: float) -> list[Slot]:
        """Slots due at `now`: complete pushed frames (at most real-time pace) or made-up silence."""
        out: list[Slot] = []
        while True:
            need = self.frame_len(self.next_index)
            if self._acc.size >= need:
                ready = self._acc_capture + need / self.sample_rate
                # Real audio after silence goes out as soon as it is complete, whatever the phase of
                # the silence grid (the playout drops the silence slot it overtakes); after real
                # audio the spacing is a full frame, which paces bursts at real time. (A half-frame
                # spacing here locked live speech up to 20 ms behind its readiness for good.)
                spacing = 0.0 if self._idle else self.frame_s
                due = max(ready, self._last_release + spacing)
                if due > now + 1e-6:
                    break
                samples, self._acc = self._acc[:need].copy(), self._acc[need:]
                capture = max(self._acc_capture, due - self.frame_s)
                self._acc_capture += need / self.sample_rate
                out.append(self._slot(samples, capture, now, silence=False))
                self._last_release = due
                self._idle = False
                continue
            gap = now - (self._last_release + self.frame_s)
            if self._idle and gap >= -1e-6:
                due = self._last_release + self.frame_s if gap < self.frame_s else now
            elif not self._idle and gap >= self.grace_s:
                due = now  # the producer stopped (or lags): go idle on a fresh grid
                self._idle = True
            else:
                break
            out.append(self._slot(np.zeros(need, np.float32), due - self.frame_s, now, silence=True))
            self._last_release = due
            self.silence_slots += 1
        return out

    def _slot(self, samples: np.ndarray, capture: float, now: float, silence: bool) -> Slot:
        slot = Slot(self.next_index, capture, now, samples, silence)
        self.next_index += 1
        return slot


@dataclass(frozen=True, slots=True)
class Emission:
    """What one output tick plays: the slot's audio and the index of the image shown with it."""

    audio: np.ndarray
    slot_index: int  # -1 on an underrun (no slot due: silence was played)
    image_index: int  # -1 before the first image
    repeated: bool  # True when the image is not the one rendered from this slot's audio
    capture_time: float


class Playout:
    """Output side: slots wait `delay` after release for their image; one emission per tick."""

    def __init__(self, fps: float, samples_per_frame: int, delay_s: float = 0.04, max_images: int = 64) -> None:
        self.frame_s = 1.0 / float(fps)
        self.spf = samples_per_frame
        self.delay_s = delay_s
        self.max_images = max_images
        self._slots: deque[Slot] = deque()
        self._images: dict[int, object] = {}
        self.played_until = -1  # images with index <= this arrive too late
        self.last_image_index = -1
        self.last_image: object | None = None
        self.dropped_late = 0
        self.dropped_catchup = 0
        self.repeated = 0
        self.underruns = 0

    @property
    def depth(self) -> int:
        return len(self._slots)

    @property
    def images_waiting(self) -> int:
        return len(self._images)

    def add_slot(self, slot: Slot) -> None:
        self._slots.append(slot)

    def add_image(self, index: int, image: object) -> bool:
        """Offer the image rendered from slot `index`; False (dropped, counted) if it is too late."""
        if index <= self.played_until:
            self.dropped_late += 1
            if self.last_image is None:  # better a stale picture than none at all: it is repeated
                self.last_image, self.last_image_index = image, index
            return False
        self._images[index] = image
        if len(self._images) > self.max_images:  # cannot happen with bounded stages; stay bounded anyway
            self._images.pop(min(self._images))
            self.dropped_late += 1
        return True

    def clear(self, upto_index: int) -> int:
        """Barge-in: drop every waiting slot and image up to `upto_index`; returns slots dropped."""
        n = len(self._slots)
        self._slots.clear()
        self.played_until = max(self.played_until, upto_index)
        for k in [k for k in self._images if k <= upto_index]:
            del self._images[k]
        return n

    def tick(self, now: float) -> tuple[Emission, object | None]:
        """The emission due at `now` and its image (the previous image when repeated)."""
        tol = self.frame_s / 2
        while len(self._slots) >= 2 and self._slots[1].release_time + self.delay_s <= now - tol:
            old = self._slots.popleft()  # more than a frame behind: drop, do not queue
            self._forget(old.index)
            self.dropped_catchup += 1
        head = self._slots[0] if self._slots else None
        # A slot never plays in the tick that released it (its image cannot be back yet), however
        # small the delay: silence slots are released on the tick itself, live audio between ticks.
        if head is None or head.release_time + self.delay_s > now + tol or head.release_time >= now - 1e-9:
            self.underruns += 1
            self.repeated += 1
            em = Emission(np.zeros(self.spf, np.float32), -1, self.last_image_index, True, math.nan)
            return em, self.last_image
        slot = self._slots.popleft()
        image = self._images.pop(slot.index, None)
        self._forget(slot.index)
        if image is not None:
            self.last_image, self.last_image_index = image, slot.index
            repeated = False
        else:
            self.repeated += 1
            repeated = True
        em = Emission(slot.samples, slot.index, self.last_image_index, repeated, slot.capture_time)
        return em, self.last_image

    def _forget(self, index: int) -> None:
        self.played_until = max(self.played_until, index)
        for k in [k for k in self._images if k <= index]:
            del self._images[k]
            self.dropped_late += 1
