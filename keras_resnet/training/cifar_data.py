"""CIFAR-10, CIFAR-100 and Fashion-MNIST for the CIFAR trainer (Sec. 4.2).

Loaders for three sources (TFDS, the original release files, an image folder), the 45k/5k
train/validation split, the per-pixel training mean image, and the augmentation of Sec. 4.2
("4 pixels are padded on each side, and a 32x32 crop is randomly sampled from the padded image or
its horizontal flip"), for tf.data (TensorFlow) and numpy (JAX without TensorFlow).

The data order is a pure function of (seed, step): epoch e is the permutation
`default_rng([seed, e])` of the training set, and step s takes the next `batch` indices of the
concatenated epochs, so a resumed run continues at the exact data position.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import pickle
import socket
import struct
import urllib.parse
from dataclasses import dataclass

import numpy as np

from keras_resnet.training.errors import UsageError

DATASETS = ("cifar10", "cifar100", "fashion_mnist")
SOURCES = ("tfds", "files", "folder")
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot"]
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
PAD = 4  # Sec. 4.2


class DataError(UsageError):
    """Missing or unreadable data; the message names the path and what to do."""


@dataclass
class ImageData:
    """A dataset in memory: uint8 images (N, H, W, C) and int32 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]


# --------------------------------------------------------------------------- loading

def load(dataset: str, source: str, data_dir: str | None = None,
         max_train: int | None = None, max_test: int | None = None, seed: int = 0) -> ImageData:
    """Load `dataset` from `source`; optionally a random subset of `max_train` / `max_test`."""
    if dataset not in DATASETS:
        raise DataError(f"--dataset={dataset!r}: unknown; allowed: {', '.join(DATASETS)}.")
    if source not in SOURCES:
        raise DataError(f"--data_source={source!r}: unknown; allowed: {', '.join(SOURCES)}.")
    if source == "tfds":
        data = _load_tfds(dataset, data_dir)
    elif source == "files":
        data = _load_files(dataset, data_dir)
    else:
        data = _load_folder(dataset, data_dir, max_train, max_test, seed)
    return subset(data, max_train, max_test, seed)


def subset(data: ImageData, max_train: int | None, max_test: int | None, seed: int) -> ImageData:
    """A random subset of at most `max_train` training and `max_test` test images."""
    rng = np.random.default_rng([seed, 7])

    def take(x, y, limit):
        if not limit or limit >= len(x):
            return x, y
        keep = np.sort(rng.permutation(len(x))[:limit])
        return x[keep], y[keep]

    x_train, y_train = take(data.x_train, data.y_train, max_train)
    x_test, y_test = take(data.x_test, data.y_test, max_test)
    return ImageData(x_train, y_train, x_test, y_test, data.class_names)


def _load_tfds(dataset: str, data_dir: str | None) -> ImageData:
    """The dataset from TFDS, downloaded and prepared first where it is absent (as `tfds.load`)."""
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise DataError("--data_source=tfds needs tensorflow-datasets (pip install "
                        "tensorflow-datasets); or use --data_source=files|folder.") from None
    if importlib.util.find_spec("importlib_resources") is None:  # TFDS imports it undeclared
        raise DataError("--data_source=tfds needs importlib_resources, which tensorflow-datasets "
                        "imports without declaring it (pip install importlib_resources; "
                        "`pip install -e .` installs it).")
    builder = tfds.builder(dataset, data_dir=data_dir)
    if not builder.is_prepared():
        try:  # what TFDS reads as it is (tfds.testing.mock_data, for one) needs no download
            builder.as_dataset(split="train")
        except AssertionError:  # TFDS's "dataset not found"
            _download(builder, dataset)
    arrays = []
    for split in ("train", "test"):
        batches = tfds.as_numpy(builder.as_dataset(split=split).batch(4096))
        parts = [(b["image"], b["label"]) for b in batches]
        arrays += [np.concatenate([p[0] for p in parts]).astype(np.uint8),
                   np.concatenate([p[1] for p in parts]).astype(np.int32)]
    return ImageData(*arrays, list(builder.info.features["label"].names))


def _download(builder, dataset: str) -> None:
    """Download and prepare a TFDS dataset; offline, fail within seconds (TFDS itself retries
    for minutes) with one line saying what to do."""
    how = (f"download it where the network works (`tfds build {dataset} --data_dir=DIR`) and "
           f"pass --data_dir=DIR, or use --data_source=files|folder.")
    where = f"--data_source=tfds: {dataset!r} is not in {builder.data_dir}"
    for url in sorted(builder.url_infos or {}):
        address = urllib.parse.urlsplit(url)
        port = address.port or (443 if address.scheme == "https" else 80)
        try:
            socket.create_connection((address.hostname, port), timeout=10).close()
        except OSError as error:
            raise DataError(f"{where} and cannot be downloaded ({address.hostname}: "
                            f"{error}); {how}") from None
    print(f"Downloading {dataset} to {builder.data_dir} (TFDS)", flush=True)
    try:
        builder.download_and_prepare()
    except Exception as error:  # requests, checksum and TFDS errors alike
        first = (str(error).strip().splitlines() or [""])[0]
        raise DataError(f"{where} and downloading it failed ({type(error).__name__}: "
                        f"{first}); {how}") from None


def _find_dir(data_dir: str | None, name: str, how: str) -> str:
    """`data_dir/name`, or `data_dir` itself if it is that folder."""
    if data_dir is None:
        raise DataError(f"--data_dir is required for this dataset and source: {how} Or "
                        f"--data_source=tfds, which downloads it.")
    for candidate in (os.path.join(data_dir, name), data_dir):
        if os.path.isdir(candidate) and os.path.basename(os.path.normpath(candidate)) == name:
            return candidate
    raise DataError(f"Data not found: {os.path.join(data_dir, name)} does not exist. {how}")


def _unpickle(path: str) -> dict:
    if not os.path.exists(path):
        raise DataError(f"Data not found: {path} is missing.")
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="bytes")
    except Exception as error:
        raise DataError(f"Corrupt data file {path}: {type(error).__name__}: {error}") from None


def _pickled_images(path: str, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(path)
    try:
        flat = np.asarray(batch[b"data"], np.uint8)
        labels = np.asarray(batch[label_key], np.int32)
        images = flat.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    except (KeyError, ValueError, TypeError) as error:
        raise DataError(f"Corrupt data file {path}: not a CIFAR batch ({error}).") from None
    if len(images) != len(labels):
        raise DataError(f"Corrupt data file {path}: {len(images)} images but {len(labels)} labels.")
    return images, labels


def _load_files(dataset: str, data_dir: str | None) -> ImageData:
    if dataset == "fashion_mnist":
        return _load_fashion_mnist(data_dir or FASHION_MNIST_DIR)
    get = ("Get it from https://www.cs.toronto.edu/~kriz/cifar.html (python version) and unpack "
           "it there.")
    if dataset == "cifar10":
        root = _find_dir(data_dir, "cifar-10-batches-py", get)
        parts = [
            _pickled_images(os.path.join(root, f"data_batch_{i}"), b"labels") for i in range(1, 6)
        ]
        x_test, y_test = _pickled_images(os.path.join(root, "test_batch"), b"labels")
        names = [n.decode() for n in _unpickle(os.path.join(root, "batches.meta"))[b"label_names"]]
        x_train = np.concatenate([p[0] for p in parts])
        y_train = np.concatenate([p[1] for p in parts])
    else:
        root = _find_dir(data_dir, "cifar-100-python", get)
        x_train, y_train = _pickled_images(os.path.join(root, "train"), b"fine_labels")
        x_test, y_test = _pickled_images(os.path.join(root, "test"), b"fine_labels")
        names = [n.decode() for n in _unpickle(os.path.join(root, "meta"))[b"fine_label_names"]]
    return ImageData(x_train, y_train, x_test, y_test, names)


def read_idx(path: str) -> np.ndarray:
    """An idx file (gzipped or not) of unsigned bytes, as in the MNIST / Fashion-MNIST releases."""
    if not os.path.exists(path):
        raise DataError(
            f"Data not found: {path} is missing. Install Debian's dataset-fashion-mnist "
            "(apt-get install dataset-fashion-mnist) or pass --data_dir with the four idx .gz "
            "files."
        )
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            raw = f.read()
        zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
        if zero != 0 or dtype != 0x08:
            raise ValueError(f"magic {raw[:4].hex()} is not an unsigned-byte idx header")
        shape = struct.unpack(f">{ndim}I", raw[4: 4 + 4 * ndim])
        array = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
        return array.reshape(shape)
    except Exception as error:
        raise DataError(f"Corrupt data file {path}: {type(error).__name__}: {error}") from None


def _load_fashion_mnist(root: str) -> ImageData:
    arrays = {}
    for split, (images, labels) in FASHION_MNIST_FILES.items():
        x = read_idx(os.path.join(root, images))
        y = read_idx(os.path.join(root, labels))
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"Corrupt data files in {root}: {images} has shape {x.shape}, "
                            f"{labels} has shape {y.shape}.")
        arrays[split] = (x[..., None], y.astype(np.int32))
    return ImageData(*arrays["train"], *arrays["test"], list(FASHION_MNIST_CLASSES))


def _load_folder(dataset: str, data_dir: str | None, max_train: int | None,
                 max_test: int | None, seed: int) -> ImageData:
    how = ("Expected DIR/{train,test}/<class>/*.jpg|*.png; e.g. `tar xzf "
           "shared/datasets/cifar10-jpeg.tar.gz -C DIR` and --data_dir=DIR/cifar10-jpeg.")
    if data_dir is None:
        raise DataError(f"--data_source=folder needs --data_dir. {how}")
    splits = {}
    for split, limit in (("train", max_train), ("test", max_test)):
        root = os.path.join(data_dir, split)
        if not os.path.isdir(root):
            raise DataError(f"Data not found: {root} does not exist. {how}")
        classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        files = [(os.path.join(root, c, f), i) for i, c in enumerate(classes)
                 for f in sorted(os.listdir(os.path.join(root, c)))
                 if f.lower().endswith(IMAGE_EXTENSIONS)]
        if not files:
            raise DataError(f"Data not found: no images in {root}/<class>/. {how}")
        if limit and limit < len(files):  # decode only the subset
            keep = np.sort(np.random.default_rng([seed, 7]).permutation(len(files))[:limit])
            files = [files[i] for i in keep]
        splits[split] = (classes, _decode_images([f for f, _ in files]),
                         np.asarray([label for _, label in files], np.int32))
    if splits["train"][0] != splits["test"][0]:
        raise DataError(f"{data_dir}: train and test have different class folders.")
    return ImageData(splits["train"][1], splits["train"][2], splits["test"][1], splits["test"][2],
                     splits["train"][0])


def _decode_images(paths: list[str]) -> np.ndarray:
    from PIL import Image

    images = []
    for path in paths:
        try:
            with Image.open(path) as image:
                images.append(np.asarray(image.convert("RGB") if image.mode not in ("L", "RGB")
                                         else image))
        except Exception as error:
            raise DataError(f"Corrupt data file {path}: {type(error).__name__}: {error}") from None
    shapes = {i.shape for i in images}
    if len(shapes) != 1:
        raise DataError(
            f"Images of different shapes in {os.path.dirname(os.path.dirname(paths[0]))}: "
            f"{sorted(shapes)[:4]}."
        )
    stacked = np.stack(images)
    return stacked[..., None] if stacked.ndim == 3 else stacked


# --------------------------------------------------------------------------- preparation

def pad_to(images: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad (N, H, W, C) images centrally to `size` x `size` (Fashion-MNIST 28 -> 32)."""
    dh, dw = size - images.shape[1], size - images.shape[2]
    if dh < 0 or dw < 0:
        raise ValueError(f"pad_to: images {images.shape[1:3]} are larger than {size}.")
    return np.pad(images, ((0, 0), (dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2), (0, 0)))


def split_validation(x: np.ndarray, y: np.ndarray, validation_size: int, seed: int = 0):
    """Sec. 4.2's 45k/5k split: a fixed random `validation_size` images held out.
    Returns (x_train, y_train, x_val, y_val); the validation arrays are None for size 0."""
    if validation_size <= 0:
        return x, y, None, None
    if validation_size >= len(x):
        raise DataError(f"--validation_size={validation_size}: must be below the {len(x)} "
                         f"training images.")
    order = np.random.default_rng([seed, 45]).permutation(len(x))
    val, train = np.sort(order[:validation_size]), np.sort(order[validation_size:])
    return x[train], y[train], x[val], y[val]


def split_validation_per_class(x: np.ndarray, y: np.ndarray, per_class: int, seed: int = 0):
    """A class-balanced split: a fixed random `per_class` images of every class in `y` held out.
    Returns (x_train, y_train, x_val, y_val) like `split_validation`."""
    if per_class <= 0:
        return x, y, None, None
    rng = np.random.default_rng([seed, 45])
    held_out = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        if per_class >= len(members):
            raise DataError(f"--validation_per_class={per_class}: must be below the {len(members)} "
                            f"training images of class {label}.")
        held_out.append(rng.permutation(members)[:per_class])
    val = np.sort(np.concatenate(held_out))
    train = np.setdiff1d(np.arange(len(x)), val)
    return x[train], y[train], x[val], y[val]


def mean_image(images: np.ndarray) -> np.ndarray:
    """The per-pixel mean of the training images (Sec. 4.2), float32 (H, W, C)."""
    return images.astype(np.float64).mean(axis=0).astype(np.float32)


def batch_indices(num_examples: int, batch: int, seed: int, first_step: int,
                  num_steps: int) -> np.ndarray:
    """Training-set indices of steps [first_step, first_step + num_steps), shape (steps, batch).

    Epoch e is permutation `default_rng([seed, e])`; steps read the concatenated epochs.
    """
    start, stop = first_step * batch, (first_step + num_steps) * batch
    first_epoch, last_epoch = start // num_examples, (stop - 1) // num_examples
    stream = np.concatenate([np.random.default_rng([seed, e]).permutation(num_examples)
                             for e in range(first_epoch, last_epoch + 1)])
    offset = start - first_epoch * num_examples
    return stream[offset: offset + stop - start].reshape(num_steps, batch)


def border_fill(dataset: str, mean: np.ndarray) -> np.ndarray | None:
    """What the augmentation's 4-pixel border shows (Sec. 4.2 pads after mean subtraction).

    CIFAR: the per-pixel mean image, so that the border is 0 once the model subtracts the mean,
    as in the paper's setup. Fashion-MNIST: None, i.e. black, its own background (and the colour
    of the 28 -> 32 padding)."""
    return None if dataset == "fashion_mnist" else mean


def augment_numpy(images: np.ndarray, rng: np.random.Generator, pad: int = PAD,
                  flip: bool = True, fill: np.ndarray | None = None) -> np.ndarray:
    """Sec. 4.2: pad by `pad`, random crop back to the original size, random horizontal flip;
    float32 raw pixels. The border is `fill[i, j]` at output pixel (i, j) (an (H, W, C) image,
    see `border_fill`), or 0 if `fill` is None."""
    n, h, w, _ = images.shape
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    dy = rng.integers(0, 2 * pad + 1, n)
    dx = rng.integers(0, 2 * pad + 1, n)
    rows = dy[:, None] + np.arange(h)[None, :]
    cols = dx[:, None] + np.arange(w)[None, :]
    out = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]].astype(np.float32)
    if flip:
        flips = rng.random(n) < 0.5
        out[flips] = out[flips, :, ::-1]
        cols = np.where(flips[:, None], cols[:, ::-1], cols)
    if fill is not None:
        inside = (((rows >= pad) & (rows < pad + h))[:, :, None]
                  & ((cols >= pad) & (cols < pad + w))[:, None, :])
        out = np.where(inside[..., None], out, np.asarray(fill, np.float32)[None])
    return out


def augment_tf(images, seed, pad: int = PAD, flip: bool = True, fill: np.ndarray | None = None):
    """`augment_numpy` in TensorFlow ops, with stateless randomness from `seed` (shape [2])."""
    import tensorflow as tf

    shape = tf.shape(images)
    n, h, w = shape[0], shape[1], shape[2]
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    offsets = tf.random.stateless_uniform([n, 2], seed, 0, 2 * pad + 1, dtype=tf.int32)
    rows = offsets[:, :1] + tf.range(h)[None, :]
    cols = offsets[:, 1:] + tf.range(w)[None, :]
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    out = tf.cast(tf.gather(out, cols, axis=2, batch_dims=1), tf.float32)
    if flip:
        flips = tf.random.stateless_uniform([n], seed + [0, 1]) < 0.5
        out = tf.where(flips[:, None, None, None], tf.reverse(out, axis=[2]), out)
        cols = tf.where(flips[:, None], tf.reverse(cols, axis=[1]), cols)
    if fill is not None:
        inside = (((rows >= pad) & (rows < pad + h))[:, :, None]
                  & ((cols >= pad) & (cols < pad + w))[:, None, :])
        out = tf.where(inside[..., None], out, tf.constant(fill, tf.float32)[None])
    return out


def tf_train_dataset(x: np.ndarray, y: np.ndarray, batch: int, seed: int, first_step: int,
                     num_steps: int, augment: bool = True, fill: np.ndarray | None = None):
    """tf.data of the global batches of steps [first_step, first_step + num_steps); `fill`: the
    augmentation's border (`border_fill`)."""
    import tensorflow as tf

    indices = batch_indices(len(x), batch, seed, first_step, num_steps)
    steps = np.arange(first_step, first_step + num_steps, dtype=np.int64)
    images, labels = tf.constant(x), tf.constant(y)

    def make_batch(index, step):
        batch_images = tf.gather(images, index)
        if augment:
            out = augment_tf(batch_images, tf.stack([tf.constant(seed, tf.int64), step]),
                             fill=fill)
        else:
            out = tf.cast(batch_images, tf.float32)
        return out, tf.gather(labels, index)

    options = tf_data_options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return (tf.data.Dataset.from_tensor_slices((indices, steps))
            .map(make_batch, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE)
            .with_options(options))


def tf_data_options():
    """Options of the CIFAR pipelines: deterministic, and without tf.data's autotuning.

    The autotuner's thread sleeps in doubling periods (10 ms, 20 ms, ...) and the iterator's
    teardown waits for it: every `fit` and `evaluate` ended up to one period late (the measured
    cost is in docs/performance.md). These pipelines are one batched gather and crop per step,
    so AUTOTUNE's untuned defaults (parallelism = cores) are all they need.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.deterministic = True
    options.autotune.enabled = False
    return options


def tf_eval_dataset(x: np.ndarray, y: np.ndarray, batch: int):
    """Batches of `(x, y)` for validation or test, with `tf_data_options` (what `evaluate`
    would build from the arrays, without the autotuner's teardown wait)."""
    import tensorflow as tf

    return (tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)
            .prefetch(tf.data.AUTOTUNE).with_options(tf_data_options()))


def numpy_train_sequence(x: np.ndarray, y: np.ndarray, batch: int, seed: int, first_step: int,
                         num_steps: int, augment: bool = True, fill: np.ndarray | None = None):
    """A keras.utils.PyDataset of the same batches as `tf_train_dataset` (numpy augmentation),
    for the JAX backend without TensorFlow."""
    import keras

    class TrainBatches(keras.utils.PyDataset):
        def __len__(self) -> int:
            return num_steps

        def __getitem__(self, index: int):
            step = first_step + index
            rows = batch_indices(len(x), batch, seed, step, 1)[0]
            if augment:
                images = augment_numpy(x[rows], np.random.default_rng([seed, step]), fill=fill)
            else:
                images = x[rows].astype(np.float32)
            return images, y[rows]

    return TrainBatches()
