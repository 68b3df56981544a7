"""A model_dir holds one run: a rerun resumes it and never replaces or mixes it with another.

metadata.json records the flags that define the run (`defining_flags`: every trainer flag but
`RESUMABLE_FLAGS`). A rerun whose defining flags differ is refused before anything in the
directory changes (`check_rerun`). `restore_latest` loads the newest checkpoint that loads: a
damaged one (unreadable, truncated) is reported and moved to checkpoints/damaged/, and the one
before it is tried; a checkpoint of another architecture is an error, never damage. The
checkpoints hold the weights, the SGD state of Sec. 3.4 / 4.2 and the step.
"""

from __future__ import annotations

import io
import json
import os
import sys
from typing import Any

import keras

from keras_resnet.training.errors import UsageError
from keras_resnet.training.files import (
    list_checkpoints,
    make_dirs,
    path_exists,
    read_bytes,
    read_json,
    read_text,
    rename,
)

# Flags that may change when a run is resumed: where and how fast it runs, where its data lies
# (not what it is: the dataset, source and split are defining), what it logs and keeps, and how
# long it trains (--train_steps / --epochs extend or shorten it; where the lr boundaries are
# scaled to the run's length, they follow). README.md lists them too.
RESUMABLE_FLAGS = frozenset({
    "model_dir", "strategy", "tpu", "num_gpus", "num_cpu_devices", "jit_compile",
    "steps_per_execution", "verbose", "log_steps", "keep_checkpoints", "checkpoint_steps",
    "train_steps", "epochs", "eval_batch_size", "eval_modes", "data_dir", "tfds_manual_dir",
    "start_over",
})
DAMAGED_DIR = "damaged"


def defining_flags(flag_values: dict[str, Any]) -> dict[str, Any]:
    """The flags that define a run, as JSON values (metadata.json's `flags`)."""
    return json.loads(json.dumps(
        {k: v for k, v in sorted(flag_values.items()) if k not in RESUMABLE_FLAGS}, default=str))


def check_rerun(model_dir: str, flag_values: dict[str, Any], metadata: dict | None = None) -> None:
    """Raise UsageError if `model_dir` holds a run with other defining flags (or, for a run
    recorded without flags, another `model` / `dataset` in `metadata`). Reads only."""
    recorded = read_json(os.path.join(model_dir, "metadata.json"))
    if recorded is None:
        return
    before = recorded.get("flags") or {}
    now = defining_flags(flag_values)
    differing = []
    for name in sorted(set(before) & set(now)):
        if before[name] == now[name]:
            continue
        if name == "mixed_precision" and now[name] in ("auto", recorded.get("mixed_precision")):
            continue  # auto resumes in the precision the run chose; naming that one is the same
        differing.append(f"--{name}={_shown(before[name])} there, {_shown(now[name])} now")
    for key in ("model", "dataset"):
        if not before and metadata and key in recorded and metadata.get(key) != recorded[key]:
            differing.append(f"{key} {recorded[key]} there, {metadata.get(key)} now")
    if differing:
        raise UsageError(
            f"--model_dir={model_dir} holds a run with other defining flags "
            f"({'; '.join(differing)}); nothing was changed. Pick another --model_dir, or rerun "
            f"with the flags it was started with to resume it.")


def _shown(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def checkpoint_damage(base: str) -> str | None:
    """Why the checkpoint `base` (.json + .weights.h5) cannot be read, or None if it can: every
    byte of its HDF5 datasets and its JSON state are read."""
    import h5py

    try:
        json.loads(read_text(base + ".json"))
    except (OSError, ValueError) as error:
        return f"{os.path.basename(base)}.json: {type(error).__name__}: {_first_line(error)}"
    try:
        with h5py.File(io.BytesIO(read_bytes(base + ".weights.h5")), "r") as f:
            f.visititems(lambda _, item: item[()] if isinstance(item, h5py.Dataset) else None)
    except Exception as error:  # h5py raises OSError, KeyError, RuntimeError ... on bad files
        return f"{os.path.basename(base)}.weights.h5: {type(error).__name__}: {_first_line(error)}"
    return None


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [""])[0]


def restore_latest(model: keras.Model, checkpoint_dir: str, start_over: bool = False,
                   is_chief: bool = True) -> dict:
    """Load the newest checkpoint that loads into `model`; returns its state ({}: none, step 0).

    Damaged checkpoints are reported and skipped; once one loads (or with `start_over`), the
    chief moves them to checkpoints/damaged/. If there are checkpoints and none loads, raise
    UsageError listing them unless `start_over`. A readable checkpoint that does not fit `model`
    raises.
    """
    damaged = []
    for _, base in reversed(list_checkpoints(checkpoint_dir)):
        problem = checkpoint_damage(base)
        if problem:
            print(f"warning: checkpoint {base} is damaged ({problem}); trying the one before it",
                  file=sys.stderr, flush=True)
            damaged.append((base, problem))
            continue
        try:
            model.load_weights(base + ".weights.h5")
        except ValueError as error:
            raise UsageError(
                f"checkpoint {base}.weights.h5 is readable but does not fit the model being "
                f"trained ({_first_line(error)}): {os.path.dirname(checkpoint_dir)} holds a run "
                f"of another architecture. Pick another --model_dir.") from None
        if is_chief:
            _set_aside(checkpoint_dir, damaged)
        return json.loads(read_text(base + ".json"))
    if damaged and not start_over:
        listing = "; ".join(problem for _, problem in damaged)
        raise UsageError(
            f"no checkpoint in {checkpoint_dir} loads ({listing}). Pass --start_over to train "
            f"from step 0 anyway (the damaged checkpoints are moved to "
            f"{os.path.join(checkpoint_dir, DAMAGED_DIR)}), or pick another --model_dir.")
    if is_chief:
        _set_aside(checkpoint_dir, damaged)
    return {}


def _set_aside(checkpoint_dir: str, damaged: list[tuple[str, str]]) -> None:
    """Move damaged checkpoints to checkpoints/damaged/: kept, but out of resuming and pruning."""
    if not damaged:
        return
    target = os.path.join(checkpoint_dir, DAMAGED_DIR)
    make_dirs(target)
    for base, _ in damaged:
        for suffix in (".json", ".weights.h5"):
            if path_exists(base + suffix):
                rename(base + suffix, os.path.join(target, os.path.basename(base) + suffix))
