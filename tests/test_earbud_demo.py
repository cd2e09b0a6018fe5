"""The earbud demo: the simulator's determinism and physics, and the whole pipeline, small."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

DEMO = Path(__file__).resolve().parent.parent / "examples" / "earbud_gesture"
sys.path.insert(0, str(DEMO))

import demo  # noqa: E402
import simulator as sim  # noqa: E402


def test_simulator_is_deterministic_for_a_seed():
    a = sim.make_dataset(2, 2, seed=5)
    b = sim.make_dataset(2, 2, seed=5)
    for u, v in zip(a, b, strict=True):
        assert np.array_equal(u, v)
    assert not np.array_equal(a[0], sim.make_dataset(2, 2, seed=6)[0])
    s1, s2 = sim.make_stream(20, seed=3), sim.make_stream(20, seed=3)
    assert np.array_equal(s1[0], s2[0]) and [g.start for g in s1[2]] == [g.start for g in s2[2]]


def quiet_user(seed: int = 0) -> sim.User:
    user = sim.User.draw(np.random.default_rng(seed))
    user.clock = 1.0
    return user


def render_one(kind: str, at: float = 0.5, seed: int = 0, user: sim.User | None = None):
    user = user or quiet_user(seed)
    scene = sim.Scene(2.0, [("still", 0.0, 2.0)], [sim.Gesture(kind, at)])
    x, t = sim.render(scene, user, np.random.default_rng(seed))
    return x.astype(float), t, scene.gestures[0], user


def contact(x: np.ndarray, user: sim.User) -> np.ndarray:
    """Samples where a finger is on the strip (touch above baseline by a quarter of A)."""
    above = x[:, 3:].sum(1) - user.baseline.sum()
    return above > 0.25 * user.finger


@pytest.mark.parametrize("seed", range(5))
def test_a_tap_is_a_short_sharp_hit_with_a_brief_contact(seed):
    x, t, g, user = render_one("single tap", seed=seed)
    az = (x[:, 2] - np.median(x[:, 2])) / sim.LSB_PER_G
    peak = int(np.argmax(np.abs(az)))
    assert 0.3 <= abs(az[peak]) <= 3.0 * 1.5 + 0.2  # 0.8-3 g times strength, sampled at 100 Hz
    assert 0 <= t[peak] - g.start <= 0.03  # the hit comes at touch-down
    assert np.abs(az[t > g.start + 0.12]).max() < 0.1  # decayed within ~0.1 s
    touched = t[contact(x, user)]
    assert 0.03 <= touched.max() - touched.min() <= 0.13


@pytest.mark.parametrize("seed", range(5))
def test_a_double_tap_is_two_contacts_at_the_users_gap(seed):
    x, t, g, user = render_one("double tap", seed=seed)
    on = contact(x, user).astype(int)
    starts = t[1:][np.diff(on) == 1]
    assert len(starts) == 2
    assert abs((starts[1] - starts[0]) - user.tap_gap) <= 0.1 * user.tap_gap + 0.03


@pytest.mark.parametrize("kind,sign", [("swipe forward", 1), ("swipe backward", -1)])
def test_a_swipe_moves_along_the_strip(kind, sign):
    x, t, g, user = render_one(kind)
    on = contact(x, user)
    e = x[:, 3:] - user.baseline
    position = e[on, 1] / e[on].sum(1)
    assert sign * (position[-3:].mean() - position[:3].mean()) > 0.4
    assert 0.1 <= t[on].max() - t[on].min() <= 0.55


def test_a_long_press_is_held_still():
    x, t, g, user = render_one("long press", at=0.3)
    on = contact(x, user)
    assert t[on].max() - t[on].min() >= 0.7
    e = x[on][:, 3:] - user.baseline
    assert np.std(e[:, 1] / e.sum(1)) < 0.05


def test_knocks_saturate_the_accelerometer():
    user = quiet_user()
    x, _ = sim.render(sim.Scene(2.0, [("knock", 0.5, 1.0)]), user, np.random.default_rng(1))
    assert np.abs(x[:, :3]).max() >= 32767


def test_windows_are_int16_with_the_documented_shape():
    X, y, who = sim.make_dataset(1, 1, seed=0)
    assert X.dtype == np.int16 and X.shape[1:] == (len(sim.CHANNELS), sim.WINDOW)
    assert sorted(set(y.tolist())) == list(range(len(sim.CLASSES)))


def test_scoring_matches_detections_to_gestures():
    times = np.arange(0, 10, 0.01)
    gestures = [sim.Gesture("single tap", 1.0, 1.12), sim.Gesture("long press", 5.0, 6.0)]
    events = [(int(1.6 / 0.01), 1), (int(5.9 / 0.01), 2), (int(6.5 / 0.01), 5), (900, 3)]
    sc = demo.score(events, times, gestures)
    assert [ok for _, _, ok in sc.detections] == [True, False, True, False]
    # the double tap during the long press is a wrong class; the swipe at 9 s a false alarm
    assert (sc.found, sc.wrong, sc.false_alarms) == (2, 1, 1)
    assert np.allclose(sc.latencies, [1.6 - 1.12, 6.5 - 6.0])


@pytest.mark.skipif(
    not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")),
    reason="needs the ARM toolchain and QEMU",
)
def test_demo_pipeline_end_to_end_small(tmp_path, capsys):
    """Simulate, train, compile, run the stream on Cortex-M4 and on the host, score, draw."""
    assert demo.main(["--quick", "--out", str(tmp_path)]) == 0  # 0: QEMU and host agree
    printed = capsys.readouterr().out
    for expected in ("window accuracy", "DONE", "false alarms", "instructions", "not cycles"):
        assert expected in printed
    for name in ("stream.png", "confusion_test_users.png", "model.pt", "c/gesture.c"):
        assert (tmp_path / name).is_file()
