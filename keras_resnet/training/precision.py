"""Training precision (`--mixed_precision`): float32, or mixed bfloat16 / float16 with float32
weights; `auto` picks bfloat16 where it trains faster at the same accuracy."""

from __future__ import annotations

import keras

from keras_resnet import runtime
from keras_resnet.training.distribute import Distribution
from keras_resnet.training.errors import UsageError

POLICIES = {"none": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
MODES = ("auto", *POLICIES)  # --mixed_precision's values


def resolve_mixed_precision(mode: str, distribution: Distribution,
                            cpu_flags: frozenset[str] | None = None) -> str:
    """The precision `auto` stands for here: `bfloat16` on TPUs and, on the TensorFlow backend,
    on a CPU-only machine whose CPU multiplies bfloat16 in hardware (AMX or AVX512-BF16:
    `runtime.bfloat16_hardware`), where mixed bfloat16 trains our nets faster than float32 at the
    same accuracy (docs/performance.md: *bfloat16 and accuracy*); else `none` (float32: GPUs,
    other CPUs, JAX). Other modes are returned as they are."""
    if mode not in MODES:
        raise UsageError(f"--mixed_precision={mode!r}; allowed: {', '.join(MODES)}.")
    if mode != "auto":
        return mode
    if distribution.name == "tpu":
        return "bfloat16"
    on_cpu_only = not any(kind in device.upper() for device in distribution.devices
                          for kind in ("GPU", "TPU"))
    if (keras.backend.backend() == "tensorflow" and on_cpu_only
            and runtime.bfloat16_hardware(cpu_flags)):
        return "bfloat16"
    return "none"


def set_mixed_precision(mode: str) -> None:
    """`none`, `bfloat16` or `float16` as `resolve_mixed_precision` returns them (float16: the
    optimizer then scales the loss dynamically)."""
    keras.mixed_precision.set_global_policy(POLICIES[mode])
