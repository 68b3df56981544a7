"""Writes docs/performance.md from the JSON of benchmarks/train_throughput.py (and the GPU suite's).

    python benchmarks/train_throughput.py --json=runs/speed.json
    python docs/make_performance.py --json=runs/speed.json [--gpu_dir=runs/gpu] [--out=docs/performance.md]
        [--settings_json=runs/speed_xla.json,...]   # further runs that compare settings (e.g. XLA)
        [--op_profile_json=runs/op_profile.json,...]  # benchmarks/op_profile.py: time per op type
        [--onednn_kernels_json=runs/onednn_kernels.json,...]  # benchmarks/onednn_kernels.py
        [--bfloat16_accuracy_json=runs/bfloat16_accuracy.json,...]  # one per machine it ran on

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
     "`keras_resnet.layers.BatchNormalization` (which trains with TensorFlow's fused kernel): the "
     "figure behind that layer."),
    "- keras.applications: `keras.applications.ResNet50(weights=None)`, trained the same way.",
    ("- keras.io-style: the common hand-written Keras CIFAR ResNet v1 (Conv2D 'same' with bias, "
     "BatchNormalization, 1x1-conv projection shortcuts), trained the same way."),
    ("- keras.io-style, channels_first: the same hand-written net in channels_first (NCHW) "
     "layout, taking the same channels-last images through one transpose: the figure behind "
     "keras_resnet building channels_last models only."),
    ("- torchvision / pytorch: torchvision's `resnet50` and a CIFAR ResNet (option A) written in the "
     "benchmark, channels_last, `torch.optim.SGD` momentum 0.9, eager, in a separate process."),
    ("- keras_resnet, strided-slice shortcut: the same CIFAR net with option A's subsampling done "
     "by the strided slice `x[:, ::2, ::2, :]` instead of `keras_resnet.layers.subsample`: the "
     "figure behind that function."),
    ("- Trainer: `training/cifar10.py` on real Fashion-MNIST in memory (augmentation, callbacks, "
     "per-epoch validation and test evaluation, checkpoints, TensorBoard, metrics.csv), timed from its "
     "metrics.csv after the first epoch, against the bare `fit` step of the same net (mean layer, "
     "weight decay) plus a bare `evaluate` of as many images, in the benchmark."),
    ("- CPU steal: the share of CPU time the hypervisor gave to other machines during a "
     "contender's rounds (from /proc/stat); rounds with high steal are slow for reasons outside the "
     "contender."),
    ("- Serving: `keras_resnet.export.export_saved_model` of our ResNet-50 as it exports by "
     "default, with BN folded into the convolutions (`keras_resnet (BN folded)`); of the same net "
     "with BN left in the graph (`fold_bn=False`), inferring by Keras's affine (`BN not folded`: the "
     "figure behind folding) or by TensorFlow's fused kernel (`fused inference BN`: the figure "
     "behind the layer's inference path, which the BNs that cannot be folded take); and of "
     "keras.applications' ResNet50 with its BN as it is (keras.applications folds nothing). The same "
     "signature for all: JPEG bytes, 1-crop preprocessing, net; loaded with `tf.saved_model.load`."),
]


def load_benchmark(name: str = "train_throughput"):
    """A script of benchmarks/ as a module (its markdown tables and goals)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
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


def variant_gain(result: dict, variant: str, ours_label: str, variant_label: str,
                 base: str = "ours") -> list[str]:
    """`base` (our net) over one variant of it, per net and precision: the figure behind a choice."""
    rows = {(r["net"], r["impl"], r["precision"], r["xla"]): r for r in result.get("training", [])
            if r["framework"] == "tensorflow"}
    lines = []
    for (net, impl, precision, xla), row in rows.items():
        other = rows.get((net, variant, precision, xla))
        if impl == base and other:
            lines.append(f"- {net}, {precision}, XLA {'on' if xla else 'off'}: {ours_label} "
                         f"{row['images_per_s']:.1f} images/s, {variant_label} {other['images_per_s']:.1f}: "
                         f"{row['images_per_s'] / other['images_per_s']:.2f}x")
    return lines


def inference_bn_text(result: dict) -> list[str]:
    """Serving with BN folded (ours), and with BN's inference as Keras's affine against
    TensorFlow's fused kernel where it is not folded."""
    rows = {r["impl"]: r for r in result.get("serving", {}).get("rows", [])}
    lines = []
    folded, ours = rows.get("ours"), rows.get("ours_unfolded_bn")
    if folded and ours:
        lines += [("Serving (table *Serving*): BN folded into the convolution before it "
                   "(`keras_resnet.folding.fold_batch_norm`, what `keras_resnet.export` writes), "
                   "against the same net with its BN in the graph: batch-1 p50 "
                   f"{folded['p50_ms']:.1f} ms against {ours['p50_ms']:.1f} ms "
                   f"({ours['p50_ms'] / folded['p50_ms']:.2f}x as fast), batch-{folded['batch']} "
                   f"{folded['batch_images_per_s']:.1f} images/s against "
                   f"{ours['batch_images_per_s']:.1f}. The same function (tested to float32 "
                   "rounding), two elementwise passes fewer per convolution, and TensorFlow runs "
                   "convolution, bias and ReLU as one fused kernel."), ""]
    fused = rows.get("ours_fused_inference_bn")
    if not (ours and fused):
        return lines
    return lines + [("Inference of the BNs that are not folded (pre-activation units' BNs read a "
             "sum): BN as Keras's per-channel affine, against "
             "`FusedBatchNormV3(is_training=False)`, which TensorFlow's oneDNN rewrite folds into the "
             "convolution before it as post-ops: batch-1 p50 "
             f"{ours['p50_ms']:.1f} ms against {fused['p50_ms']:.1f} ms "
             f"({fused['p50_ms'] / ours['p50_ms']:.2f}x), batch-{ours['batch']} "
             f"{ours['batch_images_per_s']:.1f} images/s against {fused['batch_images_per_s']:.1f}. "
             + ("The fused kernel is faster on this CPU; " if fused["p50_ms"] < ours["p50_ms"]
                else "The fused kernel is slower on this CPU; ")
             + "the layer keeps the affine in inference because on a CPU without AVX-512 the fused "
             "kernel was 13x slower at batch 1 (the 2-core AMD EPYC run of commit 9404fdf, its "
             "docs/performance.md and docs/speed.json), and most BNs are folded when serving."), ""]


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
    text = benchmark.markdown(result)
    lines += ["", text.split("### CIFAR trainer")[0].rstrip(), ""]
    if "### Goals" in text:  # the run's goals, as measured on its machine
        lines += [text[text.index("### Goals"):].rstrip(), ""]
    data_format = variant_gain(result, "reference_channels_first", "channels_last", "channels_first",
                               base="reference")
    if data_format:
        lines += ["Data format, the keras.io-style net in each:", "", *data_format, ""]
    return lines + variant_choices(result)


DEFAULTS = [
    ("- Batch normalization: `keras_resnet.layers.BatchNormalization` trains with TensorFlow's "
     "fused kernel in every model on the TensorFlow backend and infers with Keras's per-channel "
     "affine (section *Batch normalization* below: training with Keras's own layer, serving with "
     "the fused kernel)."),
    ("- Serving: `keras_resnet.export` folds every BN that reads a convolution into it "
     "(`keras_resnet.folding.fold_batch_norm`; `--nofold_bn` in `training/export.py` keeps them), "
     "section *Batch normalization* below."),
    ("- Option A shortcut: `keras_resnet.layers.ZeroPadShortcut` subsamples with "
     "`keras_resnet.layers.subsample` (a reshape and a contiguous slice) rather than the strided "
     "slice or a 1x1 max-pool (section *Option A shortcut* below)."),
    ("- tf.data: the CIFAR trainer's training, validation and test pipelines turn tf.data's "
     "autotuner off (`keras_resnet.training.cifar_data.tf_data_options`). Its thread sleeps in "
     "doubling periods (10 ms, 20 ms, ..., so a call ends at 0.63, 1.27, 2.55, 5.11 s ...) and each "
     "iterator's teardown waits for it, which held up the end of every `fit` and every per-epoch "
     "`evaluate` (tables *tf.data's autotuner*). The bare-step contenders use the same options."),
    ("- XLA: off on TensorFlow (`--jit_compile` default false, also Keras's own choice on "
     "CPU-only machines), on for JAX (always compiled); settings runs (`--settings_json`, sections "
     "*Settings run*) compare both, in float32 and bfloat16 on a Xeon without bfloat16 "
     "instructions (`docs/speed_settings.json`) and in bfloat16 on an AMD EPYC with AVX512-BF16 "
     "(`docs/speed_xla_bf16.json`)."),
    ("- Precision: `--mixed_precision=auto`, the trainers' default: mixed bfloat16 (float32 "
     "weights, optimizer state and BN statistics; bfloat16 convolutions) on TPUs and, on the "
     "TensorFlow backend, on CPUs that multiply bfloat16 in hardware: AMX (`amx_bf16` in "
     "/proc/cpuinfo; Intel Sapphire Rapids and later) or AVX512-BF16 (`avx512_bf16`; AMD Zen 4 "
     "and later) (`keras_resnet.runtime.bfloat16_hardware`); float32 elsewhere. Where this run's "
     "CPU has them, the training table has both precisions, section *Settings compared in this "
     "run* gives bfloat16 against float32 for each net, and the goals are measured in bfloat16 "
     "(the issue's \"fp32 unless faster otherwise\"), with the float32 goals beside them. The "
     "settings runs below show the same on an AMX Xeon (`docs/speed_amx.json`, "
     "`docs/speed_bf16.json`) and, on a Xeon with AVX-512 but no bfloat16 instructions "
     "(`docs/speed_settings.json`), bfloat16 far slower than float32: there `auto` keeps float32. "
     "Section *bfloat16 and accuracy* trains the same runs in both precisions, on each kind of "
     "CPU. Exported SavedModels compute in float32 whatever the training precision "
     "(`keras_resnet.export.float32_copy`); the reproduction suites of docs/results.md pin "
     "float32, as their documented runs used. oneDNN's bfloat16 math mode "
     "(`ONEDNN_DEFAULT_FPMATH_MODE=BF16`: float32 tensors, convolutions on the bfloat16 units, "
     "`attr-fpmath:bf16` in oneDNN's log) trained a float32 ResNet-20 at 1.18x float32's speed "
     "but 0.70x mixed bfloat16's (`docs/speed_fpmath_amx.json`, AMX Xeon); in mixed bfloat16 it "
     "changes no kernel (the same implementations in the log) and no speed beyond the noise: "
     "1.02x and 1.04x in two runs (`docs/speed_fpmath_amx.json`, "
     "`docs/speed_fpmath5_amx.json`), 1.00x in a third beside a control worker with an unused "
     "variable at 1.01x (`docs/speed_fpmath_control_amx.json`). The trainers keep Keras's mixed "
     "bfloat16 and leave it unset."),
    ("- oneDNN: on. TensorFlow turns its oneDNN kernels on by itself only on x86 CPUs with "
     "AVX512-VNNI, AVX512-BF16, AVX-VNNI or AMX, and runs its Eigen kernels elsewhere (AVX2 "
     "machines such as most AMD EPYCs); importing `keras_resnet` before TensorFlow sets "
     "`TF_ENABLE_ONEDNN_OPTS=1` on x86-64 unless it is set already (`keras_resnet.runtime`), so the "
     "trainers, the benchmark's Keras worker (keras.applications' contenders too) and library users "
     "who import it first get them. The machine section above says what TensorFlow ran with; the "
     "table *TensorFlow threads* has a worker with `TF_ENABLE_ONEDNN_OPTS=0`: the figure behind "
     "this choice on the machine of the run."),
    ("- Threads: TensorFlow's defaults (inter-op and intra-op pools of one thread per core): two "
     "ops run at once (a convolution's input and filter gradients, the shortcut beside the "
     "residual branch), each on both cores. The table *TensorFlow threads* compares other thread "
     "settings, one worker process each; a settings run on an AMX Xeon "
     "(`docs/speed_onednn_env.json`) compares TensorFlow's oneDNN options "
     "`TF_ONEDNN_THREADPOOL_USE_CALLER_THREAD` and `TF_ONEDNN_USE_SYSTEM_ALLOCATOR` and oneDNN's "
     "`ONEDNN_MAX_CPU_ISA=AVX512_CORE_AMX` in bfloat16: none beat the defaults. Three inter-op "
     "threads (`3x0`) have been faster than the default in one run and slower in others; in "
     "bfloat16 on an AMX Xeon they trained ResNet-20 at 1.04x the default's speed in a 3-round "
     "run (`docs/speed_threads_bf16_amx.json`; one inter-op thread: 0.93x) and at 1.00x in a "
     "5-round rerun (`docs/speed_threads3_bf16_amx.json`): the default stays TensorFlow's. One "
     "intra-op thread, with which oneDNN runs each primitive on the op's own thread instead of "
     "handing it to the pool (what a primitive costs to run: section *oneDNN kernels*), and two or "
     "four inter-op threads to use both cores trained at 0.84x and 0.78x the default's speed "
     "(`docs/speed_threads_inline_bf16_amx.json`)."),
    ("- Data format: channels_last. `keras_resnet` builds channels_last models only (the builder "
     "raises on `image_data_format` channels_first); TensorFlow's CPU kernels and Keras's pooling "
     "run in NHWC, and XLA picks its own layouts on GPUs and TPUs. A settings run "
     "(`docs/speed_data_format.json`) trains the keras.io-style net in both layouts, in float32 "
     "and bfloat16: section *Settings run* below."),
    ("- Backend on CPUs: TensorFlow. Keras on JAX compiles the step with XLA, whose CPU kernels "
     "trained ResNet-20 several times slower than TensorFlow's, and no faster in bfloat16 than in "
     "float32 (settings run `docs/speed_backends.json`, section *Settings run* below), so "
     "`--mixed_precision=auto` keeps float32 on JAX's CPU devices and the trainers warn when "
     "`KERAS_BACKEND=jax` has only CPU devices. JAX is the GPU suite's backend."),
    ("- Evaluation: every epoch on the validation and test splits (the curves of Fig. 6). The "
     "trainer table compares the trainer's epoch with a bare `fit` plus a bare `evaluate` of the "
     "same images, and gives the evaluation's share of the epoch."),
]


def op_profile_text(profiles: tuple[dict, ...]) -> list[str]:
    """benchmarks/op_profile.py's tables: where a training step's time goes."""
    if not profiles:
        return []
    lines = ["", "## Where a training step's time goes (TensorFlow profiler)", "",
             ("`benchmarks/op_profile.py` traces `fit` steps with the TensorFlow profiler (the trace "
              "opens in TensorBoard's Profile tab) and sums the ops' durations by type; ops that ran "
              "at the same time on the two inter-op threads both count."), ""]
    op_profile = load_benchmark("op_profile")
    for profile in profiles:
        lines += [f"Command: `{profile['command']}`", "", op_profile.markdown(profile)]
    return lines


def onednn_kernels_text(kernels: tuple[dict, ...]) -> list[str]:
    """benchmarks/onednn_kernels.py's tables: the oneDNN primitives of a step, ours against PyTorch."""
    if not kernels:
        return []
    lines = ["", "## oneDNN kernels: TensorFlow's against PyTorch's", "",
             ("`benchmarks/onednn_kernels.py` runs the training contenders above (our net on "
              "TensorFlow, the PyTorch net) with oneDNN's verbose log on and times each oneDNN "
              "primitive the step executes. The convolutions have the same shapes, data types and "
              "memory layouts in both frameworks; each ships its own oneDNN build and threading. "
              "PyTorch's batch normalization and element-wise ops are its own kernels, outside "
              "oneDNN; TensorFlow's batch normalization is oneDNN's. The run with one intra-op "
              "thread (`--tf_intra_op_threads=1`) has TensorFlow run each primitive on its op's "
              "own thread instead of handing it to its thread pool: its reorders show what that "
              "hand-off costs.")]
    onednn_kernels = load_benchmark("onednn_kernels")
    for result in kernels:
        lines += ["", f"Command: `{result['command']}`", "", onednn_kernels.markdown(result)]
    return lines


def bfloat16_accuracy_text(accuracies: tuple[dict, ...]) -> list[str]:
    """benchmarks/bfloat16_accuracy.py's tables: the same training runs in both precisions, one
    table per machine it ran on."""
    if not accuracies:
        return []
    lines = ["", "## bfloat16 and accuracy"]
    for accuracy in accuracies:
        machine = accuracy["machine"]
        flags = ", ".join(machine.get("cpu_flags", [])) or "none"
        cpu = f"{machine['cpu']}, " if "cpu" in machine else ""
        lines += ["", f"Command: `{accuracy['command']}`", "",
                  load_benchmark("bfloat16_accuracy").markdown(accuracy), "",
                  f"Machine: {cpu}{machine['platform']}; bfloat16 CPU features: {flags}."]
    return lines


COMMAND = ("python docs/make_performance.py --json=docs/speed.json "
           "--settings_json=docs/speed_amx.json,docs/speed_bf16.json,docs/speed_settings.json,"
           "docs/speed_runtime.json,docs/speed_xla_bf16.json,docs/speed_onednn_env.json,"
           "docs/speed_threads_bf16_amx.json,docs/speed_threads3_bf16_amx.json,"
           "docs/speed_threads_inline_bf16_amx.json,docs/speed_data_format.json,docs/speed_backends.json,"
           "docs/speed_fpmath_amx.json,docs/speed_fpmath5_amx.json,docs/speed_fpmath_control_amx.json "
           "--op_profile_json=docs/op_profile.json,docs/op_profile_bf16.json,docs/op_profile_bf16_amx.json "
           "--onednn_kernels_json=docs/onednn_kernels_resnet20.json,docs/onednn_kernels_resnet56.json,"
           "docs/onednn_kernels_resnet20_fp32.json,docs/onednn_kernels_resnet20_intra1.json "
           "--bfloat16_accuracy_json=docs/bfloat16_accuracy.json,docs/bfloat16_accuracy_zen4.json")


def page(result: dict, gpu_dir: Path | None = None, settings_runs: tuple[dict, ...] = (),
         op_profiles: tuple[dict, ...] = (), accuracies: tuple[dict, ...] = (),
         kernels: tuple[dict, ...] = ()) -> str:
    benchmark = load_benchmark()
    intro = (f"Generated by `{COMMAND}` from "
             "the JSON of "
             "`benchmarks/train_throughput.py`; do not edit by hand. Contenders were alternated round "
             "by round in one run on one machine and the medians are shown. GFLOP/s = images/s x "
             "multiply-adds per image (`keras_resnet.count_flops`) x 2 x 3 (forward and backward); "
             "the limit is the best framework's fp32 matrix multiply, measured in the same rounds as each "
             "net (it alternates with the net's contenders, so a drift of the machine's speed over "
             "the run cancels out of '% of limit'; bfloat16 rows divide by the same float32 limit, "
             "as the goals are stated, so they can pass 100%). The "
             "steal-adjusted column divides each round's rate by the share of the CPU the hypervisor "
             "left to this machine; the goals use the plain medians.")
    lines = ["# Performance", "", intro, "", "## Machine", ""]
    lines += machine_text(result)
    lines += ["", "## Contenders", "", *CONTENDERS, "", "## The trainers' defaults", "", *DEFAULTS,
              "", "## Results", "", benchmark.markdown(result)]
    fused = variant_gain(result, "ours_keras_bn", "fused BN", "Keras BN")
    if fused:
        lines += ["## Batch normalization: TensorFlow's fused kernel against Keras's", "",
                  "Training, with `keras_resnet.layers.BatchNormalization` or Keras's own layer:", "",
                  *fused, "", *inference_bn_text(result)]
    subsample = variant_gain(result, "ours_strided_shortcut", "reshape + slice", "strided slice")
    if subsample:
        lines += ["## Option A shortcut: reshape + slice against the strided slice", "",
                  ("`keras_resnet.layers.ZeroPadShortcut` takes the pixels `x[:, ::2, ::2, :]` with "
                   "`keras_resnet.layers.subsample`: it reshapes each 2x2 patch into axes of its own "
                   "and takes the first pixel with a contiguous slice, whose gradient TensorFlow "
                   "computes as a Pad; the strided slice's gradient is StridedSliceGrad. The same "
                   "pixels and gradients (tested); the table *Option A's subsampling alone* above "
                   "times the two and a 1x1 max-pool by themselves. The whole nets with each:"),
                  "", *subsample, ""]
    choices = variant_choices(result)
    if choices:
        lines += ["## Settings compared in this run", "", *choices]
    lines += bfloat16_accuracy_text(accuracies)
    lines += op_profile_text(op_profiles)
    lines += onednn_kernels_text(kernels)
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


def read_op_profile(path: Path) -> dict:
    """A benchmarks/op_profile.py JSON, or ValueError naming the file and what is wrong."""
    try:
        profile = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"--op_profile_json={path}: {error}") from None
    missing = [key for key in ("net", "ops", "wall_s", "command") if key not in profile]
    if missing:
        raise ValueError(f"--op_profile_json={path} lacks {missing}: not a benchmarks/op_profile.py result")
    return profile


def read_onednn_kernels(path: Path) -> dict:
    """A benchmarks/onednn_kernels.py JSON, or ValueError naming the file and what is wrong."""
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"--onednn_kernels_json={path}: {error}") from None
    missing = [key for key in ("command", "net", "frameworks", "compared_convolutions")
               if key not in result]
    if missing:
        raise ValueError(f"--onednn_kernels_json={path} lacks {missing}: not a "
                         "benchmarks/onednn_kernels.py result")
    return result


def read_bfloat16_accuracy(path: Path) -> dict:
    """A benchmarks/bfloat16_accuracy.py JSON, or ValueError naming the file and what is wrong."""
    try:
        accuracy = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"--bfloat16_accuracy_json={path}: {error}") from None
    missing = [key for key in ("command", "settings", "runs", "summary", "machine")
               if key not in accuracy]
    if missing:
        raise ValueError(f"--bfloat16_accuracy_json={path} lacks {missing}: not a "
                         "benchmarks/bfloat16_accuracy.py result")
    return accuracy


def main(argv: list[str]) -> int:
    from absl import flags

    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    try:
        result = read_result("--json", Path(flags.FLAGS.json))
        settings_runs = tuple(read_result("--settings_json", Path(p)) for p in flags.FLAGS.settings_json)
        op_profiles = tuple(read_op_profile(Path(p)) for p in flags.FLAGS.op_profile_json)
        accuracies = tuple(read_bfloat16_accuracy(Path(p)) for p in flags.FLAGS.bfloat16_accuracy_json)
        kernels = tuple(read_onednn_kernels(Path(p)) for p in flags.FLAGS.onednn_kernels_json)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    gpu_dir = Path(flags.FLAGS.gpu_dir) if flags.FLAGS.gpu_dir else None
    if gpu_dir is not None and not gpu_dir.is_dir():
        print(f"error: --gpu_dir={gpu_dir} is not a directory", file=sys.stderr)
        return 2
    out = Path(flags.FLAGS.out)
    out.write_text(page(result, gpu_dir, settings_runs, op_profiles, accuracies, kernels))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("json", None, "JSON written by benchmarks/train_throughput.py.", required=True)
    flags.DEFINE_list("settings_json", [], "Further train_throughput.py JSONs that compare settings.")
    flags.DEFINE_list("op_profile_json", [], "JSONs of benchmarks/op_profile.py.")
    flags.DEFINE_list("bfloat16_accuracy_json", [], "JSONs of benchmarks/bfloat16_accuracy.py.")
    flags.DEFINE_list("onednn_kernels_json", [], "JSONs of benchmarks/onednn_kernels.py.")
    flags.DEFINE_string("gpu_dir", None, "OUT_DIR of benchmarks/gpu_suite.sh, if it ran.")
    flags.DEFINE_string("out", str(DEFAULT_OUT), "The page to write.")
    app.run(main)
