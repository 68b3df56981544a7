"""The oneDNN kernels of a training step, our net on TensorFlow against the same net in PyTorch.

TensorFlow and PyTorch both run convolutions through oneDNN on the CPU, each its own build of it.
This runs train_throughput's contenders (our net, `fit` steps; its PyTorch CIFAR net or
torchvision's resnet50, channels_last, autocast for bfloat16) with oneDNN's verbose log on, one
worker process per framework, and times every oneDNN primitive the step executes: per primitive
kind and pass, in ms per step (the median execution of each shape times its executions per step),
each convolution shape side by side, and each reorder shape side by side (a small primitive's
time is mostly what running a primitive costs in that framework's threading). The convolutions
have the same shapes, data types and memory layouts in both, so what differs is oneDNN's version
and threading and what each framework runs outside oneDNN (PyTorch's batch normalization and
element-wise ops are its own kernels; TensorFlow's batch normalization is oneDNN's). TensorFlow
runs with one inter-op thread by default (--tf_inter_op_threads): its ops then run one at a time,
as PyTorch's do, and each primitive's time is its own, not shared with an op running beside it.
The verbose log slows both a little: the step times are under it.

    python benchmarks/onednn_kernels.py --net=resnet20 --json=runs/onednn_kernels.json
    python benchmarks/onednn_kernels.py --quick --json=/tmp/k.json     # smoke test
"""

from __future__ import annotations

import collections
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a file: the benchmarks package is at the repository root
    sys.path.insert(0, str(REPO))
FRAMEWORKS = ("tensorflow", "torch")
FRAMEWORK_LABELS = {"tensorflow": "TensorFlow (ours)", "torch": "PyTorch"}
PASSES = {
    "forward_training": "forward",
    "forward_inference": "forward",
    "backward_data": "backward data",
    "backward_weights": "backward weights",
    "backward": "backward",
    "undef": "",
}
# The parts of a convolution's problem string that are the same whichever way a framework pads
# (TensorFlow pads a strided convolution's input explicitly, PyTorch inside the convolution).
SHAPE_FIELDS = ("mb", "ic", "oc", "oh", "ow", "kh", "sh")


# ----------------------------------------------------------------- worker (one per framework)


def worker(framework: str, request: dict) -> None:
    """Build one contender, step it; oneDNN logs each primitive to stdout; results go to a file."""
    from benchmarks.workers import KerasWorker, TorchWorker

    if framework == "tensorflow":
        contender = KerasWorker({"backend": "tensorflow",
                                       "intra_op_threads": request["tf_intra_op_threads"],
                                       "inter_op_threads": request["tf_inter_op_threads"]})
        setup = dict(request, impl="ours", xla=False)
    else:
        contender = TorchWorker({"threads": 0, "torch_compile": False,
                                       "memory_format": "channels_last"})
        setup = dict(request, impl="torch")
    contender.setup_train(setup)  # warmup_steps, then one step
    seconds = contender.time({"id": request["id"], "steps": request["steps"]})["seconds"]
    sys.stdout.flush()
    elementwise = tf_elementwise if framework == "tensorflow" else torch_elementwise
    Path(request["out"]).write_text(
        json.dumps(
            {
                "steps_total": request["warmup_steps"] + 1 + request["steps"],
                "step_ms": 1e3 * seconds / request["steps"],
                "elementwise": {
                    dtype: elementwise(
                        request["elementwise_shape"], dtype, request["chain"], request["calls"]
                    )
                    for dtype in ("float32", "bfloat16")
                },
            }
        )
    )


def ms_per_op(call, chain: int, calls: int) -> float:
    """ms per op of `call`, which runs `chain` ops: one untimed call, then the median of `calls`."""
    call()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times) / chain


def tf_elementwise(shape: list[int], dtype: str, chain: int, calls: int) -> dict[str, float]:
    """ms per op of the step's element-wise ops on TensorFlow (Eigen kernels): `chain` dependent
    ops in one tf.function, graph rewrites off so that every op runs; median of `calls` calls.
    ReLU and its gradient are also timed as integer ops on the same-width integer view of the
    values (a float's sign survives in the signed integer), a way around Eigen's bfloat16
    arithmetic without a compiled op; they must give the same values as TensorFlow's ops."""
    import tensorflow as tf

    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    bits = {"float32": tf.int32, "bfloat16": tf.int16}[dtype]

    def relu_on_bits(a, b):
        return tf.bitcast(tf.maximum(tf.bitcast(a, bits), tf.constant(0, bits)), a.dtype)

    def relu_gradient_on_bits(a, b):  # a where b > 0, else 0
        passed = -tf.cast(tf.bitcast(b, bits) > 0, bits)  # all ones where b > 0
        return tf.bitcast(tf.bitwise.bitwise_and(tf.bitcast(a, bits), passed), a.dtype)

    ops = {"relu": lambda a, b: tf.nn.relu(a), "add": tf.add,
           "relu gradient": lambda a, b: tf.raw_ops.ReluGrad(gradients=a, features=b),
           "relu, integer view": relu_on_bits, "relu gradient, integer view": relu_gradient_on_bits}
    x, y = (tf.cast(tf.random.stateless_normal(shape, seed=[0, i]), dtype) for i in (1, 2))
    y = tf.nn.relu(y)  # the relu gradient's features: a relu's output
    for name in ("relu", "relu gradient"):
        if not bool(tf.reduce_all(ops[name](x, y) == ops[f"{name}, integer view"](x, y))):
            raise RuntimeError(f"{name}, integer view: differs from TensorFlow's {name} in {dtype}")
    result = {}
    for name, op in ops.items():
        @tf.function
        def chained(a, b, op=op):
            for _ in range(chain):
                a = op(a, b)
            return a

        result[name] = ms_per_op(lambda: chained(x, y).numpy(), chain, calls)
    return result


def torch_elementwise(shape: list[int], dtype: str, chain: int, calls: int) -> dict[str, float]:
    """ms per op of the same element-wise ops in PyTorch (channels_last), `chain` in a row."""
    import torch

    n, h, w, c = shape
    x, y = (torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(i)).to(
        getattr(torch, dtype)).contiguous(memory_format=torch.channels_last) for i in (1, 2))
    ops = {"relu": lambda a, b: torch.relu(a), "add": torch.add,
           "relu gradient": lambda a, b: torch.ops.aten.threshold_backward(a, b, 0)}

    def chained(op):
        a = x
        for _ in range(chain):
            a = op(a, y)

    return {name: ms_per_op(lambda op=op: chained(op), chain, calls) for name, op in ops.items()}


# ----------------------------------------------------------------- the oneDNN verbose log


def parse_verbose(lines) -> tuple[list[dict], dict]:
    """Executions in a oneDNN verbose log (v2 `onednn_verbose,exec,...` and v3
    `onednn_verbose,v1,primitive,exec,...` lines) as {kind, pass, impl, problem, ms}, and the log's
    info: oneDNN version and threading runtime."""
    executions, info = [], {}
    for line in lines:
        if not line.startswith(("onednn_verbose,", "dnnl_verbose,")):
            continue
        fields = line.rstrip("\n").split(",")
        if "info" in fields[1:4]:
            version = re.search(r"oneDNN (v[\d.]+)", line)
            runtime = re.search(r"runtime:(\w+),nthr:(\d+)", line)
            if version:
                info["version"] = version.group(1)
            if runtime and "cpu" in fields:
                info["runtime"], info["threads"] = runtime.group(1), int(runtime.group(2))
            continue
        if "exec" not in fields[1:4]:
            continue
        at = fields.index("exec")
        try:
            ms = float(fields[-1])
        except ValueError:
            continue
        executions.append({"kind": fields[at + 2], "impl": fields[at + 3],
                           "pass": PASSES.get(fields[at + 4], fields[at + 4]),
                           "problem": fields[-2], "ms": ms})
    return executions, info


def conv_shape(problem: str) -> str:
    """A convolution's problem string reduced to SHAPE_FIELDS (padding left out)."""
    values = dict(re.findall(r"([a-z]+)(\d+)", problem))
    return "_".join(f"{k}{values[k]}" for k in SHAPE_FIELDS if k in values)


def per_step(executions: list[dict], steps_total: int) -> dict:
    """ms per step by (kind, pass), per convolution shape and per reorder shape: each shape's median
    execution times its executions per step (medians leave out the first, slower executions); and
    the executions per step, all kinds."""
    by_shape = collections.defaultdict(list)
    for e in executions:
        key = (
            e["kind"],
            e["pass"],
            conv_shape(e["problem"]) if e["kind"] == "convolution" else e["problem"],
        )
        by_shape[key].append(e)
    kinds = collections.Counter()
    convolutions, reorders = [], []
    for (kind, pass_, shape), group in sorted(by_shape.items()):
        runs = len(group) / steps_total
        median_ms = statistics.median(e["ms"] for e in group)
        kinds[(kind, pass_)] += median_ms * runs
        if kind == "convolution":
            convolutions.append({"pass": pass_, "shape": shape, "per_step": runs,
                                 "median_ms": median_ms,
                                 "ms_per_step": median_ms * runs, "impl": collections.Counter(
                                     e["impl"] for e in group).most_common(1)[0][0]})
        if kind == "reorder":
            reorders.append({"shape": shape, "per_step": runs, "median_ms": median_ms})
    rows = [{"kind": kind, "pass": pass_, "ms_per_step": ms}
            for (kind, pass_), ms in sorted(kinds.items(), key=lambda item: -item[1])]
    return {"kinds": rows, "convolutions": convolutions, "reorders": reorders,
            "executions_per_step": len(executions) / steps_total,
            "onednn_ms_per_step": sum(kinds.values())}


# ----------------------------------------------------------------- orchestration and output


def measure(framework: str, python: str, request: dict, work: Path) -> dict:
    """One framework's worker under the verbose log; its per-step figures."""
    out = work / f"{framework}.json"
    log = work / f"{framework}.log"
    env = dict(
        os.environ,
        ONEDNN_VERBOSE="1",
        DNNL_VERBOSE="1",
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
    )
    with log.open("w") as stdout:
        completed = subprocess.run([python, __file__, "--worker", framework,
                                    json.dumps(dict(request, out=str(out)))],
                                   stdout=stdout, stderr=subprocess.PIPE, text=True, env=env,
                                   check=False, timeout=request["timeout"])
    if completed.returncode != 0:
        raise RuntimeError(f"{framework} worker failed (exit {completed.returncode}):\n"
                           f"{completed.stderr[-4000:]}")
    timing = json.loads(out.read_text())
    with log.open() as lines:
        executions, info = parse_verbose(lines)
    if not executions:
        raise RuntimeError(f"{framework}: no oneDNN executions in its verbose log ({log}); "
                           f"is oneDNN on? (TensorFlow: TF_ENABLE_ONEDNN_OPTS)")
    return {"python": python, "onednn": info, "step_ms": timing["step_ms"],
            "elementwise": timing["elementwise"], **per_step(executions, timing["steps_total"])}


def compared_convolutions(result: dict) -> list[dict]:
    """Convolution shapes of both frameworks side by side (by pass and SHAPE_FIELDS)."""
    frameworks = result["frameworks"]
    keyed = {name: {(c["pass"], c["shape"]): c for c in f["convolutions"]}
             for name, f in frameworks.items() if "convolutions" in f}
    keys = sorted(set().union(*(set(k) for k in keyed.values())))
    return [{"pass": key[0], "shape": key[1],
             **{name: keyed[name].get(key) for name in keyed}} for key in keys]


def markdown(result: dict) -> str:
    frameworks = {n: f for n, f in result["frameworks"].items() if "kinds" in f}
    names = list(frameworks)
    head = " | ".join(FRAMEWORK_LABELS[n] for n in names)
    inter_op = result.get("tf_inter_op_threads", 0)
    intra_op = result.get("tf_intra_op_threads", 0)
    lines = [(f"oneDNN primitives of a {result['net']} training step ({result['precision']}, batch "
              f"{result['batch']}, {result['steps']} timed steps; TensorFlow with "
              f"{inter_op or 'its default'} inter-op thread{'s' if inter_op != 1 else ''} and "
              f"{intra_op or 'its default'} intra-op thread{'s' if intra_op != 1 else ''}) on "
              f"{result['cpu']}, ms per step (median execution x executions per step):"), "",
             f"| primitive | pass | {head} |", "|---|---|" + "---:|" * len(names)]
    per_kind = {n: {(r["kind"], r["pass"]): r["ms_per_step"] for r in f["kinds"]}
                for n, f in frameworks.items()}
    kinds = sorted(set().union(*per_kind.values()),
                   key=lambda k: -max(ms.get(k, 0.0) for ms in per_kind.values()))
    for kind, pass_ in kinds:
        cells = [f"{per_kind[n][kind, pass_]:.2f}" if (kind, pass_) in per_kind[n] else "-"
                 for n in names]
        lines.append(f"| {kind} | {pass_ or '-'} | {' | '.join(cells)} |")
    conv = [sum(c["ms_per_step"] for c in frameworks[n]["convolutions"]) for n in names]
    onednn = [frameworks[n]["onednn_ms_per_step"] for n in names]
    step = [frameworks[n]["step_ms"] for n in names]
    lines += [
        "| **all convolutions** | | " + " | ".join(f"**{ms:.2f}**" for ms in conv) + " |",
        "| **all oneDNN primitives** | | " + " | ".join(f"**{ms:.2f}**" for ms in onednn) + " |",
        "| whole step (under the log) | | " + " | ".join(f"{ms:.1f}" for ms in step) + " |",
        "",
        "oneDNN: "
        + "; ".join(
            f"{FRAMEWORK_LABELS[n]} {f['onednn'].get('version', '?')}, "
            f"{f['onednn'].get('runtime', '?')} runtime, {f['onednn'].get('threads', '?')} "
            f"thread{'' if f['onednn'].get('threads') == 1 else 's'}"
            for n, f in frameworks.items()
        )
        + ".",
    ]
    if len(names) == 2:
        a, b = (FRAMEWORK_LABELS[n] for n in names)
        outside = [step[i] - onednn[i] for i in range(2)]
        lines += [
            "",
            (
                f"Convolutions: {a} {conv[0]:.1f} ms per step, {b} {conv[1]:.1f} "
                f"({conv[0] / conv[1]:.2f}x). Outside oneDNN (step minus oneDNN primitives: "
                f"element-wise ops, the optimizer, the framework's own overhead; PyTorch's "
                f"batch normalization too): {a} {outside[0]:.1f} ms, {b} {outside[1]:.1f} ms."
            ),
        ]
    shape = "x".join(map(str, result["elementwise_shape"]))
    lines += [
        "",
        (
            f"Element-wise ops of the step (outside oneDNN: TensorFlow's are Eigen kernels), "
            f"ms per op on a {shape} tensor, {result['chain']} dependent ops per call, median "
            f"of {result['calls']} calls. The integer-view rows are TensorFlow's ReLU and "
            "its gradient done as integer ops on the floats' bits (same values, checked), "
            "which avoids Eigen's bfloat16 arithmetic:"
        ),
        "",
        "| op | "
        + " | ".join(f"{FRAMEWORK_LABELS[n]} {d}" for n in names for d in ("float32", "bfloat16"))
        + " |",
        "|---|" + "---:|" * (2 * len(names)),
    ]
    for op in frameworks[names[0]]["elementwise"]["float32"]:
        lines.append(
            f"| {op} | "
            + " | ".join(
                f"{frameworks[n]['elementwise'][d][op]:.3f}"
                if op in frameworks[n]["elementwise"][d]
                else "–"
                for n in names
                for d in ("float32", "bfloat16")
            )
            + " |"
        )
    for name, framework in result["frameworks"].items():
        if "skipped" in framework:
            lines += ["", f"{FRAMEWORK_LABELS[name]}: {framework['skipped']}"]
    if len(names) == 2:
        lines += ["", "Each convolution shape (padding aside), median ms per execution and the "
                  "implementation oneDNN chose:", "",
                  f"| pass | shape | {names[0]} impl | {names[0]} ms | {names[1]} impl | "
                  f"{names[1]} ms | {names[0]} / {names[1]} |", "|---|---|---|---:|---|---:|---:|"]
        for row in result["compared_convolutions"]:
            a, b = row.get(names[0]), row.get(names[1])
            if not (a and b):
                continue
            lines.append(
                f"| {row['pass']} | {row['shape']} | {a['impl']} | {a['median_ms']:.3f} | "
                f"{b['impl']} | {b['median_ms']:.3f} | {a['median_ms'] / b['median_ms']:.2f} |"
            )
        lines += reorder_text(frameworks, names)
    return "\n".join(lines) + "\n"


def reorder_text(frameworks: dict, names: list[str]) -> list[str]:
    """Reorders side by side by shape: each framework's smallest primitives, whose time is mostly
    the cost of running a primitive at all (dispatching it to the threads and waiting)."""
    keyed = {n: {r["shape"]: r for r in frameworks[n].get("reorders", [])} for n in names}
    shapes = sorted(set(keyed[names[0]]) & set(keyed[names[1]]),
                    key=lambda shape: [int(d) for d in re.findall(r"\d+", shape)])
    if not shapes:
        return []
    counts = ", ".join(
        f"{FRAMEWORK_LABELS[n]} {frameworks[n]['executions_per_step']:.0f}" for n in names
    )
    lines = [
        "",
        (
            f"oneDNN primitive executions per step: {counts}. Reorders (layout changes; in "
            "the CIFAR nets on AMX, of the convolutions' weights: a few thousand values each) "
            "by shape, median ms per execution: a small one's time is mostly what running any "
            "primitive costs:"
        ),
        "",
        f"| shape | {names[0]} per step | {names[0]} ms | {names[1]} per step | {names[1]} ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for shape in shapes:
        a, b = keyed[names[0]][shape], keyed[names[1]][shape]
        lines.append(
            f"| {shape} | {a['per_step']:.0f} | {a['median_ms']:.4f} | {b['per_step']:.0f} | "
            f"{b['median_ms']:.4f} |"
        )
    median = {
        n: statistics.median(
            ms
            for shape in shapes
            for ms in [keyed[n][shape]["median_ms"]] * round(keyed[n][shape]["per_step"])
        )
        for n in names
    }
    extra = median[names[0]] - median[names[1]]
    first = frameworks[names[0]]
    estimate = extra * first["executions_per_step"]
    text = (f"Median reorder: {FRAMEWORK_LABELS[names[0]]} {median[names[0]]:.4f} ms, "
            f"{FRAMEWORK_LABELS[names[1]]} {median[names[1]]:.4f} ms.")
    if extra > 0:
        text += (
            f" If each of {FRAMEWORK_LABELS[names[0]]}'s {first['executions_per_step']:.0f} "
            f"executions per step paid that {extra:.4f} ms more (an estimate, not a "
            f"measurement), that is {estimate:.1f} ms, {100 * estimate / first['step_ms']:.0f}% "
            "of its step."
        )
    return lines + ["", text]


def main(argv: list[str]) -> int:
    from absl import flags

    flag_values = flags.FLAGS
    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    from benchmarks.contenders import CIFAR_NETS, IMAGENET_NETS
    from benchmarks.protocol import find_torch_python

    nets = (*CIFAR_NETS, *IMAGENET_NETS)
    if flag_values.net not in nets:
        print(
            f"error: --net={flag_values.net}: unknown; allowed: {', '.join(nets)}", file=sys.stderr
        )
        return 2
    from keras_resnet import runtime

    precision = flag_values.precision
    if precision == "auto":
        precision = "bfloat16" if runtime.bfloat16_hardware() else "float32"
    quick = flag_values.quick
    imagenet = flag_values.net in IMAGENET_NETS
    batch = 8 if quick and not flag_values["batch"].present else flag_values.batch
    request = {"id": "kernels", "net": flag_values.net, "precision": precision,
               "image": 224 if imagenet else 32, "channels": 3, "classes": 1000 if imagenet else 10,
               "batch": batch,
               "steps": 2 if quick and not flag_values["steps"].present else flag_values.steps,
               "warmup_steps": 2, "timeout": flag_values.timeout,
               "tf_inter_op_threads": flag_values.tf_inter_op_threads,
               "tf_intra_op_threads": flag_values.tf_intra_op_threads,
               # the largest activation of the net: its first stage's output
               "elementwise_shape": [batch, 56, 56, 256] if imagenet else [batch, 32, 32, 16],
               "chain": 20, "calls": 2 if quick else 10}
    result = {"command": " ".join(["python", "benchmarks/onednn_kernels.py", *sys.argv[1:]]),
              **{key: request[key] for key in ("net", "precision", "batch", "steps",
                                               "tf_inter_op_threads", "tf_intra_op_threads",
                                               "elementwise_shape", "chain", "calls")},
              "cpu": runtime.cpu_model(), "frameworks": {}}
    torch_python, torch_note = find_torch_python(flag_values.torch_python)
    with tempfile.TemporaryDirectory(prefix="onednn_kernels-") as work:
        for framework in FRAMEWORKS:
            python = sys.executable if framework == "tensorflow" else torch_python
            if python is None:
                result["frameworks"][framework] = {"skipped": torch_note}
                continue
            start = time.perf_counter()
            result["frameworks"][framework] = measure(framework, python, request, Path(work))
            print(f"{framework}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    result["compared_convolutions"] = compared_convolutions(result)
    print(markdown(result))
    if flag_values.json:
        Path(flag_values.json).parent.mkdir(parents=True, exist_ok=True)
        Path(flag_values.json).write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {flag_values.json}")
    return 0


def define_flags() -> None:
    from absl import flags

    flags.DEFINE_string("net", "resnet20", "Net: a CIFAR ResNet or resnet50.")
    flags.DEFINE_enum("precision", "auto", ["auto", "float32", "bfloat16"],
                      "auto: the trainers' (bfloat16 on CPUs with AMX or AVX512-BF16), float32, or "
                      "mixed bfloat16.")
    flags.DEFINE_integer("batch", 128, "Batch size.", lower_bound=1)
    flags.DEFINE_integer("steps", 5, "Timed training steps (after 3 untimed ones).", lower_bound=1)
    flags.DEFINE_list("torch_python", [sys.executable, "/usr/bin/python3"],
                      "Pythons to try for PyTorch, first that imports torch and torchvision wins.")
    flags.DEFINE_integer(
        "tf_intra_op_threads",
        0,
        "TensorFlow's intra-op threads, oneDNN's threads "
        "(0: its default, one per core; 1: each primitive runs on its op's own "
        "thread, nothing handed to the pool).",
        lower_bound=0,
    )
    flags.DEFINE_integer(
        "tf_inter_op_threads",
        1,
        "TensorFlow's inter-op threads (0: its default, "
        "one per core: ops run side by side and their times overlap).",
        lower_bound=0,
    )
    flags.DEFINE_integer("timeout", 1800, "Seconds allowed per worker.", lower_bound=1)
    flags.DEFINE_string("json", None, "Write the results here.")
    flags.DEFINE_bool(
        "quick", False, "Smoke test: batch 8, 2 steps (flags given explicitly still apply)."
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:  # under either framework's Python, without absl
        worker(sys.argv[2], json.loads(sys.argv[3]))
    else:
        from absl import app

        define_flags()
        app.run(lambda argv: sys.exit(main(argv)))
