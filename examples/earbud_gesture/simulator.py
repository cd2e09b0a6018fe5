"""A sensor simulator for an earbud: a 3-axis accelerometer and a two-electrode touch strip.

What it assumes (all in the earbud's own frame: x along the stem, towards the mouth;
y forward; z into the ear canal):

Sensors
- Accelerometer: +-8 g full scale, 4096 LSB/g, int16, sampled at `RATE_HZ` = 100 Hz by the
  earbud's own clock, which runs 1-3 % fast or slow per user (sample-rate jitter). Noise
  0.004 g RMS per axis; offsets drift as a slow bounded random walk (up to 0.05 g);
  readings beyond +-8 g saturate at the int16 limits.
- Touch strip: two capacitive electrodes along the stem, raw counts (int16) with a baseline
  of 1800-2200 that drifts with temperature (up to 60 counts a minute) and 4 counts of
  noise. A finger at position p in [0, 1] along the strip adds A * (1 - p) to electrode 1
  and A * p to electrode 2, A = 400-900 counts per user (finger size and pressure).

Gestures (user strength scales accelerations, user speed scales durations)
- single tap: the finger hits the earbud: a damped 40-70 Hz oscillation along z, 0.8-3 g,
  decaying in 10-25 ms, with 50-120 ms of finger contact at the strip's middle.
- double tap: two taps `gap` apart; each user has a habitual gap of 0.15-0.40 s (+-10 %).
- swipe forward / backward: contact moving from p = 0.15 to 0.85 (or back) over 0.2-0.45 s,
  with 0.05-0.15 g of friction drag along x.
- long press: contact held still for 0.9-1.2 s; pressing pushes the earbud 0.05-0.2 g along z.
- none: the wearer sitting still, walking (steps at 1.6-2.2 Hz, 0.15-0.35 g bounce, heel
  strikes), running (2.4-3.0 Hz, 0.8-1.5 g bounce, 1.5-4 g heel strikes), chewing (jaw at
  1-2 Hz, 0.01-0.04 g), talking (bone-conducted voice, 0.005-0.03 g bursts), turning the
  head (0.1-0.25 g tangential pulse, gravity tilting by up to 15 degrees), putting the
  earbud in or taking it out (gravity swinging 60-150 degrees, 0.5-2 g handling knocks,
  fingers gripping both electrodes), and knocks (20-30 g shocks decaying in 30 ms) that saturate the accelerometer.

Gravity (1 g) points in a direction set by each user's earbud orientation: the earbud
sits 10-35 degrees off upright in a random azimuth.

The `.npz` written for the trainer follows tinybnn's format: X int16 [N, 5, T] with
channels ax, ay, az, e1, e2; y labels; class_names. Users are split so that the test users
are never seen in training.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

RATE_HZ = 100
WINDOW = 128  # samples: 1.28 s
CHANNELS = ["ax", "ay", "az", "e1", "e2"]
CLASSES = ["none", "single tap", "double tap", "swipe forward", "swipe backward", "long press"]
LSB_PER_G = 4096
BACKGROUNDS = ["still", "walking", "running", "chewing", "talking", "head turn", "in/out", "knock"]


@dataclass
class User:
    """Per-user variation, drawn once per simulated person."""

    strength: float  # scales tap and press accelerations
    speed: float  # scales gesture durations (< 1: faster)
    tap_gap: float  # habitual double-tap gap, seconds
    clock: float  # the earbud's clock rate relative to nominal
    gravity: np.ndarray  # unit vector, earbud frame
    finger: float  # touch amplitude A, counts
    baseline: np.ndarray  # electrode baselines, counts
    step_hz: float  # walking cadence

    @classmethod
    def draw(cls, rng: np.random.Generator) -> User:
        tilt, azimuth = np.radians(rng.uniform(10, 35)), rng.uniform(0, 2 * np.pi)
        # Upright means gravity along -x (down the stem); tilt it towards a random azimuth.
        g = np.array(
            [-np.cos(tilt), np.sin(tilt) * np.cos(azimuth), np.sin(tilt) * np.sin(azimuth)]
        )
        return cls(
            strength=rng.uniform(0.6, 1.5),
            speed=rng.uniform(0.75, 1.35),
            tap_gap=rng.uniform(0.15, 0.40),
            clock=1 + rng.uniform(0.01, 0.03) * rng.choice([-1, 1]),
            gravity=g,
            finger=rng.uniform(400, 900),
            baseline=rng.uniform(1800, 2200, 2),
            step_hz=rng.uniform(1.6, 2.2),
        )


@dataclass
class Gesture:
    kind: str  # one of CLASSES[1:]
    start: float  # seconds
    end: float = 0.0  # set when rendered

    @property
    def label(self) -> int:
        return CLASSES.index(self.kind)


@dataclass
class Scene:
    """What happens over a stretch of time: background activities and gestures."""

    duration: float
    activities: list[tuple[str, float, float]] = field(default_factory=list)  # (kind, start, end)
    gestures: list[Gesture] = field(default_factory=list)


def gesture_duration(kind: str, user: User, rng: np.random.Generator) -> float:
    """Seconds from the gesture's first contact to its last."""
    if kind == "single tap":
        return 0.12
    if kind == "double tap":
        return user.tap_gap * rng.uniform(0.9, 1.1) + 0.12
    if kind.startswith("swipe"):
        return float(np.clip(rng.uniform(0.2, 0.45) * user.speed, 0.15, 0.5))
    if kind == "long press":
        return float(np.clip(rng.uniform(0.9, 1.2) * user.speed, 0.9, 1.2))
    raise ValueError(kind)


def _rotate(v: np.ndarray, axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues: rotate vector v [3] about unit axis [3] by angle [N]; returns [N, 3]."""
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    return v * c + np.cross(axis, v) * s + axis * (axis @ v) * (1 - c)


def _bump(t: np.ndarray, start: float, dur: float) -> np.ndarray:
    """A smooth 0 -> 1 -> 0 raised-cosine bump over [start, start + dur]."""
    u = np.clip((t - start) / dur, 0, 1)
    return 0.5 - 0.5 * np.cos(2 * np.pi * u)


def _contact(t: np.ndarray, start: float, dur: float, ramp: float = 0.02) -> np.ndarray:
    """Finger contact 0..1 with short ramps at touch-down and lift-off."""
    up = np.clip((t - start) / ramp, 0, 1)
    down = np.clip((start + dur - t) / ramp, 0, 1)
    return np.minimum(up, down)


class _Signals:
    """Accumulates physical signals (g, counts) on one time base."""

    def __init__(self, t: np.ndarray, user: User):
        self.t = t
        self.user = user
        self.acc = np.zeros((len(t), 3))  # g, earbud frame, without gravity
        self.gravity = np.tile(user.gravity, (len(t), 1))
        self.touch = np.zeros((len(t), 2))  # counts above baseline


def _activity(sig: _Signals, kind: str, start: float, end: float, rng: np.random.Generator) -> None:
    t, user = sig.t, sig.user
    on = ((t >= start) & (t < end)).astype(float)
    world_up = -user.gravity  # the head's vertical, in the earbud frame
    if kind in ("walking", "running"):
        f = user.step_hz * (1.0 if kind == "walking" else rng.uniform(1.35, 1.5))
        bounce = rng.uniform(0.15, 0.35) if kind == "walking" else rng.uniform(0.8, 1.5)
        strike = rng.uniform(0.3, 0.8) if kind == "walking" else rng.uniform(1.5, 4.0)
        phase = rng.uniform(0, 2 * np.pi)
        vertical = bounce * np.sin(2 * np.pi * f * t + phase) + 0.3 * bounce * np.sin(
            4 * np.pi * f * t
        )
        # Heel strikes: a sharp decaying impulse at each step.
        since = ((t * f + phase / (2 * np.pi)) % 1.0) / f
        vertical += strike * np.exp(-since / 0.02) * np.cos(2 * np.pi * 25 * since)
        sway = 0.3 * bounce * np.sin(np.pi * f * t + phase)
        side = np.cross(world_up, [0.0, 1.0, 0.0])
        side /= np.linalg.norm(side) + 1e-9
        sig.acc += on[:, None] * (vertical[:, None] * world_up + sway[:, None] * side)
    elif kind == "chewing":
        f = rng.uniform(1.0, 2.0)
        amp = rng.uniform(0.01, 0.04)
        jaw = amp * np.maximum(np.sin(2 * np.pi * f * t), 0) ** 2
        buzz = rng.normal(0, 1, (len(t), 3)) * jaw[:, None]
        sig.acc += on[:, None] * (jaw[:, None] * np.array([0.3, 0.8, 0.5]) + buzz)
    elif kind == "talking":
        voiced = np.repeat(rng.random(len(t) // 20 + 1) < 0.6, 20)[: len(t)]
        amp = rng.uniform(0.005, 0.03)
        sig.acc += (on * voiced)[:, None] * rng.normal(0, amp, (len(t), 3))
    elif kind == "head turn":
        dur = rng.uniform(0.4, 0.9)
        at = rng.uniform(start, max(start, end - dur))
        u = np.clip((t - at) / dur, 0, 1)
        tangential = (
            rng.uniform(0.1, 0.25) * np.sin(2 * np.pi * u) * (u > 0) * (u < 1) * rng.choice([-1, 1])
        )
        sig.acc[:, 1] += tangential
        tilt = np.radians(rng.uniform(-15, 15)) * (0.5 - 0.5 * np.cos(np.pi * u))
        axis = np.array([0.0, 0.0, 1.0])
        sig.gravity = np.where((t >= at)[:, None], _rotate(user.gravity, axis, tilt), sig.gravity)
    elif kind == "in/out":
        dur = min(rng.uniform(0.5, 1.2), end - start)
        at = rng.uniform(start, max(start, end - dur))
        u = np.clip((t - at) / dur, 0, 1)
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        angle = np.radians(rng.uniform(60, 150)) * (0.5 - 0.5 * np.cos(np.pi * u))
        if rng.random() < 0.5:  # taking it out: swing away from the worn orientation
            g = _rotate(user.gravity, axis, angle)
        else:  # putting it in: swing into it
            g = _rotate(user.gravity, axis, angle[-1] - angle)
        sig.gravity = np.where(((t >= start) & (t < end))[:, None], g, sig.gravity)
        grip = _contact(t, at - 0.1, dur + 0.2, ramp=0.05)
        sig.touch += grip[:, None] * rng.uniform(600, 1500, 2)
        for _ in range(int(rng.integers(1, 4))):
            hit = rng.uniform(at, at + dur)
            since = np.maximum(t - hit, 0)
            sig.acc += ((t >= hit) * np.exp(-since / 0.015))[:, None] * rng.normal(
                0, rng.uniform(0.5, 2.0), 3
            )
    elif kind == "knock":
        hit = rng.uniform(start, end)
        since = np.maximum(t - hit, 0)
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        shock = (t >= hit) * np.exp(-since / 0.03)
        sig.acc += (
            shock[:, None] * direction * rng.uniform(20.0, 30.0)
        )  # >= 8.3 g on some axis: saturates
    elif kind != "still":
        raise ValueError(kind)


def _tap(sig: _Signals, at: float, rng: np.random.Generator) -> None:
    t, user = sig.t, sig.user
    since = np.maximum(t - at, 0)
    f0, tau = rng.uniform(40, 70), rng.uniform(0.010, 0.025)
    amp = rng.uniform(0.8, 3.0) * user.strength
    ring = (t >= at) * amp * np.exp(-since / tau) * np.cos(2 * np.pi * f0 * since)
    sig.acc[:, 2] += ring
    sig.acc[:, :2] += ring[:, None] * rng.normal(0, 0.15, 2)
    contact = _contact(t, at - 0.01, rng.uniform(0.05, 0.12))
    p = np.clip(rng.normal(0.5, 0.08), 0.2, 0.8)
    sig.touch += contact[:, None] * user.finger * np.array([1 - p, p])


def _gesture(sig: _Signals, g: Gesture, rng: np.random.Generator) -> None:
    t, user = sig.t, sig.user
    dur = gesture_duration(g.kind, user, rng)
    g.end = g.start + dur
    if g.kind == "single tap":
        _tap(sig, g.start, rng)
    elif g.kind == "double tap":
        _tap(sig, g.start, rng)
        _tap(sig, g.start + dur - 0.12, rng)
    elif g.kind.startswith("swipe"):
        u = np.clip((t - g.start) / dur, 0, 1)
        p = 0.15 + 0.7 * u if g.kind == "swipe forward" else 0.85 - 0.7 * u
        contact = _contact(t, g.start, dur, ramp=0.03)
        sig.touch += contact[:, None] * user.finger * np.stack([1 - p, p], 1)
        drag = rng.uniform(0.05, 0.15) * (1 if g.kind == "swipe forward" else -1)
        sig.acc[:, 0] += contact * drag
    elif g.kind == "long press":
        contact = _contact(t, g.start, dur, ramp=0.04)
        p = np.clip(rng.normal(0.5, 0.1), 0.2, 0.8)
        jitter = 1 + 0.03 * np.sin(2 * np.pi * rng.uniform(3, 6) * t)
        sig.touch += (contact * jitter)[:, None] * user.finger * np.array([1 - p, p])
        sig.acc[:, 2] += contact * rng.uniform(0.05, 0.2) * user.strength
    else:
        raise ValueError(g.kind)


def render(scene: Scene, user: User, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Samples int16 [N, 5] (ax, ay, az, e1, e2) and their true times in seconds [N].

    The earbud's clock runs at `user.clock` times nominal, so sample k is taken at
    k / (RATE_HZ * clock) seconds of true time, plus 1 % per-sample timing jitter.
    """
    n = int(round(scene.duration * RATE_HZ * user.clock))
    period = 1.0 / (RATE_HZ * user.clock)
    t = np.arange(n) * period + rng.normal(0, 0.01 * period, n)
    sig = _Signals(t, user)
    for kind, start, end in scene.activities:
        _activity(sig, kind, start, end, rng)
    for g in scene.gestures:
        _gesture(sig, g, rng)
    drift = np.cumsum(rng.normal(0, 0.0015, (n, 3)), 0)
    drift = 0.05 * np.tanh(drift / 0.05)  # bounded random walk, g
    acc = sig.acc + sig.gravity + drift + rng.normal(0, 0.004, (n, 3))
    temp = np.cumsum(rng.normal(0, 0.15, n)) + rng.uniform(-20, 20)
    touch = sig.touch + user.baseline + temp[:, None] + rng.normal(0, 4, (n, 2))
    raw = np.concatenate([acc * LSB_PER_G, touch], 1)
    return np.clip(np.round(raw), -32768, 32767).astype(np.int16), t


def _background(duration: float, rng: np.random.Generator, quiet: bool = False) -> list:
    """One background activity over the whole stretch (sometimes with a head turn too)."""
    kinds = ["still", "walking", "chewing", "talking", "head turn"] if quiet else BACKGROUNDS
    weights = np.array([3, 3, 2, 2, 2] if quiet else [3, 3, 1, 2, 2, 2, 1, 1], float)
    kind = str(rng.choice(kinds, p=weights / weights.sum()))
    acts = [(kind, 0.0, duration)]
    if kind != "head turn" and rng.random() < 0.2:
        acts.append(("head turn", 0.0, duration))
    return acts


def make_window(label: int, user: User, rng: np.random.Generator) -> np.ndarray:
    """One training window int16 [5, WINDOW] of class `label`.

    A gesture lies wholly inside its window, anywhere from 0.05 s after the start to 0.05 s
    before the end (a long press needs only 0.75 s of it inside: a window is shorter than
    some presses), over a background the wearer might be doing meanwhile; a "none" window
    holds background only, from the full list including running, knocks and in/out.
    """
    duration = WINDOW / RATE_HZ / user.clock
    scene = Scene(duration, _background(duration, rng, quiet=label != 0))
    if label:
        kind = CLASSES[label]
        probe = np.random.default_rng(rng.integers(2**32))
        dur = gesture_duration(kind, user, probe)
        if kind == "long press":  # a press is "held >= 0.75 s": it may run past either edge
            start = rng.uniform(0.75 - dur, duration - 0.75)
        else:
            start = rng.uniform(0.05, max(0.05, duration - dur - 0.05))
        scene.gestures.append(Gesture(kind, start))
    x, _ = render(scene, user, rng)
    return x[:WINDOW].T


def make_dataset(
    users: int, per_class: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows X int16 [N, 5, WINDOW], labels y [N] and user ids [N], for `users` users with
    `per_class` windows of each class (twice as many "none": it is the most varied)."""
    rng = np.random.default_rng(seed)
    X, y, who = [], [], []
    for u in range(users):
        user = User.draw(rng)
        for label in range(len(CLASSES)):
            for _ in range(per_class * (2 if label == 0 else 1)):
                X.append(make_window(label, user, rng))
                y.append(label)
                who.append(u)
    return np.stack(X), np.array(y), np.array(who)


def make_stream(duration: float, seed: int) -> tuple[np.ndarray, np.ndarray, list[Gesture], list]:
    """A continuous recording: samples int16 [N, 5], times [N], the gestures and the
    background activities, for one unseen user. The backgrounds come in a random order,
    each once before any repeats, for 6-9 s each; gestures, every kind in turn, come every
    2.5-4 s over the calm ones, while stretches of running, in/out and knocks are left gesture-free."""
    rng = np.random.default_rng(seed)
    user = User.draw(rng)
    scene = Scene(duration)
    order = list(rng.permutation(BACKGROUNDS))  # every background once before any repeats
    kinds = [str(k) for k in rng.permutation(CLASSES[1:])]
    t = 0.0
    while t < duration - 1:
        span = min(rng.uniform(6, 9), duration - t)
        kind = str(order[len(scene.activities) % len(order)])
        scene.activities.append((kind, t, t + span))
        if kind not in ("running", "in/out", "knock"):
            g_t = t + rng.uniform(0.8, 1.5)
            while g_t < t + span - 1.6:
                # Every gesture kind in turn, so that a short stream holds each of them.
                scene.gestures.append(Gesture(kinds[len(scene.gestures) % len(kinds)], g_t))
                g_t += rng.uniform(2.5, 4.0)
        t += span
    x, times = render(scene, user, rng)
    return x, times, scene.gestures, scene.activities
