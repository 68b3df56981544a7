"""Tiny ImageNet-format data sets made from real photographs (scikit-image's sample images).

Each photograph is one class; its examples are random crops of it, JPEG-encoded, written either
as the folder layout (train/<class>/*.JPEG, val/<class>/*.JPEG) or as the standard ImageNet
TFRecord shards (labels 1..N, `image/class/synset`).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import skimage.data
import tensorflow as tf
from PIL import Image

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry")


def photo(name: str) -> np.ndarray:
    """A bundled sample photograph as uint8 RGB."""
    return np.asarray(getattr(skimage.data, name)())[..., :3]


def jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _crops(image: np.ndarray, count: int, rng: np.random.Generator, max_side: int) -> list[bytes]:
    """Random crops (40..90% of each side), downscaled so the longer side is at most max_side."""
    out = []
    for _ in range(count):
        h = int(image.shape[0] * rng.uniform(0.4, 0.9))
        w = int(image.shape[1] * rng.uniform(0.4, 0.9))
        y, x = rng.integers(0, image.shape[0] - h + 1), rng.integers(0, image.shape[1] - w + 1)
        crop = Image.fromarray(image[y:y + h, x:x + w])
        crop.thumbnail((max_side, max_side))
        out.append(jpeg(np.asarray(crop)))
    return out


def class_names(classes: int) -> list[str]:
    """Synset-like ids, in the order of PHOTOS (sorted, as the folder layout sorts them)."""
    return [f"n{i:08d}" for i in range(classes)]


def make_photo_set(root: str, layout: str, classes: int = 6, train_per_class: int = 6,
                   val_per_class: int = 2, max_side: int = 160, seed: int = 0) -> list[str]:
    """Write a tiny set under `root` in `layout` ("folder" | "tfrecord"); returns the class
    names."""
    rng = np.random.default_rng(seed)
    names = class_names(classes)
    splits = {"train": train_per_class, "validation": val_per_class}
    data = {split: [] for split in splits}
    for label, name in enumerate(PHOTOS[:classes]):
        image = photo(name)
        for split, count in splits.items():
            data[split] += [(label, encoded) for encoded in _crops(image, count, rng, max_side)]
    if layout == "folder":
        for split, examples in data.items():
            for i, (label, encoded) in enumerate(examples):
                folder = os.path.join(root, "train" if split == "train" else "val", names[label])
                os.makedirs(folder, exist_ok=True)
                with open(os.path.join(folder, f"{names[label]}_{i}.JPEG"), "wb") as f:
                    f.write(encoded)
    elif layout == "tfrecord":
        os.makedirs(root, exist_ok=True)
        for split, examples in data.items():
            shards = 2
            for shard in range(shards):
                path = os.path.join(root, f"{split}-{shard:05d}-of-{shards:05d}")
                with tf.io.TFRecordWriter(path) as writer:
                    for label, encoded in examples[shard::shards]:
                        writer.write(_example(encoded, label + 1, names[label]))
    else:
        raise ValueError(f"layout={layout!r}: must be 'folder' or 'tfrecord'.")
    return names


def _example(encoded: bytes, label: int, synset: str) -> bytes:
    feature = {
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded])),
        "image/format": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"JPEG"])),
        "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        "image/class/synset": tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[synset.encode()])
        ),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


REPO = Path(__file__).resolve().parents[1]


def run_script(name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `training/<name>.py` as a real process (repo importable, TF logs quiet)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([sys.executable, str(REPO / "training" / f"{name}.py"), *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout, check=False)


def check(result: subprocess.CompletedProcess) -> None:
    """Fail with the process's output if it failed."""
    output = f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    assert result.returncode == 0, f"exit {result.returncode}\n{output}"
