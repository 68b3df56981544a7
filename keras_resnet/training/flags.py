"""What the trainers (`training/cifar10.py`, `training/imagenet.py`) share: their common absl
flags, the TrainConfig fields those flags set (`train_config`) and `main`, which refuses a
mismatched rerun and reports bad input as one line.

Defaults are the paper's CIFAR recipe (Sec. 4.2); each script overrides those that differ with
the keyword arguments of `define_common_flags`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

from absl import flags

from keras_resnet.losses import check_label_smoothing
from keras_resnet.training import resume, trainer
from keras_resnet.training.distribute import STRATEGIES
from keras_resnet.training.errors import UsageError
from keras_resnet.training.precision import MODES


def define_weights_flags() -> None:
    """--weights, --bottleneck_stride and --preprocessing: a registered net with pretrained
    weights, for training/export.py and training/evaluate.py (keras_resnet.pretrained)."""
    flags.DEFINE_string("weights", None, "With --model: 'imagenet' or a weight file "
                        "(keras.applications .h5, torchvision / timm .safetensors / .pth, ...).")
    flags.DEFINE_enum("bottleneck_stride", "1x1", ["1x1", "3x3"], "With --weights: 3x3 for "
                      "torchvision / timm ResNet-50/101/152 (ResNet v1.5).")
    flags.DEFINE_enum("preprocessing", None, ["caffe", "torch"], "With --weights: the input "
                      "preprocessing (default: the one the weights expect).")


def define_common_flags(
    default_model: str,
    model_choices: Iterable[str],
    batch_size: int = 128,
    lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    eval_batch_size: int = 500,
) -> None:
    """Define the flags common to all trainers. Unknown enum values are flag errors that list
    the allowed choices."""
    flags.DEFINE_enum("model", default_model, sorted(model_choices), "Network to train.")
    flags.DEFINE_string("model_dir", None, "Directory for checkpoints, logs, metrics.csv, "
                        "results.json, metadata.json and the final model.keras.", required=True)
    flags.DEFINE_enum("strategy", "default", list(STRATEGIES), "tf.distribute strategy (on JAX: "
                      "default, one_device, or mirrored = keras.distribution.DataParallel).")
    flags.DEFINE_string("tpu", "", "TPU name, 'local', or grpc://HOST:PORT for --strategy=tpu.")
    flags.DEFINE_integer("num_gpus", None, "GPUs for --strategy=mirrored (default: all local).",
                         lower_bound=1)
    flags.DEFINE_integer("num_cpu_devices", 1, "Split the CPU into this many logical devices "
                         "(data parallelism without GPUs, for testing).", lower_bound=1)
    flags.DEFINE_integer("batch_size", batch_size, "Global batch size, split over replicas.",
                         lower_bound=1)
    flags.DEFINE_integer("train_steps", None, "Total training steps (iterations).", lower_bound=1)
    flags.DEFINE_integer("epochs", None, "Total epochs (alternative to --train_steps).",
                         lower_bound=1)
    flags.DEFINE_float("lr", lr, "Base learning rate.", lower_bound=0.0)
    flags.DEFINE_float("momentum", momentum, "SGD momentum.", lower_bound=0.0)
    flags.DEFINE_float("weight_decay", weight_decay, "Weight decay (L2 on conv/dense kernels).",
                       lower_bound=0.0)
    flags.DEFINE_enum(
        "mixed_precision",
        "auto",
        list(MODES),
        "Compute dtype: none (float32), bfloat16, or float16 with dynamic loss "
        "scaling; auto: bfloat16 on TPUs and, on the TensorFlow backend, on CPUs with "
        "AMX or AVX512-BF16 (where it trains faster, docs/performance.md), else none.",
    )
    flags.DEFINE_bool("jit_compile", False,
                      "Compile the train step with XLA (always on with KERAS_BACKEND=jax).")
    flags.DEFINE_integer("steps_per_execution", 1, "Train steps per compiled call; it must divide "
                         "the steps per epoch and the run's total steps.", lower_bound=1)
    flags.DEFINE_float("label_smoothing", 0.0, "Label smoothing e: targets (1 - e) * one_hot + "
                       "e / classes (0: the paper's plain cross-entropy). Allowed: 0 <= e < 1.")
    flags.register_validator("label_smoothing", _label_smoothing_allowed)
    flags.DEFINE_integer("seed", 0, "Seed for weights, data order and augmentation.")
    flags.DEFINE_integer("keep_checkpoints", 3, "Checkpoints kept in model_dir/checkpoints.",
                         lower_bound=1)
    flags.DEFINE_integer("checkpoint_steps", 0, "Also checkpoint every this many steps "
                         "(0: at the end of every epoch only).", lower_bound=0)
    flags.DEFINE_integer("log_steps", 100, "Write step-level TensorBoard scalars this often.",
                         lower_bound=1)
    flags.DEFINE_bool("start_over", False, "Train from step 0 when --model_dir has checkpoints "
                      "and none loads (all damaged; they are moved to checkpoints/damaged/). "
                      "Without it such a run stops and lists them.")
    flags.DEFINE_integer("eval_batch_size", eval_batch_size, "Batch size for validation and test.",
                         lower_bound=1)
    flags.DEFINE_integer("verbose", None, "Keras progress output: 0 silent, 1 progress bar, "
                         "2 one line per epoch (default: 1 on a terminal, else 2).")


def flag_values_dict() -> dict:
    """The values of the trainer's own flags (its script's and these), for results.json."""
    values = {}
    for module, module_flags in flags.FLAGS.flags_by_module_dict().items():
        if module == sys.argv[0] or module.startswith("keras_resnet") or module == "__main__":
            values.update({flag.name: flag.value for flag in module_flags})
    return values


def _label_smoothing_allowed(value: float) -> bool:
    """--label_smoothing's validator: the loss's own range check, as a flag error."""
    try:
        check_label_smoothing(value)
    except ValueError as error:
        raise flags.ValidationError(f"--{error}") from None
    return True


def train_config(**fields: Any) -> trainer.TrainConfig:
    """A TrainConfig with the fields the common flags set, plus the script's `fields` (steps,
    batch, schedule, warm-up, metadata ...)."""
    FLAGS = flags.FLAGS
    common = {name: FLAGS[name].value for name in (
        "model_dir", "momentum", "mixed_precision", "jit_compile", "steps_per_execution",
        "keep_checkpoints", "checkpoint_steps", "log_steps", "verbose", "seed", "label_smoothing",
        "start_over")}
    return trainer.TrainConfig(**common, flags=flag_values_dict(), **fields)


def main(train: Callable[[], int],
         errors: tuple[type[Exception], ...] = (UsageError,)) -> Callable[[list[str]], int]:
    """The `app.run` main of a trainer: refuse a rerun with other defining flags before anything
    reads or writes the model_dir, then `train()`; `errors` are printed as one line, exit 2."""

    def run_main(argv: list[str]) -> int:
        del argv
        try:
            resume.check_rerun(flags.FLAGS.model_dir, flag_values_dict())
            return train()
        except errors as error:
            print(f"error: {error}", file=sys.stderr)
            return 2

    return run_main
