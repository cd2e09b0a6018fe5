"""Data augmentation for windows of raw sensor samples, deterministic for a seed.

An `Augment` transforms a training batch `[N, C, T]` of raw samples (float tensors holding
int16 counts) into new windows of the same shape, rounded and clipped to int16 so they stay
values the device could read. Each transform draws from one `torch.Generator`, so a seed and
the sequence of batch shapes fix the output exactly.

Transforms (each off when its parameter is 0 or None):

- jitter: x + N(0, (jitter * sd_c)^2), sd_c the channel's standard deviation within the
  window: sensor noise. Helps when the training set is small and the signals are clean.
- scaling: x_c * (1 + N(0, scaling^2)), one factor per window and channel: gain differences
  between devices and people.
- shift: moves the window in time by up to `shift * T` steps either way, holding the edge
  value: an event that starts earlier or later in the window.
- rotation: for each group of three channels in `axes` (x, y, z of one sensor), a random
  rotation by up to `rotation` degrees about a random axis, the same for every group of a
  window: a device worn at a slightly different angle. Only meaningful for 3-axis sensors
  whose axes share one scale (`tinybnn.tsfile` scaling "global"), so it is off unless
  `axes` names the groups.

Augmentation matters most for small training sets (tens of windows per class); on large
ones it mainly slows convergence. It never changes the model, so lowering is unaffected.
Non-goals: mixing windows (mixup), frequency-domain transforms, warping.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

INT16_MIN, INT16_MAX = -(2**15), 2**15 - 1


@dataclass
class Augment:
    """A seeded augmentation of raw sample batches; call it on a float tensor [N, C, T]."""

    jitter: float = 0.03
    scaling: float = 0.1
    shift: float = 0.1
    rotation: float = 0.0  # degrees
    axes: Sequence[Sequence[int]] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        for a in self.axes:
            if len(a) != 3:
                raise ValueError(f"axes must be groups of three channels, not {list(a)}")
        self.generator = torch.Generator().manual_seed(self.seed)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.rotation and self.axes:
            x = rotate(x, self.rotation, self.axes, self.generator)
        if self.scaling:
            x = x * (1 + self.scaling * _randn(x.shape[:2] + (1,), self.generator))
        if self.jitter:
            sd = x.std(-1, keepdim=True) if x.shape[-1] > 1 else torch.zeros_like(x[..., :1])
            x = x + self.jitter * sd * _randn(x.shape, self.generator)
        if self.shift:
            x = time_shift(x, self.shift, self.generator)
        return torch.round(x).clamp(INT16_MIN, INT16_MAX)


def _randn(shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=g)


def time_shift(x: torch.Tensor, fraction: float, g: torch.Generator) -> torch.Tensor:
    """Shift each window by an integer in [-fraction*T, fraction*T], holding edge values."""
    n, _, t = x.shape
    most = int(fraction * t)
    if most == 0:
        return x
    offsets = torch.randint(-most, most + 1, (n,), generator=g)
    index = (torch.arange(t)[None, :] - offsets[:, None]).clamp(0, t - 1)  # [N, T]
    return torch.gather(x, 2, index[:, None, :].expand_as(x))


def rotation_matrices(n: int, degrees: float, g: torch.Generator) -> torch.Tensor:
    """n random rotations [n, 3, 3]: a uniform random axis, an angle uniform in +-degrees
    (Rodrigues' formula)."""
    axis = torch.randn(n, 3, generator=g)
    axis = axis / axis.norm(dim=1, keepdim=True).clamp_min(1e-12)
    angle = (torch.rand(n, generator=g) * 2 - 1) * math.radians(degrees)
    k = torch.zeros(n, 3, 3)
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    k = k - k.transpose(1, 2)
    s, c = angle.sin()[:, None, None], angle.cos()[:, None, None]
    return torch.eye(3) + s * k + (1 - c) * (k @ k)


def rotate(
    x: torch.Tensor, degrees: float, axes: Sequence[Sequence[int]], g: torch.Generator
) -> torch.Tensor:
    """Rotate each group of three channels by one random small rotation per window."""
    r = rotation_matrices(x.shape[0], degrees, g)
    x = x.clone()
    for group in axes:
        idx = list(group)
        x[:, idx] = r @ x[:, idx]
    return x
