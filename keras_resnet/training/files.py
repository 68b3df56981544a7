"""model_dir file I/O: every path the trainer writes, through tf.io.gfile where TensorFlow is
installed (local, gs://, ram:// ...), else local files (the JAX machine without TensorFlow).

Writes are atomic (a temp file, then a rename), so a killed run never leaves half a file.
"""

from __future__ import annotations

import csv
import functools
import json
import os

import numpy as np

from keras_resnet.training.distribute import is_tensorflow_installed

CHECKPOINT_PREFIX = "ckpt-"


@functools.cache
def _gfile():
    """tf.io.gfile where TensorFlow is installed (local, gs://, ram://, ... paths), else None."""
    if not is_tensorflow_installed():
        return None
    import tensorflow as tf

    return tf.io.gfile


def path_exists(path: str) -> bool:
    gfile = _gfile()
    return gfile.exists(path) if gfile else os.path.exists(path)


def make_dirs(path: str) -> None:
    gfile = _gfile()
    if gfile:
        gfile.makedirs(path)
    else:
        os.makedirs(path, exist_ok=True)


def list_dir(path: str) -> list[str]:
    """Names in the directory `path` ([] if it does not exist)."""
    gfile = _gfile()
    if gfile:
        return [name.rstrip("/") for name in gfile.listdir(path)] if gfile.isdir(path) else []
    return os.listdir(path) if os.path.isdir(path) else []


def remove_file(path: str) -> None:
    gfile = _gfile()
    if gfile:
        gfile.remove(path)
    else:
        os.remove(path)


def rename(source: str, target: str) -> None:
    """Move `source` to `target`, replacing it (an atomic rename on local disks)."""
    gfile = _gfile()
    if gfile:
        gfile.rename(source, target, overwrite=True)
    else:
        os.replace(source, target)


def read_text(path: str) -> str:
    gfile = _gfile()
    if gfile:
        with gfile.GFile(path, "r") as f:
            return f.read()
    with open(path) as f:
        return f.read()


def read_bytes(path: str) -> bytes:
    gfile = _gfile()
    if gfile:
        with gfile.GFile(path, "rb") as f:
            return f.read()
    with open(path, "rb") as f:
        return f.read()


def write_atomic(path: str, text: str) -> None:
    """Write `text` to `path` through a temp file and a rename."""
    tmp = f"{path}.tmp-{os.getpid()}"
    gfile = _gfile()
    if gfile:
        with gfile.GFile(tmp, "w") as f:
            f.write(text)
    else:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    rename(tmp, path)


def append_line(path: str, line: str) -> None:
    gfile = _gfile()
    if gfile:
        with gfile.GFile(path, "a") as f:
            f.write(line + "\n")
        return
    with open(path, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def write_json(path: str, data: dict) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=_jsonable) + "\n")


def _jsonable(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def read_json(path: str) -> dict | None:
    """The JSON object in `path`, or None if it is missing or damaged."""
    if not path_exists(path):
        return None
    try:
        return json.loads(read_text(path))
    except (OSError, ValueError):
        return None


def list_checkpoints(checkpoint_dir: str) -> list[tuple[int, str]]:
    """(step, path without extension) of complete checkpoints (weights and state), oldest first."""
    names = set(list_dir(checkpoint_dir))
    found = []
    for name in names:
        if name.startswith(CHECKPOINT_PREFIX) and name.endswith(".json"):
            stem = name[: -len(".json")]
            try:
                step = int(stem[len(CHECKPOINT_PREFIX):])
            except ValueError:
                continue
            if stem + ".weights.h5" in names:
                found.append((step, os.path.join(checkpoint_dir, stem)))
    return sorted(found)


def read_metrics_csv(path: str) -> list[dict]:
    """Rows of metrics.csv as dicts of floats (empty cells omitted)."""
    if not path_exists(path):
        return []
    rows = csv.DictReader(read_text(path).splitlines())
    return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in rows]
