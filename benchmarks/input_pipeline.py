"""Images/s per CPU core of the ImageNet training input pipeline (Sec. 3.4 augmentation).

Contenders, on the same full-size JPEG photographs (scikit-image's sample photos), in one run,
alternated round by round (the median of the rounds is reported):
  fused        keras_resnet.training.imagenet_input.train_dataset: decode only the crop window
               (tf.io.decode_and_crop_jpeg), resize it to the crop size, flip, PCA lighting.
  naive        the same pipeline written the obvious way: decode the whole image, resize its
               shorter side to L in [256, 480], random crop, flip, PCA lighting.
  decode_only  tf.io.decode_jpeg of the whole image, nothing else (a reference, not a pipeline).
  pil          a plain Python loop with PIL: decode, resize, crop, flip (single thread).

tf.data contenders run on a private pool of --cores threads with one thread per op; images/s is
divided by --cores. Usage:
  python benchmarks/input_pipeline.py [--quick] [--cores N] [--json results.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import skimage.data
import tensorflow as tf
from PIL import Image

from keras_resnet.training import imagenet_input

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
          "retina", "stereo_motorcycle")
CONTENDERS = ("fused", "naive", "decode_only", "pil")
IMAGE_SIZE = 224
BATCH = 32


def photographs(quality: int = 90) -> list[bytes]:
    """The bundled colour photographs at full size, JPEG-encoded."""
    encoded = []
    for name in PHOTOS:
        image = getattr(skimage.data, name)()
        image = np.asarray(image[0] if isinstance(image, tuple) else image)[..., :3]
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
        encoded.append(buffer.getvalue())
    return encoded


def _statistics() -> imagenet_input.InputStatistics:
    # The ImageNet RGB eigen-decomposition (0..1 scale) of the reference implementations; only
    # its cost matters here.
    eigval = np.array([0.2175, 0.0188, 0.0045], np.float32)
    eigvec = np.array([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140],
                       [-0.5836, -0.6948, 0.4203]], np.float32)
    return imagenet_input.InputStatistics(np.zeros([IMAGE_SIZE, IMAGE_SIZE, 3], np.float32),
                                          eigval, eigvec, 0)


def _examples(encoded: list[bytes]) -> tf.data.Dataset:
    labels = tf.zeros([len(encoded)], tf.int32)
    return tf.data.Dataset.from_tensor_slices((encoded, labels))


def naive_view(encoded: tf.Tensor, image_size: int, scale_range: tuple[int, int]) -> tf.Tensor:
    """The obvious way: decode everything, resize the shorter side to L, then crop and flip."""
    image = imagenet_input.decode(encoded)
    shorter = tf.random.uniform([], scale_range[0], scale_range[1] + 1, dtype=tf.int32)
    image = imagenet_input.resize_shorter_side(image, shorter)
    image = tf.image.random_crop(image, [image_size, image_size, 3])
    return tf.image.random_flip_left_right(image)


def _threading(cores: int) -> tf.data.Options:
    options = tf.data.Options()
    options.threading.private_threadpool_size = cores
    options.threading.max_intra_op_parallelism = 1
    return options


def fused_dataset(encoded: list[bytes], cores: int) -> tf.data.Dataset:
    config = imagenet_input.AugmentConfig(image_size=IMAGE_SIZE, shuffle_buffer=len(encoded))
    return imagenet_input.train_dataset(
        _examples(encoded), BATCH, config, _statistics()
    ).with_options(_threading(cores))


def naive_dataset(encoded: list[bytes], cores: int) -> tf.data.Dataset:
    stats = _statistics()
    scale_range = imagenet_input.train_scale_range(IMAGE_SIZE)
    ds = _examples(encoded).repeat().shuffle(len(encoded))
    ds = ds.map(lambda e, y: (naive_view(e, IMAGE_SIZE, scale_range), y),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    ds = ds.batch(BATCH, drop_remainder=True)
    ds = ds.map(lambda x, y: (imagenet_input.pca_lighting(x, stats.eigval, stats.eigvec), y),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    return ds.prefetch(tf.data.AUTOTUNE).with_options(_threading(cores))


def decode_only_dataset(encoded: list[bytes], cores: int) -> tf.data.Dataset:
    ds = _examples(encoded).repeat()
    ds = ds.map(lambda e, y: (tf.io.decode_jpeg(e, channels=3), y),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    # Whole images differ in shape: count them one by one (a batch dimension would need a resize).
    return ds.batch(1).prefetch(tf.data.AUTOTUNE).with_options(_threading(cores))


def _time_dataset(ds: tf.data.Dataset, images: int, warmup_batches: int = 3) -> float:
    """Images/s over `images` images, after a warm-up that starts the threads and autotuning."""
    iterator = iter(ds)
    for _ in range(warmup_batches):
        next(iterator)
    seen = 0
    start = time.perf_counter()
    while seen < images:
        x, _ = next(iterator)
        seen += int(x.shape[0])
    return seen / (time.perf_counter() - start)


def pil_rate(encoded: list[bytes], images: int, seed: int = 0) -> float:
    """Images/s of a plain single-threaded PIL loop doing the naive pipeline's work."""
    rng = np.random.default_rng(seed)
    low, high = imagenet_input.train_scale_range(IMAGE_SIZE)
    start = time.perf_counter()
    for i in range(images):
        image = Image.open(io.BytesIO(encoded[i % len(encoded)])).convert("RGB")
        shorter = int(rng.integers(low, high + 1))
        scale = shorter / min(image.size)
        image = image.resize((max(shorter, round(image.size[0] * scale)),
                              max(shorter, round(image.size[1] * scale))), Image.BILINEAR)
        x = rng.integers(0, image.size[0] - IMAGE_SIZE + 1)
        y = rng.integers(0, image.size[1] - IMAGE_SIZE + 1)
        image = image.crop((x, y, x + IMAGE_SIZE, y + IMAGE_SIZE))
        if rng.random() < 0.5:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        np.asarray(image, dtype=np.float32)
    return images / (time.perf_counter() - start)


def run(rounds: int, images: int, cores: int, contenders: tuple[str, ...] = CONTENDERS) -> dict:
    """Alternate the contenders for `rounds` rounds of `images` images each; per-core medians."""
    encoded = photographs()
    builders: dict[str, Callable[[], tf.data.Dataset]] = {
        "fused": lambda: fused_dataset(encoded, cores),
        "naive": lambda: naive_dataset(encoded, cores),
        "decode_only": lambda: decode_only_dataset(encoded, cores),
    }
    datasets = {name: builders[name]() for name in contenders if name in builders}
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name in contenders:
            if name == "pil":
                rates[name].append(pil_rate(encoded, max(images // cores, 8)))
            else:
                rates[name].append(_time_dataset(datasets[name], images) / cores)
    per_core = {name: statistics.median(values) for name, values in rates.items()}
    sizes = [Image.open(io.BytesIO(e)).size for e in encoded]
    result = {
        "images_per_s_per_core": per_core,
        "rounds": {name: values for name, values in rates.items()},
        "cores": cores,
        "images_per_round": images,
        "image_size": IMAGE_SIZE,
        "batch_size": BATCH,
        "photos": {name: list(size) for name, size in zip(PHOTOS, sizes)},
        "mean_jpeg_bytes": int(np.mean([len(e) for e in encoded])),
        "tensorflow": tf.__version__,
    }
    if "fused" in per_core and "naive" in per_core:
        result["fused_over_naive"] = per_core["fused"] / per_core["naive"]
        # Each round times the contenders back to back: the ratio within a round is less
        # exposed to load that changes over the run than the ratio of the medians.
        result["fused_over_naive_per_round_median"] = statistics.median(
            f / n for f, n in zip(rates["fused"], rates["naive"]))
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 64 images (smoke test).")
    parser.add_argument("--rounds", type=int, default=5, help="Rounds (contenders alternate).")
    parser.add_argument(
        "--images", type=int, default=512, help="Images timed per contender per round."
    )
    parser.add_argument("--cores", type=int, default=os.cpu_count(), help="tf.data threads.")
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help=f"Comma-separated subset of {CONTENDERS}.")
    parser.add_argument("--json", default=None, help="Write the results to this JSON file.")
    args = parser.parse_args(argv)
    contenders = tuple(c for c in args.contenders.split(",") if c)
    unknown = [c for c in contenders if c not in CONTENDERS]
    if unknown:
        parser.error(f"--contenders={args.contenders}: unknown {unknown}; allowed: {CONTENDERS}.")
    rounds, images = (2, 64) if args.quick else (args.rounds, args.images)
    result = run(rounds, images, args.cores, contenders)
    for name, rate in result["images_per_s_per_core"].items():
        print(f"{name:12s} {rate:8.1f} images/s per core")
    if "fused_over_naive" in result:
        print(f"fused / naive = {result['fused_over_naive']:.2f}x (median of per-round ratios "
              f"{result['fused_over_naive_per_round_median']:.2f}x)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
