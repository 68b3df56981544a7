"""Writes docs/performance.md from the latest full benchmark run and the records in results/.

    python docs/make_performance.py                        # the committed page, from its records
    python docs/make_performance.py --json=runs/speed.json --out=/tmp/performance.md
    python docs/make_performance.py --gpu_dir=runs/gpu     # adds benchmarks/gpu_suite.sh's tables
    python docs/make_performance.py --readme               # prints the README's Speed section

The page gives the machine, the goals and the tables of one full run of
`benchmarks/train_throughput.py`, then one line for each default that a measurement decided: the
decision, the measured ratio and the record it comes from. The records' own tables stay in the
records (results/README.md lists them); the page is generated, never typed by hand.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a file: the benchmarks package is at the repository root
    sys.path.insert(0, str(REPO))

from benchmarks import report  # noqa: E402
from benchmarks.goals import evaluate_goals  # noqa: E402
from performance_decisions import DECISIONS, Records, relative  # noqa: E402

RESULTS = REPO / "results" / "benchmarks"
LATEST_RUN = RESULTS / "speed_amx-xeon-2core.json"
DEFAULT_OUT = REPO / "docs" / "performance.md"
CONTENDERS = [
    ("- keras_resnet: `keras_resnet.get_model(net)` (CIFAR nets: option A shortcuts), SGD momentum "
     "0.9, `model.fit` (TensorFlow) or a jitted stateless step (JAX)."),
    ("- keras_resnet, Keras BN / strided-slice shortcut: the same net with Keras's own "
     "`BatchNormalization`, or with option A subsampling by `x[:, ::2, ::2, :]`: the figures "
     "behind `keras_resnet.layers.BatchNormalization` and `keras_resnet.layers.subsample`."),
    "- keras.applications: `keras.applications.ResNet50(weights=None)`, trained the same way.",
    ("- keras.io-style: the common hand-written Keras CIFAR ResNet v1 (Conv2D 'same' with bias, "
     "BatchNormalization, 1x1-conv projection shortcuts)."),
    ("- torchvision / pytorch: torchvision's `resnet50` and a CIFAR ResNet (option A), "
     "channels_last, `torch.optim.SGD` momentum 0.9, eager, in a separate process."),
    ("- Trainer: `training/cifar10.py` on real Fashion-MNIST in memory (augmentation, callbacks, "
     "per-epoch evaluation, checkpoints), against the bare `fit` plus `evaluate` of the same "
     "images."),
    ("- Serving: the SavedModel of `keras_resnet.export` (JPEG bytes in, BN folded into the "
     "convolutions), against keras.applications' ResNet50 exported the same way."),
]
METHOD = ("Contenders alternate round by round in one run on one machine; the tables give "
          "medians of the rounds. GFLOP/s = images/s x multiply-adds per image "
          "(`keras_resnet.count_flops`) x 2 x 3 (forward and backward); '% of limit' divides by "
          "the best framework's float32 matrix multiply, measured in the same rounds as each net, "
          "so bfloat16 rows can pass 100%.")


def cpu_name(result: dict) -> str:
    """'2-core Intel(R) Xeon(R) Processor with AMX': cores, model and its bfloat16 units."""
    m = result["machine"]
    flags = m.get("cpu_flags", [])
    units = (" with AMX" if "amx_bf16" in flags else
             " with AVX512-BF16" if "avx512_bf16" in flags else "")
    return f"{m['cpu_count']}-core {m.get('cpu', 'unknown CPU')}{units}"


def machine_text(result: dict) -> list[str]:
    """Who measured what where: CPU, cores, memory, versions, the command, the load."""
    m = result["machine"]
    lines = [f"- CPU: {m.get('cpu', 'unknown')}, {m['cpu_count']} cores"
             + (f", {m['memory_gib']} GiB memory" if "memory_gib" in m else ""),
             f"- CPU vector features: {', '.join(m.get('cpu_flags', [])) or 'unknown'}",
             f"- OS: {m['platform']}, Python {m['python']}"]
    for framework, info in result.get("versions", {}).items():
        lines.append(f"- {framework} worker: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    start, end = m["load_average_start"][0], m.get("load_average_end", [float("nan")])[0]
    lines.append(f"- 1-minute load average: {start:.2f} at the start, {end:.2f} at the end")
    if max(start, end) > 0.5:
        lines.append(f"- **Warning**: the machine was not idle (load above 0.5 on {m['cpu_count']} "
                     "cores): absolute figures are low and noisy; ratios within the run hold.")
    if result.get("settings", {}).get("quick"):
        lines.append("- **Warning**: a `--quick` run (tiny batches, one step per round): a smoke "
                     "test, not a measurement.")
    lines.append(f"- Command: `{result.get('command', 'python benchmarks/train_throughput.py')}`")
    return lines + [f"- {note}" for note in result.get("notes", [])]


def goals_table(result: dict) -> list[str]:
    """The goals in the run's goal precision, with float32's beside them where it differs."""
    precision = result.get("goal_precision", "float32")
    float32 = {g["key"]: g for g in result.get("goals_float32", [])}
    header = f"| goal | target | {precision} | met |" + (" float32 | met |" if float32 else "")
    lines = [header, "|---|---|---:|---|" + ("---:|---|" if float32 else "")]
    def figures(goal: dict) -> str:
        return f" {goal['value']:.2f} | {'yes' if goal['met'] else '**no**'} |"

    for g in result["goals"]:
        other = figures(float32[g["key"]]) if g["key"] in float32 else ""
        lines.append(f"| {g['goal']} | {g['target']} |{figures(g)}{other}")
    return lines


def limit_line(result: dict) -> str:
    """The matmul limit in one sentence: at the run's start and in the nets' rounds."""
    best = result["machine_limit"]
    limit = result["limit"]
    others = ", ".join(f"{framework} {dtype} {row['gflops']:.0f}"
                       for framework, by_dtype in limit.items() for dtype, row in by_dtype.items()
                       if (framework, dtype) != (best["framework"], best["dtype"]))
    rounds = [row["gflops"] for row in result.get("training_limits", {}).values()]
    during = f", {min(rounds):.0f}-{max(rounds):.0f} in the nets' rounds" if rounds else ""
    return (f"The limit: {best['framework']}'s {best['dtype']} matmul, {best['gflops']:.0f} "
            f"GFLOP/s at the run's start{during} (other matmuls: {others}).")




def op_profile_line(name: str, profile: dict) -> str:
    """A benchmarks/op_profile.py record in one line: its three largest op types."""
    top = ", ".join(f"{op['op_type']} {op['percent']:.0f}%" for op in profile["ops"][:3])
    return (f"- Op time of {profile['net']} ({profile['precision']}) on {profile['cpu']}: {top} "
            f"(`{name}`).")


def onednn_kernels_line(name: str, kernels: dict) -> str:
    """A benchmarks/onednn_kernels.py record in one line: step and oneDNN ms, both frameworks."""
    figures = "; ".join(f"{framework} {f['step_ms']:.0f} ms a step, {f['onednn_ms_per_step']:.0f} "
                        f"in {f['executions_per_step']:.0f} oneDNN primitives"
                        for framework, f in kernels["frameworks"].items() if "step_ms" in f)
    threads = f", {kernels['tf_intra_op_threads']} intra-op thread" \
        if kernels.get("tf_intra_op_threads") else ""
    return (f"- oneDNN kernels of {kernels['net']} ({kernels['precision']}{threads}): {figures} "
            f"(`{name}`).")


def record_lines(records: Path) -> list[str]:
    """The profiling records and any other full run, one line each."""
    lines = []
    for path in sorted(records.glob("op-profile*.json")):
        lines.append(op_profile_line(relative(path), json.loads(path.read_text())))
    for path in sorted(records.glob("onednn-kernels*.json")):
        lines.append(onednn_kernels_line(relative(path), json.loads(path.read_text())))
    return lines


def headline(result: dict) -> list[str]:
    """The answer first: our nets against keras.applications and PyTorch, and the goals met."""
    precision = result.get("goal_precision", "float32")
    values = {g["key"]: g["value"] for g in result["goals"]}
    float32 = {g["key"]: g["value"] for g in evaluate_goals(result, "float32")}
    torch = [f"resnet{n}" for n in (20, 56, 110) if f"resnet{n}_over_torch" in values]
    lines = [f"On a {cpu_name(result)}, training in {precision} (the trainers' default there):"]
    if "resnet50_over_applications" in values:
        lines.append(f"- ResNet-50: {values['resnet50_over_applications']:.2f}x the speed of "
                     f"keras.applications' ResNet50 ({float32['resnet50_over_applications']:.2f}x "
                     "in float32).")
    if torch:
        ratios = "/".join(f"{values[f'{net}_over_torch']:.2f}" for net in torch)
        in_float32 = "/".join(f"{float32[f'{net}_over_torch']:.2f}" for net in torch)
        nets = "/".join(net.removeprefix("resnet") for net in torch)
        lines.append(f"- CIFAR ResNet-{nets}: {ratios}x PyTorch's speed ({in_float32}x in "
                     "float32).")
    if "serving_p50_ratio" in values:
        lines.append(f"- Serving ResNet-50: batch-1 p50 latency {values['serving_p50_ratio']:.2f}x "
                     "keras.applications'.")
    met = sum(g["met"] for g in result["goals"])
    lines.append(f"- Goals met: {met} of {len(result['goals'])}.")
    return lines


def readme_speed(result: dict, run_path: Path) -> str:
    """The README's Speed section: the headline, how it is measured and where the rest is,
    wrapped at 100 columns like the README."""
    how = (f"From `{relative(run_path)}` (`benchmarks/train_throughput.py`, contenders alternated "
           "round by round); the tables: [docs/performance.md](docs/performance.md).")
    lines = ["## Speed", "", *headline(result), "", how]
    return "".join(textwrap.fill(line, 100, break_on_hyphens=False, break_long_words=False,
                                 subsequent_indent="  " if line.startswith("- ") else "") + "\n"
                   for line in lines)


def page(result: dict, run_path: Path, records: Path = RESULTS,
         gpu_dir: Path | None = None) -> str:
    """docs/performance.md: the headline, machine, goals and tables of one full run, then one
    line per default and per profiling record."""
    r = Records(result, run_path, records)
    lines = ["# Performance", "",
             (f"Generated by `python docs/make_performance.py` from `{relative(run_path)}` and the "
              "records it names; do not edit by hand. Every record: "
              "[results/README.md](../results/README.md)."), "",
             *headline(result), "", "## Machine", "", *machine_text(result), "",
             "## Goals", "", *goals_table(result), "",
             "## Tables", "", METHOD, "", limit_line(result), *report.training_table(result),
             *report.trainer_table(result), *report.serving_table(result),
             *report.pipeline_table(result), "",
             "## The defaults and the figures behind them", "",
             *filter(None, (decision(r) for decision in DECISIONS)), "",
             "## Profiles", "", *record_lines(records), "",
             "## Contenders", "", *CONTENDERS]
    if gpu_dir is not None:
        lines += gpu_text(gpu_dir)
    return "\n".join(lines).rstrip() + "\n"


def gpu_text(gpu_dir: Path) -> list[str]:
    """The GPU suite's tables: training per batch size and the timed ResNet-20 schedule."""
    lines = ["", "## GPU suite (`bash benchmarks/gpu_suite.sh`)", ""]
    runs = sorted(gpu_dir.glob("train_batch*.json"),
                  key=lambda p: int(p.stem.removeprefix("train_batch")))
    if not runs:
        return lines + [f"No results in {gpu_dir}."]
    for path in runs:
        result = json.loads(path.read_text())
        lines += [f"### Batch {path.stem.removeprefix('train_batch')}", "", *machine_text(result),
                  *report.training_table(result), *report.goals_tables(result), ""]
    schedule = gpu_dir / "resnet20_schedule.json"
    if schedule.exists():
        s = json.loads(schedule.read_text())
        lines += ["### ResNet-20, the paper's full CIFAR schedule (training/cifar10.py, JAX)", "",
                  (f"{s['steps']} steps in {s['train_wall_s']:.0f} s of training "
                   f"({s['command_wall_s']:.0f} s for the whole command), {s['images_per_s']:.0f} "
                   f"images/s, test error {s['test_error']}; goal: under 300 s.")]
    return lines


def read_result(path: Path) -> dict:
    """A full train_throughput run's JSON, or ValueError naming the file and what is wrong."""
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"--json={path}: {error}") from None
    missing = [key for key in ("machine", "limit", "goals") if key not in result]
    if missing:
        raise ValueError(f"--json={path} lacks {missing}: not a train_throughput.py result")
    return result


def main(argv: list[str]) -> int:
    from absl import flags

    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    run_path = Path(flags.FLAGS.json)
    try:
        result = read_result(run_path)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if flags.FLAGS.readme:
        print(readme_speed(result, run_path), end="")
        return 0
    gpu_dir = Path(flags.FLAGS.gpu_dir) if flags.FLAGS.gpu_dir else None
    if gpu_dir is not None and not gpu_dir.is_dir():
        print(f"error: --gpu_dir={gpu_dir} is not a directory", file=sys.stderr)
        return 2
    out = Path(flags.FLAGS.out)
    out.write_text(page(result, run_path, Path(flags.FLAGS.results_dir), gpu_dir))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("json", str(LATEST_RUN), "The full run of benchmarks/train_throughput.py.")
    flags.DEFINE_string("results_dir", str(RESULTS), "The records the defaults' lines cite.")
    flags.DEFINE_string("gpu_dir", None, "OUT_DIR of benchmarks/gpu_suite.sh, if it ran.")
    flags.DEFINE_string("out", str(DEFAULT_OUT), "The page to write.")
    flags.DEFINE_bool("readme", False, "Print the README's Speed section instead of the page.")
    app.run(main)
