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


def relative(path: Path) -> str:
    """`path` as the page names it: from the repository root where it lies inside it."""
    path = path.resolve()
    return path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)


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


def rate(result: dict, net: str, impl: str, precision: str, xla: bool = False,
         framework: str | None = None) -> float | None:
    """Training images/s of one contender of a run, or None where it did not run."""
    for row in result.get("training", []):
        if (row["net"], row["impl"], row["precision"], row["xla"]) == (net, impl, precision, xla) \
                and framework in (None, row["framework"]):
            return row["images_per_s"]
    return None


def threads_rate(result: dict, setting: str, precision: str | None = None) -> float | None:
    """Images/s of a thread setting in a run's threads section (in `precision` if given)."""
    for row in result.get("threads", {}).get("rows", []):
        if row["setting"] == setting and precision in (None, row.get("precision")):
            return row["images_per_s"]
    return None


def span(ratios: list[float]) -> str:
    """'1.36x' or '1.20-1.70x': the range of some ratios."""
    low, high = min(ratios), max(ratios)
    return f"{low:.2f}x" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}-{high:.2f}x"


def run_precisions(result: dict) -> list[str]:
    """float32 and the trainers' precision of a run (once if they are the same)."""
    return list(dict.fromkeys(["float32", result.get("trainers_precision", "float32")]))


def net_ratios(result: dict, impl: str, other: str, precisions: list[str]) -> list[float]:
    """`impl` over `other` for every net and precision where both trained, XLA off."""
    nets = dict.fromkeys(r["net"] for r in result.get("training", []))
    pairs = [(rate(result, n, impl, p), rate(result, n, other, p))
             for n in nets for p in precisions]
    return [a / b for a, b in pairs if a and b]


class Records:
    """The full run and the records beside it (results/benchmarks), each cited by its path."""

    def __init__(self, run: dict, run_path: Path, folder: Path):
        self.run, self.run_path, self.folder = run, run_path, folder

    def load(self, name: str) -> dict:
        return json.loads((self.folder / name).read_text())

    def cite(self, *names: str) -> str:
        """The records `names` (file names in the folder; "" is the full run) as code spans."""
        paths = [self.run_path if not name else self.folder / name for name in names]
        return ", ".join(f"`{relative(path)}`" for path in paths)


# One function per default that a measurement decided: its line, or None where the full run
# lacks the section. Lines name the decision, the measured ratio and the record.

def batch_norm(r: Records) -> str | None:
    ratios = net_ratios(r.run, "ours", "ours_keras_bn", run_precisions(r.run))
    if not ratios:
        return None
    return (f"- BN: `keras_resnet.layers.BatchNormalization` trains with TensorFlow's fused "
            f"kernel, {span(ratios)} the speed of Keras's own layer over the nets "
            f"({r.cite('')}).")


def folding(r: Records) -> str | None:
    rows = {row["impl"]: row["p50_ms"] for row in r.run.get("serving", {}).get("rows", [])}
    if not {"ours", "ours_unfolded_bn", "ours_fused_inference_bn"} <= rows.keys():
        return None
    unfolded = rows["ours_unfolded_bn"]
    return (f"- Serving: `keras_resnet.export` folds BN into the convolutions, batch-1 p50 "
            f"{unfolded / rows['ours']:.2f}x as fast as BN in the graph. The BNs that cannot be "
            f"folded infer with Keras's affine; TensorFlow's fused kernel was "
            f"{unfolded / rows['ours_fused_inference_bn']:.2f}x as fast here, the affine faster "
            f"on CPUs without AVX-512 (the run of commit 9404fdf) ({r.cite('')}).")


def subsample(r: Records) -> str | None:
    nets = net_ratios(r.run, "ours", "ours_strided_shortcut", run_precisions(r.run))
    alone = {(row["kind"], tuple(row["shape"])): row["median_ms"]
             for row in r.run.get("shortcut", {}).get("rows", [])}
    ratios = [ms / alone[("keras_resnet", shape)] for (kind, shape), ms in alone.items()
              if kind == "strided_slice"]
    if not (nets and ratios):
        return None
    return (f"- Option A shortcut: `keras_resnet.layers.subsample` (reshape + slice), "
            f"{span(ratios)} as fast as the strided slice alone, {span(nets)} in the whole nets "
            f"({r.cite('')}).")


def autotune(r: Records) -> str | None:
    name = "speed-threads-autotune_avx512-xeon-2core.json"
    ratios = []
    for run in (r.run, r.load(name)):
        rows = run.get("autotune", {}).get("rows", [])
        fit_s = {row["autotune"]: row["median_fit_s"] for row in rows}
        ratios += [fit_s[True] / fit_s[False]] if len(fit_s) == 2 else []
    return (f"- tf.data: the trainers turn the autotuner off; whole `fit` calls took "
            f"{span(ratios)} as long with it on ({r.cite('', name)}).")


def xla(r: Records) -> str:
    names = ("speed-xla-bfloat16_avx512-xeon-2core.json", "speed-xla_zen4-epyc-2core.json")
    ratios = [rate(run, "resnet20", "ours", p, True) / rate(run, "resnet20", "ours", p)
              for run, p in zip(map(r.load, names), ("float32", "bfloat16"))]
    return (f"- XLA: off on TensorFlow; ResNet-20 trained at {ratios[0]:.2f}x with it (float32, "
            f"AVX-512 Xeon) and {ratios[1]:.2f}x (bfloat16, Zen 4 EPYC) ({r.cite(*names)}).")


def bfloat16_speedup(result: dict, net: str) -> float | None:
    """Our net's bfloat16 images/s over its float32 images/s in a run, XLA off."""
    bfloat16, float32 = (rate(result, net, "ours", p) for p in ("bfloat16", "float32"))
    return bfloat16 / float32 if bfloat16 and float32 else None


def mixed_precision(r: Records) -> str | None:
    name = "speed-xla-bfloat16_avx512-xeon-2core.json"
    nets = dict.fromkeys(row["net"] for row in r.run.get("training", []))
    here = [s for s in (bfloat16_speedup(r.run, net) for net in nets) if s]
    elsewhere = bfloat16_speedup(r.load(name), "resnet20")
    if not here:
        return None
    return (f"- Precision: `--mixed_precision=auto` trains in mixed bfloat16 on CPUs with bfloat16 "
            f"units, {span(here)} float32's speed on this one; float32 elsewhere (bfloat16: "
            f"{elsewhere:.2f}x on an AVX-512 Xeon without them) ({r.cite('', name)}).")


def accuracy(r: Records) -> str:
    names = ("bfloat16-accuracy_amx-xeon.json", "bfloat16-accuracy_zen4-epyc.json")
    runs = [r.load(name)["summary"] for name in names]
    errors = ", ".join(f"{100 * s['bfloat16']['mean_test_error']:.2f}% against "
                       f"{100 * s['none']['mean_test_error']:.2f}%" for s in runs)
    return (f"- bfloat16 and accuracy: ResNet-20 on Fashion-MNIST, mean test error of mixed "
            f"bfloat16 against float32: {errors} ({r.cite(*names)}).")


def fpmath(r: Records) -> str:
    names = ("speed-fpmath_amx-xeon-2core.json", "speed-fpmath-rerun_amx-xeon-2core.json",
             "speed-fpmath-control_amx-xeon-2core.json")
    runs = [r.load(name) for name in names]
    mode = "0x0:ONEDNN_DEFAULT_FPMATH_MODE=BF16"
    mixed = [threads_rate(run, mode, "bfloat16") / threads_rate(run, "0x0", "bfloat16")
             for run in runs]
    float32 = threads_rate(runs[0], mode, "float32")
    control = threads_rate(runs[2], "0x0:UNUSED_CONTROL=1") / threads_rate(runs[2], "0x0")
    return (f"- oneDNN's bfloat16 math mode: unset; float32 with it trained at "
            f"{float32 / threads_rate(runs[0], '0x0', 'float32'):.2f}x float32 but "
            f"{float32 / threads_rate(runs[0], '0x0', 'bfloat16'):.2f}x mixed bfloat16, and mixed "
            f"bfloat16 with it at {span(mixed)} (a control variable: {control:.2f}x) "
            f"({r.cite(*names)}).")


def onednn(r: Records) -> str | None:
    off, on = threads_rate(r.run, "0x0:TF_ENABLE_ONEDNN_OPTS=0"), threads_rate(r.run, "0x0")
    if not (off and on):
        return None
    return (f"- oneDNN: on (importing keras_resnet sets `TF_ENABLE_ONEDNN_OPTS=1` on x86-64); off, "
            f"ResNet-20 trained at {off / on:.2f}x ({r.cite('')}).")


def threads(r: Records) -> str:
    names = ("", "speed-threads_amx-xeon-2core.json", "speed-threads-rerun_amx-xeon-2core.json",
             "speed-threads-inline_amx-xeon-2core.json")
    best = {}
    for name in names:
        run = r.load(name) if name else r.run
        rows = [row for row in run.get("threads", {}).get("rows", [])
                if row["setting"] != "0x0" and not row.get("environment")]
        if rows:
            top = max(rows, key=lambda row: row["images_per_s"])
            ratio = top["images_per_s"] / threads_rate(run, "0x0")
            best[name] = f"{top['setting']} {ratio:.2f}x"
    return (f"- Threads: TensorFlow's defaults (0x0: one thread per core in each pool); the best "
            f"other INTERxINTRA setting of each run, in the order cited: "
            f"{', '.join(best.values())} ({r.cite(*best)}).")


def onednn_options(r: Records) -> str:
    name = "speed-onednn-env_amx-xeon-2core.json"
    run = r.load(name)
    ratios = [row["images_per_s"] / threads_rate(run, "0x0") for row in run["threads"]["rows"]
              if row["setting"] != "0x0"]
    return (f"- oneDNN options (`TF_ONEDNN_THREADPOOL_USE_CALLER_THREAD`, "
            f"`TF_ONEDNN_USE_SYSTEM_ALLOCATOR`, `ONEDNN_MAX_CPU_ISA`): unset; each trained at "
            f"{span(ratios)} ({r.cite(name)}).")


def data_format(r: Records) -> str:
    name = "speed-data-format_amx-xeon-2core.json"
    ratios = net_ratios(r.load(name), "reference", "reference_channels_first",
                        ["float32", "bfloat16"])
    return (f"- Data format: channels_last only; the keras.io-style net trained {span(ratios)} as "
            f"fast in channels_last as in channels_first ({r.cite(name)}).")


def backend(r: Records) -> str:
    name = "speed-backends_amx-xeon-2core.json"
    run = r.load(name)
    ratios = [rate(run, "resnet20", "ours", p, False, "tensorflow")
              / rate(run, "resnet20", "ours", p, True, "jax") for p in ("float32", "bfloat16")]
    return (f"- Backend on CPUs: TensorFlow, {span(ratios)} JAX's speed on ResNet-20 (float32 and "
            f"bfloat16); JAX is the GPU suite's backend ({r.cite(name)}).")


def evaluation(r: Records) -> str | None:
    share = r.run.get("trainer", {}).get("evaluation_percent_of_epoch")
    if share is None:
        return None
    return (f"- Evaluation: every epoch on the validation and test splits, {share:.1f}% of the "
            f"trainer's epoch ({r.cite('')}).")


DECISIONS = (batch_norm, folding, subsample, autotune, xla, mixed_precision, accuracy, fpmath,
             onednn, threads, onednn_options, data_format, backend, evaluation)


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
    how = ("`benchmarks/train_throughput.py` measures training and serving against "
           "keras.applications, a hand-written Keras CIFAR ResNet and PyTorch in one run, "
           "alternating the contenders round by round; `python docs/make_performance.py` turns "
           "its record into [docs/performance.md](docs/performance.md) (the machine, the tables "
           f"and the figures behind each default), here from `{relative(run_path)}`. Every "
           "record: [results/](results/README.md).")
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
