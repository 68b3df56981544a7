"""ImageNet input pipeline of He et al. 2015, Sec. 3.4, as `tf.data`.

Sources: TFDS `imagenet2012`, the standard ImageNet TFRecord shards (`train-*-of-*`,
`validation-*-of-*`) and the image-folder layout (`train/<class>/*`, `val/<class>/*`). Every path
goes through `tf.io.gfile`, so `gs://` works.

Training view (Sec. 3.4): shorter side resized to a random length in [256, 480], a random 224x224
crop, random horizontal flip, AlexNet's PCA lighting noise. The crop is decoded directly from the
JPEG (`tf.io.decode_and_crop_jpeg`): only the window that becomes the crop is decoded. Images leave
the pipeline as raw float32 pixels 0..255; the mean is subtracted by the model's first layer
(`keras_resnet.layers.SubtractMean`), so a saved model takes raw pixels.

With `image_size` S < 224 every length of the paper is scaled by S/224 (e.g. [256, 480] -> [73, 137]
for S = 64, eval shorter side 256 -> 73).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os

import numpy as np
import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE
PAPER_IMAGE_SIZE = 224
PAPER_SCALE_RANGE = (256, 480)
PAPER_EVAL_RESIZE = 256
SOURCES = ("auto", "tfds", "tfrecord", "folder")
CROPS = ("scale", "inception")
MEANS = ("pixel", "channel")
IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png")
SPLIT_DIRS = {"train": "train", "validation": "val"}
SHARD_PATTERNS = {"train": "train-*-of-*", "validation": "validation-*-of-*"}
TFDS_NAME = "imagenet2012"
INFO_FILE = "data_info.json"
STATS_FILE = "input_statistics.npz"


def scaled(length: int, image_size: int) -> int:
    """A length of the paper (defined for 224 crops) scaled to `image_size`: round(L * S / 224)."""
    return max(1, round(length * image_size / PAPER_IMAGE_SIZE))


def train_scale_range(image_size: int) -> tuple[int, int]:
    """Sec. 3.4 scale augmentation range [256, 480], scaled by image_size / 224."""
    return scaled(PAPER_SCALE_RANGE[0], image_size), scaled(PAPER_SCALE_RANGE[1], image_size)


def eval_resize(image_size: int) -> int:
    """Shorter side for 1-crop and 10-crop testing: 256, scaled by image_size / 224."""
    return scaled(PAPER_EVAL_RESIZE, image_size)


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DataInfo:
    """What the data says about itself: classes and split sizes."""

    source: str  # "tfds" | "tfrecord" | "folder"
    data_dir: str
    class_names: tuple[str, ...]
    num_examples: dict[str, int]
    label_offset: int = 0  # subtracted from TFRecord labels (the standard shards count from 1)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def dataset(self) -> str:
        """The `metadata.json` dataset name: "imagenet" for TFDS/TFRecord ImageNet, else
        "folder"."""
        return "folder" if self.source == "folder" else "imagenet"

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "class_names": list(self.class_names)}

    @classmethod
    def from_json(cls, data: dict) -> DataInfo:
        return cls(**{**data, "class_names": tuple(data["class_names"])})


def detect_source(data_dir: str) -> str:
    """`auto` source: TFRecord shards if `train-*-of-*` exist, a folder set if `train/` exists,
    else TFDS."""
    if tf.io.gfile.glob(os.path.join(data_dir, SHARD_PATTERNS["train"])):
        return "tfrecord"
    if tf.io.gfile.isdir(os.path.join(data_dir, SPLIT_DIRS["train"])):
        return "folder"
    return "tfds"


def _shards(data_dir: str, split: str) -> list[str]:
    pattern = os.path.join(data_dir, SHARD_PATTERNS[split])
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(
            f"data_dir={data_dir!r}: no TFRecord shards for split {split!r} matching {pattern!r} "
            f"(expected the standard ImageNet shards {SHARD_PATTERNS[split]!r} with features "
            "'image/encoded' and 'image/class/label')."
        )
    return files


def _folder_classes(data_dir: str) -> list[str]:
    train_dir = os.path.join(data_dir, SPLIT_DIRS["train"])
    if not tf.io.gfile.isdir(train_dir):
        raise FileNotFoundError(
            f"data_dir={data_dir!r}: no folder {train_dir!r}; the folder layout is "
            "train/<class>/*.JPEG and val/<class>/*.JPEG."
        )
    names = sorted(n.rstrip("/") for n in tf.io.gfile.listdir(train_dir)
                   if tf.io.gfile.isdir(os.path.join(train_dir, n.rstrip("/"))))
    if not names:
        raise FileNotFoundError(f"data_dir={data_dir!r}: {train_dir!r} has no class folders.")
    return names


def _folder_files(
    data_dir: str, split: str, class_names: tuple[str, ...]
) -> tuple[list[str], list[int]]:
    split_dir = os.path.join(data_dir, SPLIT_DIRS[split])
    if not tf.io.gfile.isdir(split_dir):
        raise FileNotFoundError(
            f"data_dir={data_dir!r}: no folder {split_dir!r} for split {split!r} "
            f"(the folder layout is {SPLIT_DIRS['train']}/<class>/*, "
            f"{SPLIT_DIRS['validation']}/<class>/*)."
        )
    index = {name: i for i, name in enumerate(class_names)}
    paths, labels = [], []
    for name in sorted(n.rstrip("/") for n in tf.io.gfile.listdir(split_dir)):
        class_dir = os.path.join(split_dir, name)
        if not tf.io.gfile.isdir(class_dir):
            continue
        if name not in index:
            raise ValueError(f"{class_dir!r}: class {name!r} is not one of the training classes.")
        files = sorted(
            f for f in tf.io.gfile.listdir(class_dir) if f.lower().endswith(IMAGE_EXTENSIONS)
        )
        paths += [os.path.join(class_dir, f) for f in files]
        labels += [index[name]] * len(files)
    if not paths:
        raise FileNotFoundError(
            f"{split_dir!r}: no images with extensions {IMAGE_EXTENSIONS} in its class folders."
        )
    return paths, labels


def _tfds_builder(data_dir: str, manual_dir: str | None):
    import tensorflow_datasets as tfds

    builder = tfds.builder(TFDS_NAME, data_dir=data_dir or None)
    try:
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
            if manual_dir
            else None
        )
    except Exception as error:  # noqa: BLE001 (TFDS raises assorted types for "cannot prepare")
        first_line = (str(error).strip().splitlines() or [""])[0]
        raise FileNotFoundError(
            f"data_dir={data_dir!r}: no TFRecord shards ({SHARD_PATTERNS['train']}), no "
            f"{SPLIT_DIRS['train']}/<class>/ folder, and TFDS {TFDS_NAME} cannot be prepared there "
            f"(tfds_manual_dir={manual_dir!r}: {type(error).__name__}: {first_line}). "
            "Give a data_dir in one of these layouts, or a TFDS manual dir holding "
            "ILSVRC2012_img_train.tar and "
            "ILSVRC2012_img_val.tar."
        ) from None
    return builder


def _tfds_dataset(
    builder, split: str, shuffle: bool, input_context, seed: int | None
) -> tf.data.Dataset:
    import tensorflow_datasets as tfds

    read_config = tfds.ReadConfig(input_context=input_context, shuffle_seed=seed,
                                  interleave_cycle_length=16, try_autocache=False)
    ds = builder.as_dataset(split=split, shuffle_files=shuffle, read_config=read_config,
                            decoders={"image": tfds.decode.SkipDecoding()})
    return ds.map(lambda ex: (ex["image"], tf.cast(ex["label"], tf.int32)))


def _count(ds: tf.data.Dataset) -> int:
    return int(ds.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))


def _parse_record(record: tf.Tensor, label_offset: int) -> tuple[tf.Tensor, tf.Tensor]:
    features = tf.io.parse_single_example(record, {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/class/label": tf.io.FixedLenFeature([], tf.int64),
    })
    return features["image/encoded"], tf.cast(
        features["image/class/label"] - label_offset, tf.int32
    )


def _scan_tfrecord_labels(data_dir: str) -> DataInfo:
    """Classes of TFRecord shards from the validation labels (and `image/class/synset` if
    present)."""
    files = _shards(data_dir, "validation")
    spec = {"image/class/label": tf.io.FixedLenFeature([], tf.int64),
            "image/class/synset": tf.io.FixedLenFeature([], tf.string, default_value="")}
    ds = tf.data.TFRecordDataset(files, num_parallel_reads=AUTOTUNE).batch(1024)
    ds = ds.map(lambda r: tf.io.parse_example(r, spec), num_parallel_calls=AUTOTUNE)
    synsets: dict[int, str] = {}
    count = 0
    for batch in ds.as_numpy_iterator():
        count += len(batch["image/class/label"])
        for label, synset in zip(batch["image/class/label"], batch["image/class/synset"]):
            synsets.setdefault(int(label), synset.decode())
    if not synsets:
        raise ValueError(f"data_dir={data_dir!r}: the validation shards hold no records.")
    low, high = min(synsets), max(synsets)
    names = tuple(synsets.get(label) or str(label - low) for label in range(low, high + 1))
    train = _count(tf.data.TFRecordDataset(_shards(data_dir, "train"), num_parallel_reads=AUTOTUNE))
    return DataInfo(
        "tfrecord", data_dir, names, {"train": train, "validation": count}, label_offset=low
    )


def describe_data(data_dir: str, source: str = "auto", tfds_manual_dir: str | None = None,
                  cache_dir: str | None = None) -> DataInfo:
    """Classes and split sizes of a data set, read from the data (cached in `cache_dir`).

    TFDS: from the builder's info. Folder: the sorted `train/` class folders. TFRecord: the label
    range of the validation shards (the standard shards label 1..1000: offset 1), synset ids from
    `image/class/synset` where present; the splits are counted once.
    """
    if source not in SOURCES:
        raise ValueError(f"source={source!r}: must be one of {SOURCES}.")
    cache = os.path.join(cache_dir, INFO_FILE) if cache_dir else None
    if cache and tf.io.gfile.exists(cache):
        with tf.io.gfile.GFile(cache) as f:
            info = DataInfo.from_json(json.load(f))
        if info.data_dir == data_dir and source in ("auto", info.source):
            return info
    kind = detect_source(data_dir) if source == "auto" else source
    if kind == "tfrecord":
        info = _scan_tfrecord_labels(data_dir)
    elif kind == "folder":
        names = tuple(_folder_classes(data_dir))
        counts = {split: len(_folder_files(data_dir, split, names)[0]) for split in SPLIT_DIRS}
        info = DataInfo("folder", data_dir, names, counts)
    else:
        builder = _tfds_builder(data_dir, tfds_manual_dir)
        names = tuple(builder.info.features["label"].names)
        counts = {}
        for split in SPLIT_DIRS:
            known = builder.info.splits[split].num_examples if split in builder.info.splits else 0
            counts[split] = known or _count(_tfds_dataset(builder, split, False, None, None))
        info = DataInfo("tfds", data_dir, names, counts)
    if cache:
        tf.io.gfile.makedirs(cache_dir)
        with tf.io.gfile.GFile(cache, "w") as f:
            json.dump(info.to_json(), f, indent=1)
    return info


def encoded_examples(
    info: DataInfo,
    split: str,
    shuffle: bool,
    input_context=None,
    seed: int | None = None,
    tfds_manual_dir: str | None = None,
) -> tf.data.Dataset:
    """(encoded image bytes, int32 label) of one split, sharded for `input_context` (multi-host),
    files read in parallel and interleaved; file order shuffled when `shuffle`."""
    if split not in SPLIT_DIRS:
        raise ValueError(f"split={split!r}: must be one of {tuple(SPLIT_DIRS)}.")
    if info.source == "tfds":
        return _tfds_dataset(_tfds_builder(info.data_dir, tfds_manual_dir), split, shuffle,
                             input_context, seed)
    if info.source == "tfrecord":
        files = tf.data.Dataset.from_tensor_slices(_shards(info.data_dir, split))
        if input_context and input_context.num_input_pipelines > 1:
            files = files.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        if shuffle:
            files = files.shuffle(4096, seed=seed, reshuffle_each_iteration=True)
        records = files.interleave(
            lambda f: tf.data.TFRecordDataset(f, buffer_size=8 << 20), cycle_length=16,
            num_parallel_calls=AUTOTUNE, deterministic=not shuffle)
        return records.map(
            lambda r: _parse_record(r, info.label_offset),
            num_parallel_calls=AUTOTUNE,
            deterministic=not shuffle,
        )
    paths, labels = _folder_files(info.data_dir, split, info.class_names)
    ds = tf.data.Dataset.from_tensor_slices((paths, tf.constant(labels, tf.int32)))
    if input_context and input_context.num_input_pipelines > 1:
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if shuffle:
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    return ds.map(lambda p, y: (tf.io.read_file(p), y), num_parallel_calls=AUTOTUNE,
                  deterministic=not shuffle)


# --------------------------------------------------------------------------------------------
# Decoding and the views of Sec. 3.4
# --------------------------------------------------------------------------------------------


def image_shape(encoded: tf.Tensor) -> tf.Tensor:
    """[height, width] of an encoded image; read from the JPEG header without decoding."""
    return tf.cond(
        tf.io.is_jpeg(encoded),
        lambda: tf.cast(tf.image.extract_jpeg_shape(encoded)[:2], tf.int32),
        lambda: tf.shape(tf.io.decode_image(encoded, channels=3, expand_animations=False))[:2],
    )


def decode_window(encoded: tf.Tensor, window: tf.Tensor) -> tf.Tensor:
    """Decode only `window` = [y, x, height, width] of an image (fused decode-and-crop for JPEG)."""

    def other() -> tf.Tensor:
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        return image[window[0]:window[0] + window[2], window[1]:window[1] + window[3]]

    image = tf.cond(tf.io.is_jpeg(encoded),
                    lambda: tf.io.decode_and_crop_jpeg(encoded, window, channels=3), other)
    return tf.ensure_shape(image, [None, None, 3])


def decode(encoded: tf.Tensor) -> tf.Tensor:
    """Decode a whole image to uint8 RGB [H, W, 3] (grey-scale images are expanded)."""
    return tf.ensure_shape(tf.io.decode_image(encoded, channels=3, expand_animations=False),
                           [None, None, 3])


def scale_window(shape: tf.Tensor, crop_size: int, scale_range: tuple[int, int],
                 seed: tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    """Sec. 3.4 scale augmentation in the original image's coordinates.

    Draws the shorter side L uniformly from the integers of `scale_range`; the random crop_size
    square of the image resized to shorter side L is the square window of side
    round(crop_size * min(H, W) / L) of the original. Returns (L, window [y, x, side, side]).
    `seed` (shape [2]) makes the draw stateless.
    """
    low, high = scale_range
    if not crop_size <= low <= high:
        raise ValueError(f"scale_range={scale_range}: need crop_size={crop_size} <= low <= high.")
    seeds = (tf.random.split(seed, 3) if seed is not None else [None] * 3)

    def uniform(i: int, maxval: tf.Tensor) -> tf.Tensor:
        if seed is None:
            return tf.random.uniform([], 0, maxval, dtype=tf.int32)
        return tf.random.stateless_uniform([], seeds[i], 0, maxval, dtype=tf.int32)

    shorter = uniform(0, high - low + 1) + low
    short_side = tf.minimum(shape[0], shape[1])
    side = tf.cast(
        tf.round(crop_size * tf.cast(short_side, tf.float32) / tf.cast(shorter, tf.float32)),
        tf.int32,
    )
    side = tf.clip_by_value(side, 1, short_side)
    y = uniform(1, shape[0] - side + 1)
    x = uniform(2, shape[1] - side + 1)
    return shorter, tf.stack([y, x, side, side])


def inception_window(shape: tf.Tensor) -> tf.Tensor:
    """Random-resized ("inception") crop: 8%..100% of the area, aspect ratio 3/4..4/3."""
    begin, size, _ = tf.image.sample_distorted_bounding_box(
        tf.concat([shape, [3]], 0), bounding_boxes=tf.zeros([1, 0, 4]), min_object_covered=0.1,
        aspect_ratio_range=(3 / 4, 4 / 3), area_range=(0.08, 1.0), max_attempts=10,
        use_image_if_no_bounding_boxes=True)
    return tf.stack([begin[0], begin[1], size[0], size[1]])


def center_window(shape: tf.Tensor, crop_size: int, resize: int) -> tf.Tensor:
    """The centre crop_size square of the image resized to shorter side `resize`, in original
    coordinates (1-crop testing, Sec. 3.4 / 4.1)."""
    short_side = tf.minimum(shape[0], shape[1])
    side = tf.cast(tf.round(crop_size * tf.cast(short_side, tf.float32) / resize), tf.int32)
    side = tf.clip_by_value(side, 1, short_side)
    return tf.stack([(shape[0] - side) // 2, (shape[1] - side) // 2, side, side])


def train_view(encoded: tf.Tensor, image_size: int, scale_range: tuple[int, int],
               crop: str = "scale") -> tf.Tensor:
    """One training view (Sec. 3.4): scale-augmented (or inception) crop, resized to
    image_size, random horizontal flip. Raw float32 pixels 0..255."""
    if crop not in CROPS:
        raise ValueError(f"crop={crop!r}: must be one of {CROPS}.")
    shape = image_shape(encoded)
    window = (scale_window(shape, image_size, scale_range)[1] if crop == "scale"
              else inception_window(shape))
    image = decode_window(encoded, window)
    image = tf.image.resize(image, [image_size, image_size])
    return tf.image.random_flip_left_right(image)


def center_view(encoded: tf.Tensor, image_size: int, resize: int) -> tf.Tensor:
    """1-crop test view: shorter side `resize`, centre image_size crop (only that window
    decoded)."""
    image = decode_window(encoded, center_window(image_shape(encoded), image_size, resize))
    return tf.image.resize(image, [image_size, image_size])


def resize_shorter_side(image: tf.Tensor, size: int | tf.Tensor) -> tf.Tensor:
    """Resize so that the shorter side is `size`, keeping the aspect ratio (float32 out)."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.cast(size, tf.float32) / tf.reduce_min(shape)
    new = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), 1)
    return tf.image.resize(image, new)


# --------------------------------------------------------------------------------------------
# Colour augmentation and mean
# --------------------------------------------------------------------------------------------


def pca_lighting(images: tf.Tensor, eigval: tf.Tensor, eigvec: tf.Tensor, std: float = 0.1,
                 seed: tf.Tensor | None = None) -> tf.Tensor:
    """AlexNet's colour augmentation (Krizhevsky et al. 2012, Sec. 4.1), used in Sec. 3.4.

    Adds to every pixel of each image sum_i alpha_i * lambda_i * p_i with alpha_i ~ N(0, std):
    p_i, lambda_i the eigenvectors (columns of `eigvec`) and eigenvalues of the RGB covariance of
    the training pixels on the 0..1 scale (the convention of the reference implementations),
    scaled here to the 0..255 pixels. `images` [B, H, W, 3] float.
    """
    batch = tf.shape(images)[0]
    shape = tf.stack([batch, 3])
    alpha = (tf.random.normal(shape, stddev=std) if seed is None
             else tf.random.stateless_normal(shape, seed, stddev=std))
    eigval = tf.cast(eigval, tf.float32)
    eigvec = tf.cast(eigvec, tf.float32)
    shift = 255.0 * tf.matmul(alpha * eigval, eigvec, transpose_b=True)  # [B, 3]
    return images + tf.cast(shift[:, None, None, :], images.dtype)


@dataclasses.dataclass(frozen=True)
class InputStatistics:
    """Training-set statistics: per-pixel mean image [S, S, 3] (0..255) of the 1-crop view, its
    per-channel mean, and the eigen-decomposition of the RGB covariance (0..1 scale) for PCA
    lighting."""

    mean_image: np.ndarray
    eigval: np.ndarray
    eigvec: np.ndarray
    images: int

    @property
    def channel_mean(self) -> np.ndarray:
        return self.mean_image.mean(axis=(0, 1))

    def mean(self, kind: str) -> np.ndarray:
        """The mean for `SubtractMean`: "pixel" (Sec. 3.4) or "channel"."""
        if kind not in MEANS:
            raise ValueError(f"mean={kind!r}: must be one of {MEANS}.")
        return self.mean_image if kind == "pixel" else self.channel_mean

    def save(self, path: str) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, mean_image=self.mean_image, eigval=self.eigval, eigvec=self.eigvec,
                 images=self.images)
        with tf.io.gfile.GFile(path, "wb") as f:
            f.write(buffer.getvalue())

    @classmethod
    def load(cls, path: str) -> InputStatistics:
        with tf.io.gfile.GFile(path, "rb") as f:
            data = np.load(io.BytesIO(f.read()))
            return cls(data["mean_image"], data["eigval"], data["eigvec"], int(data["images"]))


def compute_statistics(examples: tf.data.Dataset, image_size: int, max_images: int,
                       batch_size: int = 64) -> InputStatistics:
    """Mean image and RGB PCA over the first `max_images` of `examples` (encoded, label), each in
    its 1-crop view (shorter side 256*S/224, centre S crop), as the paper's per-pixel mean."""
    resize = eval_resize(image_size)
    views = (examples.take(max_images)
             .map(lambda e, _: center_view(e, image_size, resize), num_parallel_calls=AUTOTUNE)
             .batch(batch_size).prefetch(AUTOTUNE))
    total = np.zeros([image_size, image_size, 3], np.float64)
    moments = np.zeros([3, 3], np.float64)
    count = 0
    for batch in views.as_numpy_iterator():
        batch = batch.astype(np.float64)
        total += batch.sum(axis=0)
        pixels = batch.reshape(-1, 3) / 255.0
        moments += pixels.T @ pixels
        count += len(batch)
    if count == 0:
        raise ValueError("compute_statistics: the training split yielded no images.")
    mean_image = total / count
    pixel_mean = mean_image.mean(axis=(0, 1)) / 255.0
    covariance = moments / (count * image_size * image_size) - np.outer(pixel_mean, pixel_mean)
    eigval, eigvec = np.linalg.eigh(covariance)
    order = np.argsort(eigval)[::-1]
    return InputStatistics(
        mean_image.astype(np.float32),
        np.maximum(eigval[order], 0).astype(np.float32),
        eigvec[:, order].astype(np.float32),
        count,
    )


def training_statistics(
    info: DataInfo,
    image_size: int,
    max_images: int,
    cache_dir: str | None = None,
    seed: int = 0,
    tfds_manual_dir: str | None = None,
) -> InputStatistics:
    """`compute_statistics` over a seeded random sample of the training split (not the first
    files, which the folder layout sorts by class); cached as `cache_dir/input_statistics.npz`."""
    cache = os.path.join(cache_dir, STATS_FILE) if cache_dir else None
    if cache and tf.io.gfile.exists(cache):
        stats = InputStatistics.load(cache)
        if stats.mean_image.shape[:2] == (image_size, image_size):
            return stats
    examples = encoded_examples(
        info, "train", shuffle=True, seed=seed, tfds_manual_dir=tfds_manual_dir
    )
    stats = compute_statistics(examples, image_size, max_images)
    if cache:
        tf.io.gfile.makedirs(cache_dir)
        stats.save(cache)
    return stats


# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Training view options (Sec. 3.4); the scale range is [256, 480] * image_size / 224."""

    image_size: int = PAPER_IMAGE_SIZE
    crop: str = "scale"
    pca_std: float = 0.1
    shuffle_buffer: int = 10_000


def train_dataset(examples: tf.data.Dataset, batch_size: int, config: AugmentConfig,
                  stats: InputStatistics | None, seed: int | None = None) -> tf.data.Dataset:
    """Infinite batches (images float32 0..255 [B, S, S, 3], int32 labels [B]) of training views.

    `examples`: shuffled (encoded, label) pairs (`encoded_examples`). PCA lighting needs `stats`.
    """
    if config.pca_std and stats is None:
        raise ValueError("train_dataset: pca_std > 0 needs InputStatistics (the RGB eigenvectors).")
    scale_range = train_scale_range(config.image_size)
    ds = examples.repeat()
    if config.shuffle_buffer > 1:
        ds = ds.shuffle(config.shuffle_buffer, seed=seed)
    ds = ds.map(lambda e, y: (train_view(e, config.image_size, scale_range, config.crop), y),
                num_parallel_calls=AUTOTUNE, deterministic=False)
    ds = ds.batch(batch_size, drop_remainder=True)
    if config.pca_std:
        eigval, eigvec = tf.constant(stats.eigval), tf.constant(stats.eigvec)
        ds = ds.map(lambda x, y: (pca_lighting(x, eigval, eigvec, config.pca_std), y),
                    num_parallel_calls=AUTOTUNE, deterministic=False)
    options = tf.data.Options()
    options.deterministic = False
    return ds.with_options(options).prefetch(AUTOTUNE)


def center_crop_dataset(examples: tf.data.Dataset, batch_size: int, image_size: int,
                        resize: int | None = None, drop_remainder: bool = False) -> tf.data.Dataset:
    """Batches of 1-crop test views (shorter side `resize`, default 256*S/224; centre S crop)."""
    resize = resize or eval_resize(image_size)
    ds = examples.map(lambda e, y: (center_view(e, image_size, resize), y),
                      num_parallel_calls=AUTOTUNE)
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(AUTOTUNE)


def steps_per_epoch(num_examples: int, global_batch_size: int) -> int:
    """Full global batches in one pass over `num_examples`."""
    return max(1, math.floor(num_examples / global_batch_size))
