"""The `weights` argument: the paper's released ImageNet models, and weight files of this package,
keras.applications, torchvision and timm.

- `weights="imagenet"` (ResNet-50/101/152): the Caffe models of He et al. as keras.applications
  publishes them, fetched by `keras.utils.get_file` from the URL and with the hash that Keras
  itself uses (`keras/src/applications/resnet.py`), cached under `KERAS_HOME/models`; the
  no-top file for `include_top=False`. Input: `preprocess_input(x, mode="caffe")`.
- a path: a `.weights.h5` / `.keras` file of this package; a keras.applications ResNet `.h5`
  (recognised by its content); a torchvision / timm state dict (`.safetensors`, or
  `.pth` / `.pt` / `.bin` with PyTorch installed). Input of the last: mode "torch".
  torchvision's and timm's ResNet-50/101/152 are "v1.5": build them with
  `bottleneck_stride="3x3"`.

A file that does not fit raises one ValueError naming the first layer or tensor that does not
match, with shapes; the model's weights are only assigned once everything fits.
"""

from __future__ import annotations

import dataclasses
import os

import h5py
import keras
import numpy as np

from keras_resnet import checkpoints
from keras_resnet.checkpoints import Checkpoint

IMAGENET_WEIGHTS = ("resnet50", "resnet101", "resnet152")
# Root attribute of a `.weights.h5` written by `save_weights`: the input preprocessing mode.
PREPROCESSING_ATTRIBUTE = "keras_resnet_preprocessing"
_FORMATS = ("'.weights.h5', '.keras', a keras.applications ResNet '.h5', or a torchvision / timm "
            "state dict ('.safetensors', '.pth', '.pt', '.bin')")


def imagenet_source(name: str, include_top: bool) -> tuple[str, str, str]:
    """(file name, URL, md5) of keras.applications' weights of network `name` (e.g. "resnet50"),
    read from Keras's own table."""
    from keras.src.applications import resnet as applications

    if name not in IMAGENET_WEIGHTS:
        raise ValueError(
            f"weights='imagenet': pretrained ImageNet weights exist for "
            f"{', '.join(IMAGENET_WEIGHTS)} (the paper's released models), not for {name}. For "
            f"resnet18 / resnet34 pass a torchvision state dict: weights='resnet18.safetensors'."
        )
    file_name = f"{name}_weights_tf_dim_ordering_tf_kernels{'' if include_top else '_notop'}.h5"
    with_top, without_top = applications.WEIGHTS_HASHES[name]
    return (file_name, applications.BASE_WEIGHTS_PATH + file_name,
            with_top if include_top else without_top)


def fetch_imagenet(name: str, include_top: bool) -> str:
    """The local path of keras.applications' weights of `name`, downloaded once into
    `KERAS_HOME/models` and checked against Keras's md5."""
    file_name, url, md5 = imagenet_source(name, include_top)
    try:
        return keras.utils.get_file(file_name, url, cache_subdir="models", file_hash=md5)
    except Exception as error:  # get_file raises a bare Exception when the fetch fails
        raise ValueError(
            f"weights='imagenet': could not fetch {url} (md5 {md5}) into the Keras cache "
            f"(KERAS_HOME/models): {error}. Offline, copy that file here and pass its path: "
            f"weights='/path/to/{file_name}'."
        ) from error


def _has_top(model: keras.Model) -> bool:
    return any(layer.name == "predictions" for layer in model.layers)


@dataclasses.dataclass(frozen=True)
class Source:
    """A located weight file: its path, the label its errors start with, and its contents when
    it is another library's file (None for this package's `.keras` / `.weights.h5`)."""

    path: str
    label: str
    checkpoint: Checkpoint | None


def locate(weights: str | os.PathLike, name: str, include_top: bool) -> Source:
    """`weights` for network `name`: "imagenet" fetched (or found in the cache), a path checked to
    exist with a known suffix, another library's file read. Runs before the model is built, so
    that a bad argument or file fails at once."""
    if isinstance(weights, str) and weights == "imagenet":
        path, label = fetch_imagenet(name, include_top), "weights='imagenet'"
        return Source(path, label, read_checkpoint(path, label))
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"weights={weights!r}: must be None, 'imagenet' or the path of a "
                         f"{_FORMATS} file.")
    path = os.fspath(weights)
    label = f"weights={path!r}"
    if not path.endswith((".h5", ".hdf5", ".keras", *checkpoints.STATE_DICT_SUFFIXES)):
        raise ValueError(f"{label}: must be None, 'imagenet' or the path of a {_FORMATS} file.")
    if not os.path.isfile(path):
        raise ValueError(f"{label}: no such file.")
    return Source(path, label, read_checkpoint(path, label))


def load_weights(model: keras.Model, weights: str | os.PathLike, name: str) -> None:
    """Loads `weights` ("imagenet" or a path, see the module) into `model`, network `name`."""
    load_source(model, locate(weights, name, _has_top(model)))


def load_source(model: keras.Model, source: Source) -> None:
    """Loads what `locate` found into `model`; errors start with the source's label."""
    try:
        if source.checkpoint is not None:
            assign(model, source.checkpoint)
        elif source.path.endswith(".keras"):
            loaded = keras.saving.load_model(source.path, compile=False)
            _copy_weights_by_layer_name(loaded, model)
        else:
            model.load_weights(source.path)
    except ValueError as error:
        raise ValueError(f"{source.label} does not fit model {model.name!r}: {error}") from error


def read_checkpoint(path: str, label: str) -> Checkpoint | None:
    """Another library's file at `path` as a Checkpoint; None for this package's own formats
    (`.keras`, Keras 3 `.weights.h5`). Raises ValueError naming `label` if it cannot be read,
    or if a state dict has a tensor that no torchvision / timm ResNet has."""
    if path.endswith(".keras"):
        return None
    state, legacy = None, False
    try:
        if path.endswith(checkpoints.STATE_DICT_SUFFIXES):
            state = checkpoints.read_state_dict(path)
        else:
            with h5py.File(path, "r") as file:
                legacy = checkpoints.is_keras_applications_h5(file)
            if legacy:
                return checkpoints.read_keras_applications_h5(path)
    except ImportError:
        raise
    except Exception as error:  # each reader's own error (h5py, safetensors, PyTorch)
        raise ValueError(f"{label}: cannot be read ({type(error).__name__}: {error}).") from error
    if state is not None:
        try:
            return checkpoints.state_dict_checkpoint(state)
        except ValueError as error:
            raise ValueError(f"{label} is not a torchvision / timm ResNet state dict: "
                             f"{error}.") from error
    if not path.endswith(".weights.h5"):
        raise ValueError(f"{label}: an HDF5 file that is neither in keras.applications' legacy "
                         f"layout (layer_names) nor a Keras '.weights.h5' file.")
    return None


def preprocessing_mode(weights: str | os.PathLike | None) -> str | None:
    """The input preprocessing ("caffe" or "torch", see keras_resnet.preprocessing) that
    `weights` expect, or None where the file does not say (this package's own files, unless
    written by `save_weights` with a mode)."""
    if weights is None:
        return None
    if isinstance(weights, str) and weights == "imagenet":
        return "caffe"
    path = os.fspath(weights)
    if path.endswith(checkpoints.STATE_DICT_SUFFIXES):
        return "torch"
    if not path.endswith((".h5", ".hdf5")) or not os.path.isfile(path):
        return None
    try:
        with h5py.File(path, "r") as file:
            if checkpoints.is_keras_applications_h5(file):
                return "caffe"
            mode = file.attrs.get(PREPROCESSING_ATTRIBUTE)
    except OSError:
        return None
    return mode.decode() if isinstance(mode, bytes) else mode


def save_weights(model: keras.Model, path: str | os.PathLike, mode: str | None) -> None:
    """`model.save_weights(path)` (a `.weights.h5`), recording the preprocessing `mode`."""
    model.save_weights(path)
    if mode is not None:
        with h5py.File(path, "a") as file:
            file.attrs[PREPROCESSING_ATTRIBUTE] = mode


# ----------------------------------------------------------------------------------------------
# Assigning weights


# Where bottleneck units downsample, in words.
_LAYOUTS = {"1x1": "the paper's layout", "3x3": "ResNet v1.5, as every torchvision and timm "
            "ResNet-50/101/152"}


def _bottleneck_stride(model: keras.Model) -> str | None:
    """Where `model`'s bottleneck units downsample ("1x1" or "3x3"); None without them."""
    layers = {layer.name: layer for layer in model.layers}
    conv = layers.get("conv3_block1_1_conv")
    if not isinstance(conv, keras.layers.Conv2D) or tuple(conv.kernel_size) != (1, 1):
        return None
    return "1x1" if tuple(conv.strides) == (2, 2) else "3x3"


def assign(model: keras.Model, checkpoint: Checkpoint) -> None:
    """Sets every weight of `model` from `checkpoint`, after checking that each one is there
    with its shape, that the file has nothing the model lacks (but the classifier of a model
    built without it) and that both downsample in the same convolution of bottleneck units."""
    variables = {(layer.name, variable.name): variable
                 for layer in model.layers for variable in layer.weights}
    for (layer, weight), variable in variables.items():
        if (layer, weight) not in checkpoint.tensors:
            raise ValueError(f"the {checkpoint.kind} has no {weight} {tuple(variable.shape)} for "
                             f"layer {layer!r}.")
        value = checkpoint.tensors[layer, weight]
        if value.shape != tuple(variable.shape):
            raise ValueError(f"layer {layer!r} {weight} has shape {tuple(variable.shape)}; the "
                             f"{checkpoint.kind}'s {checkpoint.keys[layer, weight]} gives "
                             f"{value.shape}.")
    skip = set() if _has_top(model) else {"predictions"}
    for layer, weight in checkpoint.tensors:
        if (layer, weight) not in variables and layer not in skip:
            raise ValueError(f"the {checkpoint.kind}'s {checkpoint.keys[layer, weight]} has no "
                             f"place in it (no layer {layer!r} with a {weight}).")
    stride = _bottleneck_stride(model)
    if stride is not None and stride != checkpoint.stride_in:
        raise ValueError(
            f"the {checkpoint.kind}'s bottleneck units downsample in their {checkpoint.stride_in} "
            f"convolution ({_LAYOUTS[checkpoint.stride_in]}), the model's in the {stride} one: "
            f"build it with bottleneck_stride={checkpoint.stride_in!r}."
        )
    for key, variable in variables.items():
        variable.assign(checkpoint.tensors[key].astype(variable.dtype))


def _flat_layers(model: keras.Model) -> dict[str, keras.layers.Layer]:
    """Every layer of `model` by name, nested models opened (a trained model wraps the net)."""
    found = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.update(_flat_layers(layer))
        else:
            found[layer.name] = layer
    return found


def _copy_weights_by_layer_name(source: keras.Model, target: keras.Model) -> None:
    """Copies weights layer by layer; layers the target lacks (e.g. SubtractMean) are skipped."""
    available = _flat_layers(source)
    for name, layer in _flat_layers(target).items():
        if not layer.weights:
            continue
        if name not in available:
            raise ValueError(f"the file has no layer {name!r}")
        values = available[name].get_weights()
        shapes = [tuple(w.shape) for w in layer.weights]
        if [np.shape(v) for v in values] != shapes:
            raise ValueError(
                f"layer {name!r} has weight shapes {shapes}, the file {[v.shape for v in values]}"
            )
        layer.set_weights(values)
