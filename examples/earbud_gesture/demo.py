"""The earbud gesture demo: simulated sensors -> BNN -> C -> Cortex-M4 firmware under QEMU.

1. Simulates users wearing an earbud (simulator.py) and writes train / validation / test
   `.npz` files, split by user: test users are never seen in training.
2. Trains a binarized CNN, prints its summary and per-class accuracy on the unseen users,
   next to the full-precision twin's, and writes the confusion matrix PNG.
   The convolutions pad nothing (padding "valid"), so the model streams exactly.
3. Compiles the model to C with its streaming API and builds the firmware loop (firmware/)
   for Cortex-M4: it pushes each sample into the model's stream, which decides on the last
   1.28 s every 160 ms, computing each layer's output once.
4. Replays about 60 s of an unseen user's sensor stream through that firmware under QEMU;
   the firmware prints each detected gesture.
5. Scores the detections against the ground truth: precision and recall per gesture, and
   false alarms per minute of "none". Then a field test on the host: 10 fresh simulated
   users x 120 s, the streaming loop beside the windowed loop the demo ran before (the whole
   window classified every 50 ms, same model): gestures found, wrong classes, false alarms
   per minute of "none", and the latency from each gesture's end to its report.
6. Prints flash, RAM and instructions, streaming against windowed per second of signal
   (counted under QEMU, not cycles).
7. Draws the stream with the true and detected gestures.

The same firmware loop also runs on the host, and must report the very same detections.
Run: `python examples/earbud_gesture/demo.py [--quick] [--out DIR]`.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import simulator as sim  # noqa: E402

import tinybnn  # noqa: E402
from tinybnn import firmware  # noqa: E402
from tinybnn.firmware import host  # noqa: E402
from tinybnn.firmware.streaming import profile_stream  # noqa: E402
from tinybnn.training.data import save_dataset  # noqa: E402
from tinybnn.training.train import evaluate  # noqa: E402

NAME = "gesture"
# The earbud gives the model 16 KB of flash. The subset tables that make the binary layers
# fastest take 5.3 times their weights, so the compiler keeps those that fit 12 KiB of
# constants (about 4 KB of code comes on top) and leaves out the ones that save least.
FLASH_BUDGET = 12 * 1024
TOLERANCE_S = 0.5  # a detection may come this long after the gesture has left the window
FIELD_SEEDS = range(5000, 5010)  # the field test's users: fresh, unseen in training


@dataclass
class Config:
    users: tuple[int, int, int]  # train, validation, test
    per_class: int
    epochs: int
    widths: tuple[int, ...]
    stream_s: float
    field_users: int
    field_s: float
    seed: int = 0


FULL = Config(
    users=(60, 8, 12), per_class=8, epochs=20, widths=(16, 32, 48, 64), stream_s=60.0,
    field_users=10, field_s=120.0,
)  # fmt: skip
QUICK = Config(
    users=(6, 2, 2), per_class=6, epochs=3, widths=(16, 32), stream_s=12.0,
    field_users=2, field_s=15.0,
)  # fmt: skip


def make_data(cfg: Config, out: Path) -> dict[str, Path]:
    paths = {}
    n_train, n_val, n_test = cfg.users
    X, y, who = sim.make_dataset(n_train + n_val + n_test, cfg.per_class, cfg.seed)
    parts = {
        "train": who < n_train,
        "val": (who >= n_train) & (who < n_train + n_val),
        "test": who >= n_train + n_val,
    }
    for part, mask in parts.items():
        paths[part] = out / f"{part}.npz"
        save_dataset(paths[part], X[mask], y[mask], sim.CLASSES)
    return paths


def per_class_table(confusion: np.ndarray) -> str:
    lines = [f"{'class':<16}{'windows':>8}{'accuracy':>10}"]
    for i, name in enumerate(sim.CLASSES):
        n = confusion[i].sum()
        lines.append(f"{name:<16}{n:>8}{confusion[i, i] / max(n, 1):>10.1%}")
    return "\n".join(lines)


def confusion_png(confusion: np.ndarray, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(len(sim.CLASSES)), sim.CLASSES, rotation=40, ha="right")
    ax.set_yticks(range(len(sim.CLASSES)), sim.CLASSES)
    for i in range(len(sim.CLASSES)):
        for j in range(len(sim.CLASSES)):
            v = confusion[i, j]
            ax.text(
                j,
                i,
                str(v),
                ha="center",
                va="center",
                color="white" if v > confusion.max() / 2 else "black",
            )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_stream(c_dir: Path, x: np.ndarray) -> None:
    rows = ",\n".join("    {" + ", ".join(str(int(v)) for v in row) + "}" for row in x)
    (c_dir / "stream_data.h").write_text(
        "/* A recorded sensor stream for the demo firmware (generated by demo.py). */\n"
        f"#define STREAM_SAMPLES {len(x)}u\n"
        f"static const int16_t stream_samples[STREAM_SAMPLES][{x.shape[1]}] = {{\n{rows}\n}};\n"
    )


def parse_events(output: str) -> list[tuple[int, int]]:
    """(sample index, class) per EVENT line."""
    events = []
    for line in output.splitlines():
        if line.startswith("EVENT "):
            _, sample, cls, *_ = line.split()
            events.append((int(sample), int(cls)))
    return events


def run_firmware(c_dir: Path, build_dir: Path, core: str) -> tuple[list[tuple[int, int]], str]:
    sources = [
        HERE / "firmware" / "detector.c",
        HERE / "firmware" / "main_qemu.c",
        c_dir / f"{NAME}.c",
    ]
    elf = firmware.build(sources, [c_dir, HERE / "firmware"], core, build_dir, opt="-O2")
    result = firmware.run(elf, core, timeout_s=600)
    if result.status != 0:
        raise SystemExit(f"firmware on {core} exited with {result.status}: {result.output.strip()}")
    return parse_events(result.output), result.output


def build_host(c_dir: Path, windowed: bool = False) -> Path:
    """The firmware loop for the host: the streaming one, or the windowed one."""
    exe = c_dir / ("windowed_host" if windowed else "stream_host")
    cmd = [
        "gcc", *host.STRICT_FLAGS, "-O2", f"-I{c_dir}", f"-I{HERE / 'firmware'}",
        *(["-DDET_WINDOWED"] if windowed else []),
        str(HERE / "firmware" / "detector.c"), str(HERE / "firmware" / "main_host.c"), str(c_dir / f"{NAME}.c"),
        "-o", str(exe),
    ]  # fmt: skip
    subprocess.run(cmd, check=True)
    return exe


def run_host(exe: Path, x: np.ndarray) -> list[tuple[int, int]]:
    out = subprocess.run(
        [str(exe)], input=x.astype("<i2").tobytes(), capture_output=True, check=True
    )
    return parse_events(out.stdout.decode())


@dataclass
class Score:
    table: str
    false_alarms: int  # detections outside every gesture's span
    none_minutes: float
    matched: list  # (gesture, found?)
    detections: list  # (time s, class, matched?)
    wrong: int = 0  # unmatched detections during a gesture's span: a wrong class or a repeat
    latencies: list = None  # seconds from each found gesture's end to its report

    @property
    def found(self) -> int:
        return sum(ok for _, ok in self.matched)


def score(events: list[tuple[int, int]], times: np.ndarray, gestures: list[sim.Gesture]) -> Score:
    """Match each detection to a true gesture of the same class that it follows in time."""
    window_s = sim.WINDOW / sim.RATE_HZ
    used = set()
    detections = []
    latencies = []
    for sample, cls in events:
        t = float(times[sample])
        hit = next(
            (
                i
                for i, g in enumerate(gestures)
                if i not in used
                and g.label == cls
                and g.start <= t <= g.end + window_s + TOLERANCE_S
            ),
            None,
        )
        if hit is not None:
            used.add(hit)
            latencies.append(t - gestures[hit].end)
        detections.append((t, cls, hit is not None))
    lines = [f"{'gesture':<16}{'true':>6}{'found':>7}{'false':>7}{'precision':>11}{'recall':>8}"]
    for c in range(1, len(sim.CLASSES)):
        true = sum(g.label == c for g in gestures)
        found = sum(1 for i in used if gestures[i].label == c)
        reported = sum(1 for _, cls, _ in detections if cls == c)
        precision = f"{found / reported:.0%}" if reported else "-"
        recall = f"{found / true:.0%}" if true else "-"
        lines.append(
            f"{sim.CLASSES[c]:<16}{true:>6}{found:>7}{reported - found:>7}{precision:>11}{recall:>8}"
        )
    # "None" time: the stream minus the stretches where a gesture is in view of the window.
    covered = np.zeros(len(times), bool)
    for g in gestures:
        covered |= (times >= g.start) & (times <= g.end + window_s + TOLERANCE_S)
    none_minutes = float((~covered).sum() / len(times) * (times[-1] - times[0]) / 60)

    def during_gesture(t: float) -> bool:
        return any(g.start <= t <= g.end + window_s + TOLERANCE_S for g in gestures)

    unmatched = [t for t, _, ok in detections if not ok]
    wrong = sum(during_gesture(t) for t in unmatched)
    matched = [(g, i in used) for i, g in enumerate(gestures)]
    return Score(
        "\n".join(lines),
        len(unmatched) - wrong,
        none_minutes,
        matched,
        detections,
        wrong,
        latencies,
    )


def field_test(exe: Path, cfg: Config) -> list[Score]:
    """The firmware loop `exe` on the host, on `cfg.field_users` fresh simulated users."""
    scores = []
    for seed in FIELD_SEEDS[: cfg.field_users]:
        x, times, gestures, _ = sim.make_stream(cfg.field_s, seed=seed)
        scores.append(score(run_host(exe, x), times, gestures))
    return scores


def field_table(loops: dict[str, list[Score]]) -> str:
    """One row per loop: gestures found, wrong classes, false alarms, latency."""
    lines = [f"{'loop':<24}{'found':>14}{'wrong class':>13}{'false alarms':>26}{'latency, s':>22}"]
    for loop, scores in loops.items():
        true = sum(len(s.matched) for s in scores)
        found = sum(s.found for s in scores)
        wrong = sum(s.wrong for s in scores)
        alarms = sum(s.false_alarms for s in scores)
        minutes = sum(s.none_minutes for s in scores)
        lat = np.array([t for s in scores for t in s.latencies])
        latency = (
            f"median {np.median(lat):.2f}, 90% {np.percentile(lat, 90):.2f}" if len(lat) else "-"
        )
        lines.append(
            f"{loop:<24}{f'{found}/{true} {found / max(true, 1):.1%}':>14}{wrong:>13}"
            f"{f'{alarms} in {minutes:.1f} min = {alarms / max(minutes, 1e-9):.2f}/min':>26}"
            f"{latency:>22}"
        )
    return "\n".join(lines)


def stream_png(
    path: Path, x: np.ndarray, times: np.ndarray, gestures, activities, detections
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = plt.get_cmap("tab10").colors
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(15, 6), sharex=True)
    acc = x[:, :3] / sim.LSB_PER_G
    a1.plot(times, acc, lw=0.6)
    a1.set_ylabel("acceleration, g")
    a1.legend(["ax", "ay", "az"], loc="upper right", fontsize=8)
    a2.plot(times, x[:, 3:], lw=0.8)
    a2.set_ylabel("touch, counts")
    a2.legend(["e1", "e2"], loc="upper right", fontsize=8)
    for kind, start, _end in activities:
        a1.text(start + 0.1, 7.3, kind, fontsize=7, color="dimgray")
        a1.axvline(start, color="lightgray", lw=0.5)
    for g in gestures:
        for ax in (a1, a2):
            ax.axvspan(g.start, g.end, color=colors[g.label], alpha=0.25)
        a2.text(
            g.start,
            a2.get_ylim()[1],
            g.kind,
            fontsize=7,
            rotation=30,
            va="bottom",
            color=colors[g.label],
        )
    for t, cls, ok in detections:
        a2.plot(
            [t],
            [x[:, 3:].min() - 30],
            marker="v" if ok else "x",
            ms=9,
            color=colors[cls] if ok else "red",
        )
    a1.set_ylim(-8.5, 8.5)
    a2.set_xlabel("time, s   (shaded: true gestures; triangles: detections; red x: false alarms)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="a small, fast run (for the test suite)"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/earbud"))
    parser.add_argument("--core", default="cortex-m4")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    print("== 1. simulating users")
    paths = make_data(cfg, out)
    for part, p in paths.items():
        data = np.load(p)
        print(
            f"{part:>5}: {len(data['y'])} windows of {data['X'].shape[1]} channels x {data['X'].shape[2]} samples"
        )

    print("\n== 2. training")
    recipe = dict(
        val_data=paths["val"], epochs=cfg.epochs, widths=cfg.widths, first_weights="int8",
        pool=2, kernel_size=5,  # the architecture the README and benchmarks/kernels.py measure
        batch_size=64, seed=cfg.seed, progress=not args.quick,
        padding="valid",  # no padding: the model streams exactly (tinybnn train --streaming)
        threads=1,  # the README's figures were measured so; 2 threads sum in another order
    )  # fmt: skip
    tinybnn.train(paths["train"], out=out / "model.pt", **recipe)
    print("full-precision twin (same layers, float weights and activations):")
    twin = tinybnn.train(paths["train"], twin=True, **recipe).model
    model = tinybnn.load(out / "model.pt")
    print(tinybnn.summary(model))
    test = np.load(paths["test"])
    ev = evaluate(model, test["X"], test["y"])
    ev_twin = evaluate(twin, test["X"], test["y"])
    print(
        f"\nwindow accuracy on {cfg.users[2]} unseen users: BNN {ev.accuracy:.1%}, "
        f"full-precision twin {ev_twin.accuracy:.1%}"
    )
    print(per_class_table(ev.confusion))
    confusion_png(
        ev.confusion, out / "confusion_test_users.png", f"BNN on unseen users: {ev.accuracy:.1%}"
    )

    print(f"\n== 3. compiling for {args.core}")
    c_dir = out / "c"
    command = (
        f"tinybnn compile {out / 'model.pt'} -o {c_dir} --name {NAME} --target {args.core} "
        f"--flash-budget {FLASH_BUDGET} --streaming"
    )
    compiled = tinybnn.compile(
        out / "model.pt", c_dir, NAME, command=command, target=args.core,
        flash_budget=FLASH_BUDGET, streaming=True,
    )  # fmt: skip
    print(compiled.report())
    stream = compiled.cmodel.stream
    print(
        f"streaming: a decision every {stream.plan.hop} samples "
        f"({1000 * stream.plan.hop / sim.RATE_HZ:.0f} ms), state {stream.state_bytes} B"
    )

    print(
        f"\n== 4. firmware on {args.core} under QEMU: {cfg.stream_s:.0f} s stream of an unseen user"
    )
    x, times, gestures, activities = sim.make_stream(cfg.stream_s, seed=cfg.seed + 1000)
    write_stream(c_dir, x)
    have_arm = shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")
    stream_exe, windowed_exe = build_host(c_dir), build_host(c_dir, windowed=True)
    host_events = run_host(stream_exe, x)
    if have_arm:
        events, output = run_firmware(c_dir, out / "build", args.core)
        for sample, cls in events:
            print(f"  t = {times[sample]:6.2f} s   {sim.CLASSES[cls]}")
        print("  " + output.strip().splitlines()[-1])
        same = events == host_events
        print(f"  host build of the same loop reports the same detections: {same}")
    else:
        print(
            "  (arm-none-eabi-gcc or qemu-system-arm missing: the host build of the loop stands in)"
        )
        events, same = host_events, True

    print("\n== 5. detections against the ground truth")
    sc = score(events, times, gestures)
    print(sc.table)
    rate = sc.false_alarms / sc.none_minutes if sc.none_minutes else float("nan")
    print(
        f"false alarms: {sc.false_alarms} in {sc.none_minutes:.2f} min of 'none' = {rate:.2f} per minute"
    )
    print(
        f"\nfield test on the host: {cfg.field_users} fresh users x {cfg.field_s:.0f} s "
        f"(simulator.make_stream, seeds {FIELD_SEEDS[0]}-{FIELD_SEEDS[cfg.field_users - 1]}), "
        "the same model in both loops"
    )
    print(field_table({
        "streaming": field_test(stream_exe, cfg),
        "windowed, every 50 ms": field_test(windowed_exe, cfg),
    }))  # fmt: skip

    if have_arm:
        print(f"\n== 6. cost on {args.core}, as built (--flash-budget {FLASH_BUDGET})")
        for core in dict.fromkeys([args.core, "cortex-m0"]):
            s = profile_stream(
                out / "model.pt", core=core, name=NAME, rate_hz=sim.RATE_HZ,
                flash_budget=FLASH_BUDGET,
            )  # fmt: skip
            if core == args.core:
                print(s.windowed.format() + "\n")
            w = s.windowed
            every_50ms = w.instructions * sim.RATE_HZ / 5
            print(s.format())
            print(
                f"the windowed loop (a window every 50 ms): {every_50ms:,.0f} instructions per "
                f"second of signal, {every_50ms / s.per_second:.1f}x the streaming loop's; "
                f"RAM: state {s.state_bytes} B against arena {w.arena_bytes} B + the window "
                f"of samples {2 * sim.WINDOW * len(sim.CHANNELS)} B\n"
            )
    stream_png(out / "stream.png", x, times, gestures, activities, sc.detections)
    print(
        f"\n== 7. wrote {out / 'stream.png'}, {out / 'confusion_test_users.png'}, {out / 'model_curves.png'}"
    )
    print(f"demo took {time.perf_counter() - start:.0f} s")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
