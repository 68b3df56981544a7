"""Does bfloat16 cost accuracy? The same training runs in float32 and in mixed bfloat16.

The figure behind `--mixed_precision=auto` (bfloat16 where the CPU multiplies bfloat16 matrices in
hardware): `training/cifar10.py` trains the same net on the same images with the same seeds,
once per precision, alternating, and this script reports each run's test error and speed and the
difference of the mean test errors against the spread over seeds. Mixed bfloat16 keeps float32
weights, optimizer state and batch-norm statistics; only the layers' computations round to
bfloat16 (keras.mixed_precision).

    python benchmarks/bfloat16_accuracy.py --json=runs/bfloat16_accuracy.json     # the check
    python benchmarks/bfloat16_accuracy.py --quick --json=/tmp/bf16.json          # smoke test

Runs go to --model_dir_root/PRECISION-seedN; a finished run is read back, an interrupted one
resumes from its checkpoint (the trainer's contract), so restarting the script loses nothing.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from absl import app, flags

REPO = Path(__file__).resolve().parent.parent
TRAINER = REPO / "training" / "cifar10.py"
PRECISIONS = ("none", "bfloat16")

FLAGS = flags.FLAGS


class BenchmarkError(RuntimeError):
    """A run that failed or left no results; the message says which and why."""


def run_flags(precision: str, seed: int, settings: dict) -> list[str]:
    return ["--dataset=fashion_mnist", "--data_source=files", "--train_on_all",
            f"--model={settings['net']}", f"--mixed_precision={precision}", f"--seed={seed}",
            f"--max_train_examples={settings['train_examples']}",
            f"--max_test_examples={settings['test_examples']}",
            f"--epochs={settings['epochs']}", f"--batch_size={settings['batch_size']}",
            "--verbose=2"]


def train(precision: str, seed: int, settings: dict, root: Path, timeout_s: int) -> dict:
    """One run's results.json (training it first unless it finished before)."""
    model_dir = root / f"{precision}-seed{seed}"
    args = [sys.executable, str(TRAINER), *run_flags(precision, seed, settings),
            f"--model_dir={model_dir}"]
    start = time.time()
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise BenchmarkError(f"{' '.join(args)} exited with {done.returncode}:\n"
                             f"{done.stderr[-3000:]}")
    results = json.loads((model_dir / "results.json").read_text())
    print(f"{precision} seed {seed}: test error {100 * results['test_error']:.2f}%, "
          f"{results['images_per_s']:.0f} images/s ({time.time() - start:.0f} s)", flush=True)
    return {"precision": precision, "seed": seed, "test_error": results["test_error"],
            "test_loss": results["test_loss"], "images_per_s": results["images_per_s"],
            "train_wall_s": results["train_wall_s"], "steps": results["steps"],
            "resolved_precision": results.get("mixed_precision", precision),
            "model_dir": str(model_dir)}


def summarize(rows: list[dict]) -> dict:
    """Mean test error per precision, its difference, and the spread over seeds."""
    summary = {}
    for precision in PRECISIONS:
        errors = [r["test_error"] for r in rows if r["precision"] == precision]
        speeds = [r["images_per_s"] for r in rows if r["precision"] == precision]
        if errors:
            summary[precision] = {
                "mean_test_error": statistics.fmean(errors),
                "seed_range": max(errors) - min(errors),
                "median_images_per_s": statistics.median(speeds)}
    if len(summary) == 2:
        summary["bfloat16_minus_float32"] = (summary["bfloat16"]["mean_test_error"]
                                             - summary["none"]["mean_test_error"])
        summary["bfloat16_speedup"] = (summary["bfloat16"]["median_images_per_s"]
                                       / summary["none"]["median_images_per_s"])
        summary["largest_seed_range"] = max(summary[p]["seed_range"] for p in PRECISIONS)
    return summary


def markdown(result: dict) -> str:
    s = result["settings"]
    lines = [
        f"{s['net']} on {s['train_examples']:,} Fashion-MNIST training images, "
        f"{s['epochs']} epoch{'' if s['epochs'] == 1 else 's'} of batch {s['batch_size']}, "
        f"tested on {s['test_examples']:,}; "
        "the same seeds in both precisions.",
        "",
        "| precision | seed | test error | images/s | training s |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in result["runs"]:
        name = "float32" if r["precision"] == "none" else "mixed bfloat16"
        lines.append(f"| {name} | {r['seed']} | {100 * r['test_error']:.2f}% | "
                     f"{r['images_per_s']:.0f} | {r['train_wall_s']:.0f} |")
    summary = result["summary"]
    if "bfloat16_minus_float32" in summary:
        lines += ["", (f"Mean test error: float32 {100 * summary['none']['mean_test_error']:.2f}%, "
                       f"mixed bfloat16 {100 * summary['bfloat16']['mean_test_error']:.2f}% "
                       f"({100 * summary['bfloat16_minus_float32']:+.2f} points; the seeds of one "
                       f"precision spread over up to {100 * summary['largest_seed_range']:.2f} "
                       f"points). Training speed: bfloat16 {summary['bfloat16_speedup']:.2f}x "
                       "float32 (median images/s of the runs).")]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    del argv
    if not FLAGS.seeds or not all(s.lstrip("-").isdigit() for s in FLAGS.seeds):
        print(f"error: --seeds={','.join(FLAGS.seeds)}: need a comma-separated list of integers",
              file=sys.stderr)
        return 2
    settings = {"net": FLAGS.net, "seeds": [int(s) for s in FLAGS.seeds],
                "train_examples": FLAGS.train_examples, "test_examples": FLAGS.test_examples,
                "epochs": FLAGS.epochs, "batch_size": FLAGS.batch_size}
    if FLAGS.quick:
        settings.update(seeds=[0], train_examples=256, test_examples=128, epochs=1, batch_size=64)
    root = Path(FLAGS.model_dir_root)
    if FLAGS.quick:
        root = root / "quick"
    rows = []
    for seed in settings["seeds"]:
        for precision in PRECISIONS:  # alternated, so a drift of the machine hits both
            rows.append(train(precision, seed, settings, root, FLAGS.timeout_s))
    result = {"command": " ".join(["python", "benchmarks/bfloat16_accuracy.py", *sys.argv[1:]]),
              "settings": settings, "runs": rows, "summary": summarize(rows),
              "machine": machine()}
    Path(FLAGS.json).parent.mkdir(parents=True, exist_ok=True)
    Path(FLAGS.json).write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(result))
    return 0


def define_flags() -> None:
    """The script's absl flags (defined only when run as a script, not when imported for its
    markdown)."""
    flags.DEFINE_string("json", None, "Write the result here.", required=True)
    flags.DEFINE_string("model_dir_root", str(REPO / "runs" / "bfloat16_accuracy"),
                        "Each run's model_dir is MODEL_DIR_ROOT/PRECISION-seedN.")
    flags.DEFINE_string("net", "resnet20", "A CIFAR net of keras_resnet.")
    flags.DEFINE_list("seeds", ["0", "1"], "Seeds; each is trained once per precision.")
    flags.DEFINE_integer("train_examples", 20000, "Fashion-MNIST training images (of 60,000).",
                         lower_bound=1)
    flags.DEFINE_integer("test_examples", 10000, "Fashion-MNIST test images (of 10,000).",
                         lower_bound=1)
    flags.DEFINE_integer("epochs", 12, "Epochs; the lr is divided by 10 at 1/2 and 3/4 (Sec. 4.2).",
                         lower_bound=1)
    flags.DEFINE_integer("batch_size", 128, "Batch size (Sec. 4.2: 128).", lower_bound=1)
    flags.DEFINE_integer("timeout_s", 7200, "Seconds one training run may take.", lower_bound=1)
    flags.DEFINE_bool("quick", False, "Tiny runs (256 images, 1 epoch, 1 seed) for the smoke test.")


def machine() -> dict:
    """The platform, CPU model and the CPU's bfloat16 features (`runtime.bfloat16_hardware`'s),
    from `runtime.machine`."""
    from keras_resnet import runtime

    host = runtime.machine()
    return {"platform": host["platform"], "cpu": host["cpu"],
            "cpu_flags": [f for f in host["cpu_flags"] if f.startswith(("avx512_bf16", "amx"))]}


if __name__ == "__main__":
    define_flags()
    app.run(main)
