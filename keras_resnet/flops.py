"""Multiply-adds per image, counted from a built model's layers (the unit of Table 1's FLOPs)."""

from __future__ import annotations

import math

import keras


def count_flops(model: keras.Model) -> int:
    """Multiply-adds of one image through `model`'s convolutions and fc layers.

    Like Table 1 ("FLOPs" there are multiply-adds), BN, ReLU, additions and pooling are not
    counted. Nested models are opened. The model's spatial input size must be fixed.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_flops(layer)
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            total += _layer_macs(layer)
    return total


def _layer_macs(layer) -> int:
    kernel = layer.kernel.shape  # (kh, kw, in, out) or (in, out)
    if isinstance(layer, keras.layers.Dense):
        positions = math.prod(layer.output.shape[1:-1])
        return positions * kernel[0] * kernel[1]
    out_shape = layer.output.shape
    spatial = out_shape[2:4] if layer.data_format == "channels_first" else out_shape[1:3]
    if None in spatial:
        raise ValueError(
            f"count_flops: layer {layer.name!r} has output shape {out_shape}; build the model with "
            "a fixed input_shape (height and width) to count its multiply-adds."
        )
    return math.prod(spatial) * math.prod(kernel)  # kernel is (kh, kw, in/groups, out)
