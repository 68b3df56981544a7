"""Multiply-adds per image, counted from a built model's layers (the unit of Table 1's FLOPs)."""

from __future__ import annotations

import math

import keras

_CONVOLUTIONS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
# Layers that multiply and add but that count_flops has no formula for: an error, not an undercount.
_UNCOUNTED = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D,
              keras.layers.SeparableConv1D, keras.layers.SeparableConv2D,
              keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose,
              keras.layers.Conv3DTranspose, keras.layers.EinsumDense)


def count_flops(model: keras.Model) -> int:
    """Multiply-adds of one image through `model`'s convolutions and fc layers.

    Like Table 1 ("FLOPs" there are multiply-adds), BN, ReLU, additions and pooling are not
    counted. Nested models are opened. The model's spatial input size must be fixed. Depthwise,
    separable and transposed convolutions and EinsumDense raise ValueError.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_flops(layer)
        elif isinstance(layer, (*_CONVOLUTIONS, keras.layers.Dense)):
            total += _layer_macs(layer)
        elif isinstance(layer, _UNCOUNTED):
            raise ValueError(f"count_flops: layer {layer.name!r} is a {type(layer).__name__}; it "
                             "counts Conv1D/2D/3D and Dense layers only.")
    return total


def _layer_macs(layer) -> int:
    kernel = layer.kernel.shape  # (*spatial, in/groups, out) or (in, out)
    if isinstance(layer, keras.layers.Dense):
        positions = math.prod(layer.output.shape[1:-1])
        return positions * kernel[0] * kernel[1]
    out_shape = layer.output.shape
    spatial = out_shape[2:] if layer.data_format == "channels_first" else out_shape[1:-1]
    if None in spatial:
        raise ValueError(
            f"count_flops: layer {layer.name!r} has output shape {out_shape}; build the model with "
            "a fixed input_shape (height and width) to count its multiply-adds."
        )
    return math.prod(spatial) * math.prod(kernel)
