"""Writes docs/performance.md from the JSON of benchmarks/train_throughput.py (and the GPU suite's).

    python benchmarks/train_throughput.py --json=runs/speed.json
    python docs/make_performance.py --json=runs/speed.json [--gpu_dir=runs/gpu] [--out=docs/performance.md]
        [--settings_json=runs/speed_xla.json,...]   # further runs that compare settings (e.g. XLA)

The page names the machine, the command and the load during the run, and backs every default
with the figures of the run it came from; it is generated, never typed by hand.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "docs" / "performance.md"
CONTENDERS = [
    ("- keras_resnet: `keras_resnet.get_model(net)` (CIFAR nets: option A shortcuts), compiled with "
     "SGD momentum 0.9 and trained with `model.fit` (TensorFlow) or a jitted stateless step (JAX)."),
    ("- keras_resnet, Keras BN: the same net with Keras's own `BatchNormalization` in place of "
     "`keras_resnet.layers.BatchNormalization` (which runs TensorFlow's fused kernel): the figure "
     "behind that layer."),
    "- keras.applications: `keras.applications.ResNet50(weights=None)`, trained the same way.",
    ("- keras.io-style: the common hand-written Keras CIFAR ResNet v1 (Conv2D 'same' with bias, "
     "BatchNormalization, 1x1-conv projection shortcuts), trained the same way."),
    ("- torchvision / pytorch: torchvision's `resnet50` and a CIFAR ResNet (option A) written in the "
     "benchmark, channels_last, `torch.optim.SGD` momentum 0.9, eager, in a separate process."),
    ("- Trainer: `training/cifar10.py` on real Fashion-MNIST in memory (augmentation, callbacks, "
     "per-epoch validation and test evaluation, checkpoints), timed from its metrics.csv after the first "
     "epoch, against the bare `fit` step of the same net (mean layer, weight decay) in the benchmark."),
    ("- Serving: `keras_resnet.export.export_saved_model` of our ResNet-50 and of keras.applications' "
     "(the same signature: JPEG bytes, 1-crop preprocessing, net), loaded with `tf.saved_model.load`."),
]


def load_benchmark():
    """benchmarks/train_throughput.py as a module (its markdown tables and goals)."""
    spec = importlib.util.spec_from_file_location("train_throughput",
                                                  REPO / "benchmarks" / "train_throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def machine_text(result: dict) -> list[str]:
    """Who measured what where: CPU, cores, memory, versions, the command, the load."""
    m = result["machine"]
    versions = result.get("versions", {})
    lines = [f"- CPU: {m.get('cpu', 'unknown')}, {m['cpu_count']} cores"
             + (f", {m['memory_gib']} GiB memory" if "memory_gib" in m else ""),
             f"- CPU vector features: {', '.join(m.get('cpu_flags', [])) or 'unknown'}",
             f"- OS: {m['platform']}, Python {m['python']}"]
    for framework, info in versions.items():
        lines.append(f"- {framework} worker: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    start, end = m["load_average_start"][0], m.get("load_average_end", [float("nan")])[0]
    lines.append(f"- 1-minute load average: {start:.2f} at the start, {end:.2f} at the end")
    if max(start, end) > 0.5:
        lines.append(f"- **Warning**: the machine was not idle (load above 0.5 on {m['cpu_count']} "
                     "cores): other processes shared the CPU, so absolute figures are low and noisy; "
                     "only ratios within this run mean anything.")
    if result.get("settings", {}).get("quick"):
        lines.append("- **Warning**: a `--quick` run (tiny batches, one step per round): a smoke test, "
                     "not a measurement.")
    lines.append(f"- Command: `{result.get('command', 'python benchmarks/train_throughput.py')}`")
    for note in result.get("notes", []):
        lines.append(f"- {note}")
    return lines


def variant_choices(result: dict) -> list[str]:
    """For each net and implementation measured in several variants (precision, XLA), the fastest."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for row in result.get("training", []):
        groups.setdefault((row["net"], row["implementation"], row["framework"]), []).append(row)
    lines = []
    for (net, implementation, framework), rows in groups.items():
        if len(rows) < 2:
            continue
        rows = sorted(rows, key=lambda r: -r["images_per_s"])
        best = rows[0]
        others = "; ".join(f"{r['precision']}, XLA {'on' if r['xla'] else 'off'}: "
                           f"{r['images_per_s']:.1f} ({r['images_per_s'] / best['images_per_s']:.2f}x)"
                           for r in rows[1:])
        lines.append(f"- {net}, {implementation} on {framework}: fastest is {best['precision']}, XLA "
                     f"{'on' if best['xla'] else 'off'} at {best['images_per_s']:.1f} images/s; {others}")
    return lines


def fused_batch_norm_gain(result: dict) -> list[str]:
    """Ours over ours-with-Keras-BN, per net and precision: why the model uses the fused kernel."""
    rows = {(r["net"], r["impl"], r["precision"], r["xla"]): r for r in result.get("training", [])
            if r["framework"] == "tensorflow"}
    lines = []
    for (net, impl, precision, xla), row in rows.items():
        keras_bn = rows.get((net, "ours_keras_bn", precision, xla))
        if impl == "ours" and keras_bn:
            lines.append(f"- {net}, {precision}, XLA {'on' if xla else 'off'}: fused BN "
                         f"{row['images_per_s']:.1f} images/s, Keras BN {keras_bn['images_per_s']:.1f}: "
                         f"{row['images_per_s'] / keras_bn['images_per_s']:.2f}x")
    return lines


def gpu_text(benchmark, gpu_dir: Path) -> list[str]:
    """The GPU suite's tables: training per batch size and the timed ResNet-20 schedule."""
    lines = ["", "## GPU suite (`bash benchmarks/gpu_suite.sh`)", ""]
    runs = sorted(gpu_dir.glob("train_batch*.json"), key=lambda p: int(p.stem.removeprefix("train_batch")))
    if not runs:
        return lines + [f"No results in {gpu_dir}."]
    for path in runs:
        result = json.loads(path.read_text())
        lines += [f"### Batch {path.stem.removeprefix('train_batch')}", ""]
        lines += machine_text(result)
        lines += ["", benchmark.markdown(result)]
    schedule = gpu_dir / "resnet20_schedule.json"
    if schedule.exists():
        s = json.loads(schedule.read_text())
        lines += ["### ResNet-20, the paper's full CIFAR schedule (training/cifar10.py, JAX)", "",
                  (f"{s['steps']} steps in {s['train_wall_s']:.0f} s of training "
                   f"({s['command_wall_s']:.0f} s for the whole command), {s['images_per_s']:.0f} "
                   f"images/s, test error {s['test_error']}; goal: under 300 s.")]
    return lines


def settings_text(benchmark, result: dict) -> list[str]:
    """A further run that compares settings of the same contenders (its own machine and command)."""
    lines = ["", f"## Settings run: `{result.get('command', 'python benchmarks/train_throughput.py')}`",
             ""]
    lines += machine_text(result)
    lines += ["", benchmark.markdown(result).split("### CIFAR trainer")[0].rstrip(), ""]
    return lines + variant_choices(result)


DEFAULTS = [
    ("- Batch normalization: `keras_resnet.layers.BatchNormalization` runs TensorFlow's fused "
     "kernel in every model on the TensorFlow backend (section *Batch normalization* below: the "
     "same net with Keras's own layer)."),
    ("- XLA: off on TensorFlow (`--jit_compile` default false, also Keras's own choice on "
     "CPU-only machines), on for JAX (always compiled); a settings run (`--settings_json`, section "
     "*Settings run* where present) compares both."),
    ("- Precision: float32 (`--mixed_precision=none`). bfloat16 is measured by a settings run "
     "where present; it stays opt-in (`--mixed_precision=bfloat16`) because it changes the paper's "
     "numerics and is fast only on CPUs with bfloat16 instructions (AVX512-BF16 / AMX)."),
    ("- Threads: TensorFlow's defaults (one intra-op thread per core); the benchmark's "
     "`--intra_op_threads` / `--inter_op_threads` exist to compare others."),
    ("- Evaluation: every epoch on the validation and test splits (the curves of Fig. 6); the "
     "trainer table gives the overhead with and without it."),
]


def page(result: dict, gpu_dir: Path | None = None, settings_runs: tuple[dict, ...] = ()) -> str:
    benchmark = load_benchmark()
    intro = ("Generated by `python docs/make_performance.py` from the JSON of "
             "`benchmarks/train_throughput.py`; do not edit by hand. Contenders were alternated round "
             "by round in one run on one machine and the medians are shown. GFLOP/s = images/s x "
             "multiply-adds per image (`keras_resnet.count_flops`) x 2 x 3 (forward and backward); "
             "the limit is the best framework's fp32 matrix multiply measured in the same run.")
    lines = ["# Performance", "", intro, "", "## Machine", ""]
    lines += machine_text(result)
    lines += ["", "## Contenders", "", *CONTENDERS, "", "## The trainers' defaults", "", *DEFAULTS,
              "", "## Results", "", benchmark.markdown(result)]
    fused = fused_batch_norm_gain(result)
    if fused:
        lines += ["## Batch normalization: TensorFlow's fused kernel against Keras's", "", *fused, ""]
    choices = variant_choices(result)
    if choices:
        lines += ["## Settings compared in this run", "", *choices]
    for settings_run in settings_runs:
        lines += settings_text(benchmark, settings_run)
    if gpu_dir is not None:
        lines += gpu_text(benchmark, gpu_dir)
    return "\n".join(lines).rstrip() + "\n"


def read_result(flag: str, path: Path) -> dict:
    """A train_throughput.py JSON, or ValueError naming the flag, the file and what is wrong."""
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{flag}={path}: {error}") from None
    missing = [key for key in ("machine", "limit", "goals") if key not in result]
    if missing:
        raise ValueError(f"{flag}={path} lacks {missing}: not a train_throughput.py result")
    return result


def main(argv: list[str]) -> int:
    from absl import flags

    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    try:
        result = read_result("--json", Path(flags.FLAGS.json))
        settings_runs = tuple(read_result("--settings_json", Path(p)) for p in flags.FLAGS.settings_json)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    gpu_dir = Path(flags.FLAGS.gpu_dir) if flags.FLAGS.gpu_dir else None
    if gpu_dir is not None and not gpu_dir.is_dir():
        print(f"error: --gpu_dir={gpu_dir} is not a directory", file=sys.stderr)
        return 2
    out = Path(flags.FLAGS.out)
    out.write_text(page(result, gpu_dir, settings_runs))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("json", None, "JSON written by benchmarks/train_throughput.py.", required=True)
    flags.DEFINE_list("settings_json", [], "Further train_throughput.py JSONs that compare settings.")
    flags.DEFINE_string("gpu_dir", None, "OUT_DIR of benchmarks/gpu_suite.sh, if it ran.")
    flags.DEFINE_string("out", str(DEFAULT_OUT), "The page to write.")
    app.run(main)
