"""Input preprocessing of the pretrained weight sources, and ImageNet class names.

Each source expects its own input (RGB pixels 0..255 in, channels last):

- "caffe": the paper's released models (`weights="imagenet"`, keras.applications ResNet `.h5`
  files): RGB -> BGR, then the per-channel ImageNet mean subtracted, no scaling; as
  `keras.applications.resnet.preprocess_input` (the Caffe models of He et al.).
- "torch": torchvision and timm checkpoints: pixels / 255, minus the ImageNet mean
  (0.485, 0.456, 0.406), divided by the standard deviation (0.229, 0.224, 0.225), RGB order.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import keras
import numpy as np

MODES = ("caffe", "torch")
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # keras.applications' imagenet_utils, "caffe" mode
TORCH_MEAN_RGB = (0.485, 0.456, 0.406)  # torchvision's ImageNet normalisation
TORCH_STD_RGB = (0.229, 0.224, 0.225)
IMAGENET_CLASSES_FILE = Path(__file__).parent / "data" / "imagenet_classes.json"


def check_mode(mode: str) -> str:
    """`mode` itself if it is one of `MODES`; else a ValueError saying which goes with which."""
    if mode not in MODES:
        raise ValueError(
            f"mode={mode!r}: must be 'caffe' (the paper's models: weights='imagenet' or a "
            f"keras.applications .h5) or 'torch' (torchvision / timm state dicts)."
        )
    return mode


def preprocess_input(x: Any, mode: str = "caffe") -> Any:
    """Maps RGB pixels 0..255 (channels last) to the input of the weights of `mode`.

    A NumPy array (or nested list) gives a float32 NumPy array; a tensor gives a tensor.
    """
    check_mode(mode)
    array = isinstance(x, (np.ndarray, list, tuple))
    ops = np if array else keras.ops
    x = np.asarray(x, np.float32) if array else keras.ops.cast(x, "float32")
    if len(x.shape) < 1 or x.shape[-1] != 3:
        raise ValueError(f"preprocess_input: x has shape {tuple(x.shape)}; its last axis must "
                         f"be the 3 RGB channels (channels last).")
    if mode == "caffe":
        return ops.flip(x, axis=-1) - np.asarray(CAFFE_MEAN_BGR, np.float32)
    mean, std = np.asarray(TORCH_MEAN_RGB, np.float32), np.asarray(TORCH_STD_RGB, np.float32)
    return (x / np.float32(255) - mean) / std


@keras.saving.register_keras_serializable(package="keras_resnet")
class PreprocessInput(keras.layers.Layer):
    """`preprocess_input(x, mode)` as the first layer of a model on raw pixels (0..255), stored
    with the model (e.g. in an exported SavedModel)."""

    def __init__(self, mode: str = "caffe", **kwargs):
        super().__init__(**kwargs)
        self.mode = check_mode(mode)

    def call(self, inputs):
        return keras.ops.cast(preprocess_input(inputs, self.mode), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@functools.cache
def imagenet_classes() -> dict[str, list[str]]:
    """The 1000 ImageNet classes in training order: `synsets` (WordNet ids) and `names`."""
    table = json.loads(IMAGENET_CLASSES_FILE.read_text())
    return {"synsets": list(table["synsets"]), "names": list(table["names"])}


def decode_predictions(preds: Any, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """The `top` classes of each row of ImageNet scores `preds` (batch, 1000), best first, as
    (synset, name, score) tuples, like `keras.applications.resnet.decode_predictions`."""
    scores = np.asarray(keras.ops.convert_to_numpy(preds), np.float64)
    table = imagenet_classes()
    if scores.ndim != 2 or scores.shape[1] != len(table["synsets"]):
        raise ValueError(f"decode_predictions: preds has shape {scores.shape}; must be (batch, "
                         f"{len(table['synsets'])}), scores of the ImageNet classes.")
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= scores.shape[1]:
        raise ValueError(f"decode_predictions: top={top!r}; must be an integer in "
                         f"1..{scores.shape[1]}.")
    best = np.argsort(-scores, axis=1, kind="stable")[:, :top]
    return [[(table["synsets"][i], table["names"][i], float(row[i])) for i in indices]
            for row, indices in zip(scores, best)]
