"""A tiny end-to-end run: synthetic earbud taps -> train -> summary -> C -> host and Cortex-M4.

This is the stand-in for the full earbud demo (sensor simulator, streaming detection): it
shows the whole path on a small task in about a minute. Outputs go to `runs/demo/`.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np

import tinybnn
from tinybnn import host, reference
from tinybnn.compiler import compile
from tinybnn.data import save_dataset
from tinybnn.summary import summary

OUT = Path("runs/demo")
CLASSES = ["none", "tap", "double tap", "swipe"]
RATE_HZ, LENGTH, CHANNELS = 200, 64, 4  # 3-axis accelerometer (int16, 4 g full scale) + touch


def window(rng: np.random.Generator, label: int) -> np.ndarray:
    """One 320 ms window: gravity on a random earbud orientation, motion noise, and the gesture."""
    t = np.arange(LENGTH)
    g = rng.normal(size=3)
    x = np.zeros((CHANNELS, LENGTH))
    x[:3] = (g / np.linalg.norm(g) * 8192)[:, None] + rng.normal(0, 150, (3, LENGTH))
    x[:3] += rng.uniform(200, 900) * np.sin(2 * np.pi * rng.uniform(1, 3) / RATE_HZ * t)  # walking
    x[3] = rng.normal(300, 40, LENGTH)  # touch baseline
    strength = rng.uniform(0.6, 1.4)
    taps = {1: [rng.integers(10, 40)], 2: [a := rng.integers(8, 25), a + rng.integers(12, 24)]}
    for at in taps.get(label, []):
        kick = np.exp(-0.5 * ((t - at) / 1.2) ** 2) * 12000 * strength
        x[2] -= kick
        x[3] += 2500 * strength * ((t >= at - 1) & (t <= at + 3))
    if label == 3:  # swipe: a touch that moves; here, a ramp of touch level
        start, dur = rng.integers(5, 20), rng.integers(25, 40)
        ramp = np.clip((t - start) / dur, 0, 1) * ((t - start) < dur + 5)
        x[3] += 3000 * strength * ramp
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def make_data(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(CLASSES)), n_per_class)
    return np.stack([window(rng, int(label)) for label in y]), y


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    X, y = make_data(150, seed=1)
    X_test, y_test = make_data(60, seed=2)  # unseen windows
    save_dataset(OUT / "train.npz", X, y, CLASSES)

    print("== training")
    result = tinybnn.train(
        OUT / "train.npz",
        out=OUT / "model.pt",
        epochs=30,
        widths=(16, 32),
        first_weights="int8",
        seed=0,
    )
    model = tinybnn.load(OUT / "model.pt")
    print(summary(model))

    print("\n== compiling")
    compiled = compile(
        OUT / "model.pt",
        OUT / "c",
        "gesture",
        command="tinybnn compile runs/demo/model.pt -o runs/demo/c --name gesture",
    )
    print(compiled.report())

    scores = reference.run(compiled.program, X_test)
    acc = float((reference.argmax(scores) == y_test).mean())
    print(f"\nvalidation accuracy {result.val_accuracy:.1%}; unseen test windows: {acc:.1%}")

    exe = host.build(OUT / "c", "gesture")
    c_scores, _ = host.run(exe, X_test, len(CLASSES))
    same = np.array_equal(c_scores, scores)
    print(f"host C scores identical to the integer reference on {len(X_test)} windows: {same}")

    if shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm"):
        from tinybnn.profile import profile

        print("\n== Cortex-M4 under QEMU")
        print(profile(OUT / "model.pt", core="cortex-m4", name="gesture").format())
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
