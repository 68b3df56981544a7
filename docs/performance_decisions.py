"""The figures behind the trainers' defaults: one line per default a measurement decided.

Each line names the decision, the ratio computed from the record that decided it and that
record's path; docs/make_performance.py puts the lines on docs/performance.md. A default whose
record is the full run gets no line when the run lacks the section it needs.
"""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def relative(path: Path) -> str:
    """`path` as the page names it: from the repository root where it lies inside it."""
    path = path.resolve()
    return path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)



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


# One function per default: its line, or None where the full run lacks the section.


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
