"""Training and serving speed of keras_resnet against keras.applications and PyTorch, one machine.

One run measures, side by side and alternating the contenders round by round (medians reported):
  limit     fp32 (and --precision) matrix-multiply GFLOP/s of each framework in use;
  training  images/s and achieved GFLOP/s (count_flops x 2 x 3) of our ResNet-50 against
            keras.applications.ResNet50 and torchvision's resnet50, and of our CIFAR
            ResNet-20/56/110 against a hand-written keras.io-style Keras CIFAR ResNet and one in
            PyTorch
            (channels_last); SGD with momentum 0.9, synthetic data already in memory; and
            variants of our net, each the figure behind one choice of the model library;
  autotune  whole `fit` calls with tf.data's autotuner on and off (the trainers turn it off);
  trainer   training/cifar10.py end to end (real Fashion-MNIST in memory, augmentation, callbacks,
            per-epoch evaluation, checkpoints) against the bare `fit` step plus `evaluate` of the
            same net;
  serving   our exported SavedModel's serving_default (JPEG bytes in): batch-1 latency p50/p99 and
            batch images/s, against keras.applications.ResNet50 exported the same way;
  pipeline  benchmarks/input_pipeline.py (the ImageNet tf.data pipeline vs decode-only vs PIL).

Keras contenders run in one worker process per backend, PyTorch in a worker under a Python that
has torch (Debian's /usr/bin/python3 here); only one worker computes at a time. This is the
command line of the benchmarks package (see benchmarks/__init__.py); the latest full run's figures
are in docs/performance.md, its record in results/benchmarks/.

    python benchmarks/train_throughput.py --json=runs/speed.json      # the full run
    python -m benchmarks.train_throughput --json=runs/speed.json      # the same
    python benchmarks/train_throughput.py --quick --json=/tmp/q.json  # smoke test (tiny sizes)
    python docs/make_performance.py --json=runs/speed.json            # docs/performance.md
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: the package is at the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import sections  # noqa: E402
from benchmarks.contenders import BACKENDS, CIFAR_NETS, IMAGENET_NETS, IMPLS, PRECISIONS  # noqa: E402
from benchmarks.report import markdown  # noqa: E402
from benchmarks.runner import Run  # noqa: E402

SECTIONS = ("training", "shortcut", "threads", "autotune", "trainer", "serving", "pipeline")


FLAG_NAMES: list[str] = []


def define_flags() -> None:
    """The benchmark's absl flags (defined only when run as a script, not in a worker)."""
    from absl import flags

    before = set(flags.FLAGS)
    flags.DEFINE_bool("quick", False, "Smoke test: ResNet-20 only (ResNet-50 served at 64px), tiny "
                      "batches, 2 rounds of 1 step; flags given explicitly still apply.")
    flags.DEFINE_string("json", None, "Write the results here.")
    flags.DEFINE_list("sections", list(SECTIONS),
                      f"Which of {SECTIONS} to run (limit always runs).")
    flags.DEFINE_list("backends", ["tensorflow"], f"Keras backends, of {BACKENDS}.")
    flags.DEFINE_list("nets", ["resnet20", "resnet56", "resnet110", "resnet50"],
                      f"Nets to train, of {CIFAR_NETS + IMAGENET_NETS}.")
    flags.DEFINE_list("impls", [i for i in IMPLS if i != "reference_channels_first"],
                      f"Implementations, of {IMPLS}.")
    flags.DEFINE_list("precisions", ["float32", "auto"],
                      f"Compute precisions, of {PRECISIONS} or auto: the trainers' "
                      "--mixed_precision=auto on this machine (bfloat16 on CPUs with AMX or "
                      "AVX512-BF16), in which the goals are measured.")
    flags.DEFINE_list("xla", ["off"], "Keras jit_compile on TensorFlow: off, on, or both.")
    flags.DEFINE_integer("cifar_batch", 128, "Batch of the CIFAR nets.", lower_bound=1)
    flags.DEFINE_integer("imagenet_batch", 32, "Batch of ResNet-50.", lower_bound=1)
    flags.DEFINE_integer("imagenet_size", 224, "ResNet-50 input size.", lower_bound=32)
    flags.DEFINE_integer("rounds", 5, "Rounds; contenders alternate within each.", lower_bound=1)
    flags.DEFINE_float("seconds_per_round", 10.0, "Target seconds per contender per round.",
                       lower_bound=0.0)
    flags.DEFINE_integer("min_steps", 2, "Fewest timed steps per contender per round.",
                         lower_bound=1)
    flags.DEFINE_integer("warmup_steps", 2, "Untimed steps after building (tracing).",
                         lower_bound=1)
    flags.DEFINE_integer("matmul_size", 2048, "Side of the matmul measuring the limit.",
                         lower_bound=16)
    flags.DEFINE_float("matmul_seconds", 2.0, "Seconds of matmuls per round.", lower_bound=0.0)
    flags.DEFINE_integer("threads", 0, "PyTorch threads (0: one per core).", lower_bound=0)
    flags.DEFINE_integer("intra_op_threads", 0, "TensorFlow intra-op threads (0: TF's default).",
                         lower_bound=0)
    flags.DEFINE_integer("inter_op_threads", 0, "TensorFlow inter-op threads (0: TF's default).",
                         lower_bound=0)
    flags.DEFINE_list("torch_python", [sys.executable, "/usr/bin/python3"],
                      "Pythons to try for the PyTorch worker, in order.")
    flags.DEFINE_bool("torch_compile", False, "torch.compile the PyTorch nets (PyTorch >= 2).")
    flags.DEFINE_enum("torch_memory_format", "channels_last",
                      ["channels_last", "contiguous_format"],
                      "Memory format of the PyTorch nets and batches.")
    flags.DEFINE_list("thread_settings",
                      ["0x0", "1x0", "0x1", "3x0", "0x0:TF_ENABLE_ONEDNN_OPTS=0"],
                      "TensorFlow settings of the threads section: INTERxINTRA (inter-op x "
                      "intra-op threads, 0: TensorFlow's default), optionally :NAME=VALUE, one "
                      "environment variable of the worker (e.g. 0x0:TF_ENABLE_ONEDNN_OPTS=0).")
    flags.DEFINE_enum("threads_net", "resnet20", list(CIFAR_NETS),
                      "CIFAR net of the threads section.")
    flags.DEFINE_list("threads_precisions", ["auto"],
                      f"Precisions of the threads section, of {PRECISIONS} or auto (the "
                      "trainers'); each setting trains in each.")
    flags.DEFINE_integer("autotune_steps", 10, "Steps per fit call of the autotune comparison.",
                         lower_bound=1)
    flags.DEFINE_string("trainer_net", "resnet20", "Net of the trainer-overhead comparison.")
    flags.DEFINE_integer("trainer_batch", 128, "Batch of the trainer comparison.", lower_bound=1)
    flags.DEFINE_integer("trainer_steps_per_epoch", 351, "Trainer epoch length in steps (default: "
                         "the paper's 45k training images at batch 128).", lower_bound=1)
    flags.DEFINE_integer("trainer_epochs", 2, "Trainer epochs (the first is not timed).",
                         lower_bound=2)
    flags.DEFINE_integer("trainer_rounds", 2, "Trainer / bare-step rounds.", lower_bound=1)
    flags.DEFINE_integer("subprocess_timeout", 1800, "Seconds allowed per subprocess.",
                         lower_bound=1)
    flags.DEFINE_integer("serving_size", 224, "Input size of the served ResNet-50.", lower_bound=32)
    flags.DEFINE_integer("serving_batch", 32, "Batch of the serving throughput figure.",
                         lower_bound=1)
    flags.DEFINE_integer("latency_calls", 20, "Batch-1 calls per round.", lower_bound=1)
    flags.DEFINE_integer("batch_calls", 3, "Batched calls per round.", lower_bound=1)
    FLAG_NAMES.extend(sorted(set(flags.FLAGS) - before))


QUICK = {"rounds": 2, "seconds_per_round": 0.0, "min_steps": 1, "warmup_steps": 1,
         "nets": ["resnet20"], "cifar_batch": 8, "imagenet_batch": 2, "imagenet_size": 64,
         "matmul_size": 256, "matmul_seconds": 0.05, "autotune_steps": 1, "trainer_batch": 8,
         "trainer_steps_per_epoch": 3, "trainer_epochs": 2, "trainer_rounds": 1, "serving_size": 64,
         "serving_batch": 2, "latency_calls": 2, "batch_calls": 1,
         "thread_settings": ["0x0", "1x1:TF_ENABLE_ONEDNN_OPTS=0"]}


def settings_from_flags(flag_values) -> dict:
    """The run's settings: flags, with --quick's overrides for flags not given explicitly."""
    settings = {name: flag_values[name].value for name in FLAG_NAMES}
    if settings["quick"]:
        for name, value in QUICK.items():
            if not flag_values[name].present:
                settings[name] = value
    checks = {"sections": SECTIONS, "backends": BACKENDS, "nets": CIFAR_NETS + IMAGENET_NETS,
              "impls": IMPLS, "precisions": (*PRECISIONS, "auto"),
              "threads_precisions": (*PRECISIONS, "auto"), "xla": ("off", "on")}
    for name, allowed in checks.items():
        unknown = [v for v in settings[name] if v not in allowed]
        if unknown or not settings[name]:
            raise ValueError(f"--{name}={','.join(settings[name])}: unknown {unknown or 'empty'}; "
                             f"allowed: {', '.join(allowed)}.")
    for setting in settings["thread_settings"]:
        sections.parse_thread_setting(setting)
    settings["xla"] = [v == "on" for v in settings["xla"]]
    if "jax" in settings["backends"]:
        try:
            import jax  # noqa: F401
        except ImportError as error:
            raise ValueError(f"--backends includes jax, but JAX is not installed ({error}).") \
                from None
    return settings


def run_benchmark(settings: dict) -> dict:
    """Every section the settings name, after the workers and the limit; the run's JSON."""
    run = Run(settings)
    walls = run.result["section_wall_s"] = {}
    try:
        chosen = [s for s in SECTIONS if s in settings["sections"]]
        for section in ("start_workers", "limits", *chosen):
            start = time.perf_counter()
            if hasattr(Run, section):  # the run's own steps; the other sections are functions
                getattr(run, section)()
            else:
                getattr(sections, section)(run)
            walls[section] = time.perf_counter() - start
        run.goals()
    finally:
        run.close()
    return run.result


def main(argv: list[str]) -> int:
    from absl import flags

    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    try:
        settings = settings_from_flags(flags.FLAGS)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result = run_benchmark(settings)
    result["command"] = " ".join(["python benchmarks/train_throughput.py", *sys.argv[1:]])
    print(markdown(result))
    if settings["json"]:
        path = Path(settings["json"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    from absl import app

    define_flags()
    app.run(main)
