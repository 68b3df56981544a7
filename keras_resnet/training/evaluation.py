"""Testing of Sec. 3.4 / 4.1: 1-crop, 10-crop and fully-convolutional multi-scale; top-1/top-5
error.

Models take raw pixels (0..255) and begin with `SubtractMean` (trained here) or `PreprocessInput`
(pretrained weights). 1-crop and 10-crop run the saved model as it is. Multi-scale testing runs
the same layers (shared weights) on a copy of the graph whose input is (None, None, 3); the
per-pixel mean image is resized to each test image's size (a per-channel mean, and
`PreprocessInput`, apply unchanged).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_resnet.layers import SubtractMean
from keras_resnet.preprocessing import PreprocessInput
from keras_resnet.training import imagenet_input

AUTOTUNE = tf.data.AUTOTUNE
PAPER_SCALES = (224, 256, 384, 480, 640)
PAPER_STRIDE = 32
MODES = ("1crop", "10crop", "multiscale")
RESULTS_FILE = "evaluation.json"


def multiscale_sizes(image_size: int) -> tuple[int, ...]:
    """Shorter sides of Sec. 3.4's multi-scale testing: {224, 256, 384, 480, 640} * image_size
    / 224."""
    return tuple(imagenet_input.scaled(s, image_size) for s in PAPER_SCALES)


def top_k_errors(scores: np.ndarray, labels: np.ndarray, ks: Sequence[int] = (1, 5)) -> dict:
    """{"top1_error", "top5_error", "images"}: fraction of images whose label is not among the
    k highest scores (with fewer than k classes, every label is among them)."""
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    if scores.ndim != 2 or len(scores) != len(labels):
        raise ValueError(f"top_k_errors: scores {scores.shape} and labels {labels.shape} disagree.")
    if len(labels) == 0:
        raise ValueError("top_k_errors: no images were evaluated.")
    # Rank of the true label = number of classes scoring strictly higher.
    true = scores[np.arange(len(labels)), labels]
    rank = (scores > true[:, None]).sum(axis=1)
    out = {f"top{k}_error": float(np.mean(rank >= k)) for k in ks}
    out["images"] = len(labels)
    return out


def ten_crops(image: tf.Tensor, crop_size: int) -> tf.Tensor:
    """The 10 crops of the paper's 10-crop testing (Sec. 4.1, after Krizhevsky et al. 2012):
    centre, top-left, top-right, bottom-left, bottom-right, then the horizontal flips of those five
    in the same order. `image` [H, W, C] with H, W >= crop_size; returns [10, crop, crop, C]."""
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    tf.debugging.assert_greater_equal(
        tf.minimum(height, width),
        crop_size,
        message=f"ten_crops: image smaller than crop_size={crop_size}",
    )
    bottom, right = height - crop_size, width - crop_size
    offsets = [(bottom // 2, right // 2), (0, 0), (0, right), (bottom, 0), (bottom, right)]
    crops = tf.stack([image[y:y + crop_size, x:x + crop_size] for y, x in offsets])
    return tf.concat([crops, tf.reverse(crops, axis=[2])], axis=0)


def _predictor(model: keras.Model) -> Callable[[tf.Tensor], np.ndarray]:
    """Inference on batches of any size and shape (on TensorFlow traced once)."""
    if keras.backend.backend() != "tensorflow":
        return lambda x: np.asarray(model.predict_on_batch(x.numpy()))
    predict = tf.function(lambda x: model(x, training=False),
                          input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    return lambda x: predict(x).numpy()


def center_crop_scores(
    model: keras.Model,
    examples: tf.data.Dataset,
    image_size: int,
    resize: int | None = None,
    batch_size: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """1-crop testing: softmax of the centre crop of the image resized to shorter side `resize`
    (default 256 * image_size / 224). Returns (scores [N, K], labels [N])."""
    batches = imagenet_input.center_crop_dataset(examples, batch_size, image_size, resize)
    predict = _predictor(model)
    scores, labels = [], []
    for images, y in batches:
        scores.append(predict(images))
        labels.append(y.numpy())
    return _concat(scores, labels)


def ten_crop_scores(
    model: keras.Model,
    examples: tf.data.Dataset,
    image_size: int,
    resize: int | None = None,
    batch_size: int = 16,
) -> tuple[np.ndarray, np.ndarray]:
    """10-crop testing: the softmax averaged over `ten_crops` of the image resized to shorter side
    `resize` (default 256 * image_size / 224). Returns (scores [N, K], labels [N])."""
    resize = resize or imagenet_input.eval_resize(image_size)

    def crops(encoded, label):
        image = imagenet_input.resize_shorter_side(imagenet_input.decode(encoded), resize)
        return ten_crops(image, image_size), label

    batches = examples.map(crops, num_parallel_calls=AUTOTUNE).batch(batch_size).prefetch(AUTOTUNE)
    predict = _predictor(model)
    scores, labels = [], []
    for images, y in batches:
        flat = tf.reshape(images, tf.concat([[-1], tf.shape(images)[2:]], 0))
        probs = predict(flat)
        scores.append(probs.reshape(len(y), 10, -1).mean(axis=1))
        labels.append(y.numpy())
    return _concat(scores, labels)


def fully_convolutional(model: keras.Model) -> tuple[np.ndarray, keras.Model]:
    """Split a trained model into its mean (from `SubtractMean`) and a fully-convolutional body.

    The body is the model's graph re-applied, layer by layer, to an input of shape
    (None, None, C): the very same layer objects, so the same weights; `SubtractMean` becomes an
    identity (the caller subtracts the mean at each scale). A model that begins with
    `PreprocessInput` keeps it (it works at any size) and has a zero mean."""
    first = [layer for layer in model.layers if isinstance(layer, (SubtractMean, PreprocessInput))]
    if len(first) != 1:
        raise ValueError(
            f"model {model.name!r}: expected one SubtractMean or PreprocessInput layer (raw-pixel "
            f"input), found {len(first)}."
        )
    if isinstance(first[0], PreprocessInput):
        mean, replaced = np.zeros(model.inputs[0].shape[-1], np.float32), None
    else:
        mean, replaced = keras.ops.convert_to_numpy(first[0].mean), first[0]

    def share(layer):
        return keras.layers.Identity() if layer is replaced else layer

    inputs = keras.tree.map_structure(lambda t: keras.Input((None, None, t.shape[-1])), model.input)
    body = keras.models.clone_model(model, input_tensors=inputs, clone_function=share)
    return mean, body


def scale_view(image: tf.Tensor, shorter: int, multiple: int) -> tf.Tensor:
    """Image resized to shorter side `shorter`, its longer side rounded to a multiple of
    `multiple` (so images of similar aspect ratio share a shape and batch together)."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    longer = tf.reduce_max(shape) * shorter / tf.reduce_min(shape)
    longer = tf.maximum(tf.cast(tf.round(longer / multiple), tf.int32) * multiple, shorter)
    size = tf.where(shape[0] <= shape[1], tf.stack([shorter, longer]), tf.stack([longer, shorter]))
    return tf.image.resize(image, size)


def subtract_resized_mean(image: tf.Tensor, mean: tf.Tensor) -> tf.Tensor:
    """Subtract a per-channel mean, or a per-pixel mean image resized to the image's size."""
    if mean.shape.rank == 3:
        mean = tf.image.resize(mean, tf.shape(image)[:2])
    return image - mean


def multiscale_scores(model: keras.Model, examples: tf.data.Dataset, image_size: int,
                      scales: Sequence[int] | None = None, batch_size: int = 8,
                      ) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
    """Fully-convolutional multi-scale testing (Sec. 3.4): the whole image at each shorter side in
    `scales` (default {224, 256, 384, 480, 640} * image_size / 224), through the same weights;
    softmax scores averaged over scales. The longer side is rounded to a multiple of the nets'
    total stride (32 * image_size / 224) so that images batch by shape. Returns
    (scores [N, K], labels [N], {scale: scores [N, K]})."""
    scales = tuple(scales or multiscale_sizes(image_size))
    mean, body = fully_convolutional(model)
    mean = tf.constant(mean)
    multiple = imagenet_input.scaled(PAPER_STRIDE, image_size)
    predict = _predictor(body)
    indexed = examples.enumerate()
    labels: dict[int, int] = {}
    per_scale: dict[int, np.ndarray] = {}
    for scale in scales:

        def view(index, example, scale=scale):
            encoded, label = example
            image = scale_view(imagenet_input.decode(encoded), scale, multiple)
            return index, subtract_resized_mean(image, mean), label

        def key(index, image, label):
            shape = tf.cast(tf.shape(image), tf.int64)
            return shape[0] * 1_000_003 + shape[1]

        batches = (indexed.map(view, num_parallel_calls=AUTOTUNE)
                   .group_by_window(key, lambda _, window: window.batch(batch_size), batch_size)
                   .prefetch(AUTOTUNE))
        collected: dict[int, np.ndarray] = {}
        for index, images, y in batches:
            probs = predict(images)
            for i, label, p in zip(index.numpy(), y.numpy(), probs):
                collected[int(i)] = p
                labels[int(i)] = int(label)
        if not collected:
            raise ValueError("multiscale_scores: no images were evaluated.")
        per_scale[scale] = np.stack([collected[i] for i in sorted(collected)])
    scores = np.mean([per_scale[s] for s in scales], axis=0)
    return scores, np.array([labels[i] for i in sorted(labels)]), per_scale


def check_modes(modes: Sequence[str], name: str = "modes", allow_empty: bool = False) -> None:
    """Raise ValueError naming `--name` unless every mode is one of MODES (the one check of the
    testing modes: evaluate.py's --modes, imagenet.py's --eval_modes, `evaluate`)."""
    unknown = [m for m in modes if m not in MODES]
    if unknown or not (modes or allow_empty):
        raise ValueError(f"--{name}={','.join(modes)}: unknown{'' if allow_empty else ' or empty'} "
                         f"{unknown}; allowed: {', '.join(MODES)}.")


def evaluate(model: keras.Model, examples: tf.data.Dataset, image_size: int,
             modes: Iterable[str] = MODES, resize: int | None = None,
             scales: Sequence[int] | None = None, batch_size: int = 16) -> dict[str, dict]:
    """Top-1/top-5 error of `model` on (encoded, label) `examples` for each testing mode."""
    modes = list(modes)
    check_modes(modes)
    results = {}
    for mode in modes:
        if mode == "1crop":
            scores, labels = center_crop_scores(model, examples, image_size, resize, batch_size)
        elif mode == "10crop":
            scores, labels = ten_crop_scores(model, examples, image_size, resize, batch_size)
        else:
            scores, labels, _ = multiscale_scores(model, examples, image_size, scales, batch_size)
        results[mode] = top_k_errors(scores, labels)
    return results


def _concat(scores: list, labels: list) -> tuple[np.ndarray, np.ndarray]:
    if not scores:
        raise ValueError("evaluation: the split yielded no images.")
    return np.concatenate(scores), np.concatenate(labels)


def write_results(path: str, results: dict) -> None:
    """Write evaluation results as JSON (through tf.io.gfile, so gs:// works)."""
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)
        f.write("\n")
