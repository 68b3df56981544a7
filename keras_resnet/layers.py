"""Parameter-free layers of the paper's networks, registered for `.keras` round trips."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="keras_resnet")
class ZeroPadShortcut(keras.layers.Layer):
    """Shortcut option A (Sec. 3.3): identity with stride subsampling and zero-padded channels.

    Adds no parameters: `x[:, ::s, ::s, :]`, then `filters - channels` zero channels appended.
    """

    def __init__(self, filters: int, strides: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)

    def call(self, inputs):
        x = inputs[:, :: self.strides, :: self.strides, :] if self.strides > 1 else inputs
        extra = self.filters - x.shape[-1]
        if extra < 0:
            raise ValueError(
                f"ZeroPadShortcut: input has {x.shape[-1]} channels, more than filters={self.filters}."
            )
        if extra == 0:
            return x
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, extra]])

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        stride = self.strides

        def subsample(size):
            return None if size is None else -(-size // stride)

        return (batch, subsample(height), subsample(width), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}


@keras.saving.register_keras_serializable(package="keras_resnet")
class SubtractMean(keras.layers.Layer):
    """Per-pixel (or per-channel) mean subtraction of Sec. 3.4 / 4.2, stored with the model.

    `mean` has the shape of one image (H, W, C) for the paper's per-pixel mean, or (C,) for a
    per-channel mean. Inputs are raw pixel values (0..255) in any float dtype.
    """

    def __init__(self, mean, **kwargs):
        super().__init__(**kwargs)
        self.mean_value = np.asarray(mean, dtype="float32")
        if self.mean_value.ndim not in (1, 3):
            raise ValueError(
                f"SubtractMean: mean must have shape (H, W, C) or (C,), got {self.mean_value.shape}."
            )

    def build(self, input_shape):
        self.mean = self.add_weight(
            name="mean",
            shape=self.mean_value.shape,
            initializer=keras.initializers.Constant(self.mean_value),
            trainable=False,
            dtype="float32",
        )

    def call(self, inputs):
        return ops.cast(inputs, self.compute_dtype) - ops.cast(self.mean, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mean": self.mean_value.tolist()}
