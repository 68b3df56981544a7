"""Export of trained models as TF Serving SavedModels with an image-bytes signature.

`export_saved_model` writes `<export_base>/<version>/`, a SavedModel with two signatures:

- `serving_default`: `image_bytes` (tf.string [batch]: JPEG, PNG, BMP or GIF files) -> the 1-crop
  evaluation preprocessing of the model's training run -> `probabilities` (float32
  [batch, classes]), top-k `classes` (int32) and `scores` (float32), and where the class names
  are known `class_names` (string [batch, k]), plus `synsets` for ImageNet classes.
- `predict_images`: `images` (float32 [batch, H, W, C], raw pixels 0..255 at the model's size)
  -> `probabilities`.

and `assets.extra/tf_serving_warmup_requests`, the warm-up records TF Serving replays at load time.
The served net computes in float32, whatever precision it was trained in (`float32_copy`: a
net trained in mixed bfloat16 serves at full speed on CPUs without bfloat16 units too), and has its
batch normalization folded into the convolutions (`keras_resnet.folding.fold_batch_norm`): the
same function, fewer ops per image.
`write_models_config` writes the `--model_config_file` covering every exported model.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

try:
    from google.protobuf import text_format
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
    from tensorflow_serving.config import model_server_config_pb2
except ImportError as error:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "keras_resnet.export needs tensorflow-serving-api: "
        "pip install 'keras-resnet-he2015[serving]'."
    ) from error

from keras_resnet.folding import fold_batch_norm
from keras_resnet.models import get_model, get_spec, raw_pixel_model
from keras_resnet.preprocessing import imagenet_classes
from keras_resnet.training import imagenet_input

DEFAULT_TOP_K = 5
# 8192 x 8192: the decoded uint8 RGB image is 192 MiB; anything larger is refused before decoding.
DEFAULT_MAX_IMAGE_PIXELS = 8192 * 8192
WARMUP_FILE = "tf_serving_warmup_requests"
MODELS_CONFIG = "models.config"
FORMATS = "JPEG, PNG, BMP or GIF"
# For model_dirs written before metadata.json recorded `padded_from`: the datasets the CIFAR
# trainer then zero-padded to the model's size (--pad_to_32), with their native size.
LEGACY_PADDED_DATASETS = {"fashion_mnist": (28, 28)}

_VERSION_NAME = re.compile(r"[1-9][0-9]*")
# Magic numbers of the formats, indexed by the format codes below.
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"GIF8")
_JPEG, _PNG, _BMP, _GIF = range(len(_MAGIC))


# ----------------------------------------------------------------------------------------------
# Loading what to export


def load_model_dir(model_dir: str | os.PathLike) -> tuple[keras.Model, dict[str, Any]]:
    """The model and metadata of a trainer's finished model_dir (`model.keras`, `metadata.json`);
    any tf.io.gfile path (local, gs://, ...)."""
    model_dir = os.fspath(model_dir)
    for name in ("model.keras", "metadata.json"):
        if not tf.io.gfile.exists(os.path.join(model_dir, name)):
            raise FileNotFoundError(f"{model_dir} is not a finished model_dir: it has no {name}.")
    return load_keras_file(os.path.join(model_dir, "model.keras"))


def load_keras_file(path: str | os.PathLike) -> tuple[keras.Model, dict[str, Any]]:
    """A `.keras` file (trained under any backend; any tf.io.gfile path), with the
    `metadata.json` beside it if any.

    Without metadata the input size comes from the model, eval resizes straight to it and the
    class names are unknown.
    """
    _require_tensorflow_backend()
    path = os.fspath(path)
    if not path.endswith(".keras") or tf.io.gfile.isdir(path) or not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path} is not a .keras file.")
    model = keras.saving.load_model(path, compile=False)
    metadata_path = os.path.join(os.path.dirname(path), "metadata.json")
    if tf.io.gfile.exists(metadata_path):
        with tf.io.gfile.GFile(metadata_path) as f:
            metadata = json.load(f)
    else:
        height, width, channels = model.input_shape[1:]
        metadata = {"model": model.name, "dataset": None, "class_names": None,
                    "image_size": [height, width], "channels": channels, "eval_resize": None}
    return model, metadata


def untrained_model(name: str, image_size: int | None = None,
                    classes: int | None = None) -> tuple[keras.Model, dict[str, Any]]:
    """A registered network with random weights, for checking a deployment end to end.

    It has no SubtractMean (there is no training mean) and no dataset. ImageNet nets evaluate as
    the ImageNet trainer's 1-crop (shorter side 256 * image_size / 224) and carry the ImageNet
    class names when they have 1000 classes; CIFAR nets resize straight to their size.
    """
    _require_tensorflow_backend()
    spec = get_spec(name)
    height, width, channels = spec.default_input_shape
    if image_size is not None:
        height = width = image_size
    classes = spec.default_classes if classes is None else classes
    model = get_model(spec.name, input_shape=(height, width, channels), classes=classes)
    imagenet = spec.family == "imagenet"
    metadata = {
        "model": spec.name,
        "dataset": None,
        "class_names": imagenet_classes()["synsets"] if imagenet and classes == 1000 else None,
        "image_size": [height, width],
        "channels": channels,
        "eval_resize": imagenet_input.eval_resize(height) if imagenet else None,
    }
    return model, metadata


def pretrained_model(name: str, weights: str | os.PathLike, image_size: int | None = None,
                     bottleneck_stride: str = "1x1",
                     mode: str | None = None) -> tuple[keras.Model, dict[str, Any]]:
    """An ImageNet network with pretrained `weights` ("imagenet" or a file, see
    keras_resnet.pretrained) on raw pixels: `raw_pixel_model`, whose `PreprocessInput` layer
    applies the preprocessing the weights expect (or `mode`). It evaluates as the ImageNet
    trainer's 1-crop and carries the ImageNet class names."""
    _require_tensorflow_backend()
    spec = get_spec(name)
    if spec.family != "imagenet":
        raise ValueError(f"model={name!r}: pretrained weights are ImageNet weights; the model "
                         f"must be one of the ImageNet nets of Table 1 (resnet18 ... plain152).")
    model = raw_pixel_model(spec.name, weights, mode, image_size,
                            bottleneck_stride=bottleneck_stride)
    height, width, channels = model.input_shape[1:]
    metadata = {"model": spec.name, "dataset": "imagenet",
                "class_names": imagenet_classes()["synsets"], "image_size": [height, width],
                "channels": channels, "eval_resize": imagenet_input.eval_resize(height)}
    return model, metadata


def padded_from_metadata(metadata: dict[str, Any]) -> tuple[int, int] | None:
    """The native (height, width) of images the trainer zero-padded to `image_size`, or None.

    metadata.json's `padded_from` says it; a model_dir without the key (written before it was
    recorded) falls back to `LEGACY_PADDED_DATASETS`.
    """
    if "padded_from" in metadata:
        native = metadata["padded_from"]
        if native is None:
            return None
        if len(native) != 2:
            raise ValueError(f"metadata padded_from={native!r}: must be [height, width] or null.")
        return int(native[0]), int(native[1])
    native = LEGACY_PADDED_DATASETS.get(metadata.get("dataset"))
    return native if native and list(native) != list(metadata["image_size"]) else None


def _require_tensorflow_backend() -> None:
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            f"Export builds a TensorFlow SavedModel and needs the TensorFlow backend, but Keras "
            f"runs {keras.backend.backend()!r}: set KERAS_BACKEND=tensorflow (models trained under "
            f"JAX load fine from their .keras file)."
        )


# ----------------------------------------------------------------------------------------------
# Preprocessing: decoding and 1-crop evaluation


def preprocess_for_eval(data: tf.Tensor, image_size: tuple[int, int], channels: int,
                        eval_resize: int | None,
                        padded_from: tuple[int, int] | None = None) -> tf.Tensor:
    """The model's 1-crop evaluation view of one encoded image: float32 raw pixels (0..255).

    With `eval_resize` (ImageNet-style models): the ImageNet trainer's own 1-crop view,
    `imagenet_input.center_view` (centre crop of the image resized to shorter side `eval_resize`).
    Otherwise (CIFAR-style models, evaluated at the dataset's size): the image resized straight
    to `image_size`, or, for data the CIFAR trainer zero-pads (`padded_from`, e.g. Fashion-MNIST
    28x28 in a 32x32 model), resized to `padded_from` and zero-padded centrally like
    `cifar_data.pad_to`. Resizing is bilinear, antialiased; an image already at the target size
    passes unchanged.
    """
    if eval_resize is not None:
        return imagenet_input.center_view(data, image_size[0], eval_resize)
    image = tf.cast(decode_image(data, channels), tf.float32)
    size = tf.constant(padded_from or image_size, tf.int32)
    image = tf.cond(tf.reduce_all(tf.shape(image)[:2] == size), lambda: image,
                    lambda: tf.image.resize(image, size, method="bilinear", antialias=True))
    if padded_from is None:
        return image
    (height, width), (inner_height, inner_width) = image_size, padded_from
    return tf.image.pad_to_bounding_box(image, (height - inner_height) // 2,
                                        (width - inner_width) // 2, height, width)


def _header_size(data: tf.Tensor, image_format: tf.Tensor) -> tf.Tensor:
    """(height, width) int64 declared by the file header, read without decoding the pixels."""
    padded = tf.strings.substr(tf.strings.join([data, tf.constant(b"\0" * 32)]), 0, 32)
    header = tf.cast(tf.io.decode_raw(padded, tf.uint8), tf.int64)

    def big_endian(start: int, size: int) -> tf.Tensor:
        return sum(header[start + i] * 256 ** (size - 1 - i) for i in range(size))

    def little_endian(start: int, size: int) -> tf.Tensor:
        return sum(header[start + i] * 256 ** i for i in range(size))

    def signed32(value: tf.Tensor) -> tf.Tensor:
        return tf.where(value >= 2**31, value - 2**32, value)

    png = tf.stack([big_endian(20, 4), big_endian(16, 4)])
    bmp = tf.stack([tf.abs(signed32(little_endian(22, 4))), signed32(little_endian(18, 4))])
    gif = tf.stack([little_endian(8, 2), little_endian(6, 2)])
    return tf.switch_case(image_format, {
        _JPEG: lambda: tf.cast(tf.image.extract_jpeg_shape(data)[:2], tf.int64),
        _PNG: lambda: png,
        _BMP: lambda: bmp,
        _GIF: lambda: gif,
    })


def _image_format(data: tf.Tensor) -> tf.Tensor:
    """The file's format code (`_JPEG`, `_PNG`, `_BMP`, `_GIF`), -1 when none matches."""
    index = tf.constant(-1)
    for i, magic in enumerate(_MAGIC):
        match = tf.strings.substr(data, 0, len(magic)) == magic
        index = tf.where(match, i, index)
    return index


def check_image_bytes(data: tf.Tensor, index: tf.Tensor,
                      max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> tf.Operation:
    """An op failing with InvalidArgument, naming `image_bytes[index]`, when the string is empty,
    is not a JPEG, PNG, BMP or GIF file, or declares more than `max_pixels` pixels.

    The size is read from the header, before anything is decoded; corrupt data past the header
    is left to the decoders, whose InvalidArgument names it.
    """
    length = tf.strings.length(data)
    empty = tf.debugging.Assert(
        length > 0, [tf.strings.format(f"image_bytes[{{}}] is empty: expected a {FORMATS} file.",
                                       [index])])
    with tf.control_dependencies([empty]):
        image_format = _image_format(data)
    unknown = tf.debugging.Assert(
        image_format >= 0,
        [tf.strings.format(
            f"image_bytes[{{}}] ({{}} bytes) is not a {FORMATS} file: unrecognised header.",
            (index, length))])
    with tf.control_dependencies([unknown]):
        size = _header_size(data, image_format)
    pixels = size[0] * size[1]
    no_pixels = tf.debugging.Assert(
        tf.reduce_all(size > 0),
        [tf.strings.format("image_bytes[{}] declares an empty image size {}x{} (HxW).",
                           (index, size[0], size[1]))])
    too_large = tf.debugging.Assert(
        pixels <= max_pixels,
        [tf.strings.format("image_bytes[{}] is too large: {}x{} (HxW) = {} pixels, more than the "
                           "limit of {} pixels.", (index, size[0], size[1], pixels, max_pixels))])
    return tf.group(no_pixels, too_large)


def decode_image(data: tf.Tensor, channels: int) -> tf.Tensor:
    """Decodes a JPEG, PNG, BMP or GIF file (first frame) to uint8 (H, W, channels).

    JPEG uses the accurate integer DCT, as PIL (the CIFAR trainer's decoder) does, so served and
    training pixels agree exactly.
    """

    def rgb_formats() -> tf.Tensor:  # BMP and GIF decode to RGB only
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        return image if channels == 3 else tf.image.rgb_to_grayscale(image)

    image = tf.switch_case(_image_format(data), {
        _JPEG: lambda: tf.io.decode_jpeg(data, channels=channels, dct_method="INTEGER_ACCURATE"),
        _PNG: lambda: tf.io.decode_png(data, channels=channels),
    }, default=rgb_formats)
    return tf.ensure_shape(image, [None, None, channels])


# ----------------------------------------------------------------------------------------------
# The serving module


def float32_copy(model: keras.Model) -> keras.Model:
    """`model` itself if every layer computes in float32, else a copy with the same weights whose
    layers all do: a net trained under a mixed policy (`--mixed_precision=bfloat16`, the
    trainers' `auto` on CPUs with AMX or AVX512-BF16) keeps float32 weights, so nothing is lost."""
    if all(layer.dtype_policy.compute_dtype == "float32" for layer in model.layers):
        return model

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


class ServingModule(tf.Module):
    """The Keras model and its class-name tables, with the two serving signatures.

    It serves `float32_copy(model)`, with `fold_bn` (the default) through `fold_batch_norm`.
    """

    def __init__(self, model: keras.Model, metadata: dict[str, Any], top_k: int = DEFAULT_TOP_K,
                 max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS, fold_bn: bool = True):
        super().__init__(name="keras_resnet_serving")
        if None in model.input_shape[1:]:
            raise ValueError(f"The model's input shape {model.input_shape} is not fixed: serving "
                             f"needs the size of its 1-crop evaluation.")
        if top_k < 1:
            raise ValueError(f"top_k={top_k}: must be at least 1.")
        model = float32_copy(model)
        self.model = fold_batch_norm(model) if fold_bn else model
        height, width = (int(v) for v in metadata["image_size"])
        self.image_size = (height, width)
        self.channels = int(metadata["channels"])
        self.eval_resize = metadata.get("eval_resize")
        self.padded_from = padded_from_metadata(metadata)
        self.max_image_pixels = int(max_image_pixels)
        expected = (None, height, width, self.channels)
        if tuple(model.input_shape) != expected:
            raise ValueError(f"The model's input shape {model.input_shape} does not match the "
                             f"metadata's image_size and channels {expected}.")
        if self.eval_resize is not None and (height != width or self.channels != 3
                                             or self.eval_resize < height):
            raise ValueError(
                f"eval_resize={self.eval_resize} (1-crop evaluation) needs a square RGB input "
                f"no larger than eval_resize; the model takes {expected[1:]}.")
        self.classes = int(model.output_shape[-1])
        self.top_k = min(int(top_k), self.classes)
        self.class_names, self.synsets = _class_tables(metadata.get("class_names"), self.classes)

        # Graph code written with tf.cond / tf.switch_case: no AutoGraph conversion needed.
        self.serve_image_bytes = tf.function(
            self._serve_image_bytes, autograph=False,
            input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        self.predict_images = tf.function(
            self._predict_images, autograph=False,
            input_signature=[tf.TensorSpec([None, height, width, self.channels], tf.float32,
                                           name="images")])

    def _preprocess(self, args: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        index, data = args
        with tf.control_dependencies([check_image_bytes(data, index, self.max_image_pixels)]):
            return preprocess_for_eval(data, self.image_size, self.channels, self.eval_resize,
                                       self.padded_from)

    def _serve_image_bytes(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        indices = tf.range(tf.shape(image_bytes)[0])
        images = tf.map_fn(
            self._preprocess, (indices, image_bytes),
            fn_output_signature=tf.TensorSpec([*self.image_size, self.channels], tf.float32))
        probabilities = tf.cast(self.model(images, training=False), tf.float32)
        scores, classes = tf.math.top_k(probabilities, k=self.top_k)
        outputs = {"probabilities": probabilities, "classes": classes, "scores": scores}
        if self.class_names is not None:
            outputs["class_names"] = tf.gather(self.class_names, classes)
        if self.synsets is not None:
            outputs["synsets"] = tf.gather(self.synsets, classes)
        return outputs

    def _predict_images(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"probabilities": tf.cast(self.model(images, training=False), tf.float32)}

    def signatures(self) -> dict[str, Any]:
        return {"serving_default": self.serve_image_bytes.get_concrete_function(),
                "predict_images": self.predict_images.get_concrete_function()}


def _class_tables(class_names: list[str] | None,
                  classes: int) -> tuple[tf.Tensor | None, tf.Tensor | None]:
    """(names, synsets) string constants; ImageNet synset ids are mapped to their names."""
    if class_names is None:
        return None, None
    if len(class_names) != classes:
        raise ValueError(f"metadata has {len(class_names)} class_names for a model with "
                         f"{classes} outputs.")
    table = imagenet_classes()
    name_of = dict(zip(table["synsets"], table["names"]))
    if all(name in name_of for name in class_names):
        return (tf.constant([name_of[s] for s in class_names]), tf.constant(class_names))
    return tf.constant(class_names), None


# ----------------------------------------------------------------------------------------------
# Writing SavedModels, warm-up records and the model server config


def _is_remote(path: str) -> bool:
    return "://" in path


def next_version(export_base: str | os.PathLike) -> int:
    """The next version number under `export_base` (1 when empty or absent; any tf.io.gfile path).

    Raises ValueError when `export_base` holds anything but version directories (1, 2, ...).
    """
    export_base = os.fspath(export_base)
    if not tf.io.gfile.exists(export_base):
        return 1
    if not tf.io.gfile.isdir(export_base):
        raise ValueError(f"Export base {export_base} is a file, not a directory of versions.")
    names = [name.rstrip("/") for name in tf.io.gfile.listdir(export_base)]
    strays = sorted(name for name in names if not (
        _VERSION_NAME.fullmatch(name) and tf.io.gfile.isdir(os.path.join(export_base, name))))
    if strays:
        raise ValueError(
            f"Export base {export_base} holds {strays}, which are not version directories "
            f"(1, 2, ...): TF Serving's layout is <export_base>/<version>/. Choose another "
            f"--export_base or move them away.")
    return max((int(name) for name in names), default=0) + 1


def export_saved_model(model: keras.Model, metadata: dict[str, Any],
                       export_base: str | os.PathLike, top_k: int = DEFAULT_TOP_K,
                       max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
                       fold_bn: bool = True) -> Path | str:
    """Writes the SavedModel and its warm-up file to `<export_base>/<next version>/`; `fold_bn`:
    see `ServingModule`. Returns that directory (a str for a remote export_base such as gs://).

    A local version is written in a hidden sibling directory, then renamed into place, so that a
    running TF Serving never sees half a version and an existing version is never overwritten.
    A remote one (gs://, any tf.io.gfile path) is written locally, then copied file by file,
    `saved_model.pb` last.
    """
    _require_tensorflow_backend()
    remote = _is_remote(os.fspath(export_base))
    version = next_version(export_base)
    module = ServingModule(model, metadata, top_k, max_image_pixels, fold_bn)
    base = Path(tempfile.gettempdir()) / "export" if remote else Path(export_base)
    base.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{base.name}-export-", dir=base.parent))
    try:
        tf.saved_model.save(module, str(staging / "saved_model"), signatures=module.signatures())
        write_warmup_requests(staging / "saved_model", Path(export_base).name, module)
        if remote:
            return _copy_version(staging / "saved_model", f"{os.fspath(export_base)}/{version}")
        base.mkdir(exist_ok=True)
        target = base / str(version)
        try:
            os.rename(staging / "saved_model", target)  # atomic; fails if target has content
        except OSError as error:
            raise FileExistsError(f"{target} appeared during the export (a concurrent export?); "
                                  f"it was left as it is. Export again.") from error
    finally:
        shutil.rmtree(staging)
    return target


def _copy_version(source: Path, target: str) -> str:
    """Copy a local SavedModel to a new tf.io.gfile directory, `saved_model.pb` last (TF Serving
    loads a version once that file is there)."""
    if tf.io.gfile.exists(target):
        raise FileExistsError(f"{target} appeared during the export (a concurrent export?); "
                              f"it was left as it is. Export again.")
    files = sorted((p for p in source.rglob("*") if p.is_file()),
                   key=lambda p: p.name == "saved_model.pb")
    for path in files:
        destination = f"{target}/{path.relative_to(source).as_posix()}"
        tf.io.gfile.makedirs(os.path.dirname(destination))
        tf.io.gfile.copy(str(path), destination)
    return target


def warmup_images(module: ServingModule) -> list[bytes]:
    """A JPEG and a PNG (a smooth colour gradient) at twice the model's input size."""
    height, width = (2 * v for v in module.image_size)
    rows, cols = np.mgrid[0:height, 0:width]
    rgb = np.stack([255 * rows / height, 255 * cols / width,
                    255 * (rows + cols) / (height + width)], axis=-1).astype(np.uint8)
    image = rgb if module.channels == 3 else rgb[..., :1]
    return [tf.io.encode_jpeg(image).numpy(), tf.io.encode_png(image).numpy()]


def write_warmup_requests(saved_model_dir: str | os.PathLike, model_name: str,
                          module: ServingModule) -> Path:
    """`assets.extra/tf_serving_warmup_requests`: one serving_default PredictRequest per image."""
    path = Path(saved_model_dir) / "assets.extra" / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for image in warmup_images(module):
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name="serving_default"))
            request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([image], dtype=tf.string))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path


def exported_models(saved_models_dir: str | os.PathLike) -> list[str]:
    """Names of the model directories under `saved_models_dir` holding at least one version."""
    root = os.fspath(saved_models_dir)

    def subdirs(path: str) -> list[str]:
        return [n.rstrip("/") for n in tf.io.gfile.listdir(path)
                if tf.io.gfile.isdir(os.path.join(path, n.rstrip("/")))]

    return sorted(
        name for name in subdirs(root) if not name.startswith(".") and any(
            _VERSION_NAME.fullmatch(v)
            and tf.io.gfile.exists(os.path.join(root, name, v, "saved_model.pb"))
            for v in subdirs(os.path.join(root, name))))


def write_models_config(saved_models_dir: str | os.PathLike,
                        serving_base_path: str = "/models") -> Path | str:
    """Writes `<saved_models_dir>/models.config` for TF Serving's `--model_config_file`
    (any tf.io.gfile directory; returns a Path for a local one).

    One entry per exported model, named after its directory, with base path
    `<serving_base_path>/<name>`: the directory as the server sees it (`/models` when
    `saved_models/` is mounted there in the container; an absolute local path otherwise).
    """
    config = model_server_config_pb2.ModelServerConfig()
    for name in exported_models(saved_models_dir):
        config.model_config_list.config.add(
            name=name, base_path=f"{serving_base_path.rstrip('/')}/{name}",
            model_platform="tensorflow")
    path = os.path.join(os.fspath(saved_models_dir), MODELS_CONFIG)
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(text_format.MessageToString(config))
    return path if _is_remote(path) else Path(path)
