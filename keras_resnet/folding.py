"""Batch normalization folded into the convolution before it, for inference.

At inference BN (Sec. 3.4) is a fixed per-channel affine map, y = gamma (x - mean) / sqrt(var +
eps) + beta, so a BN that reads a convolution's output can be merged into that convolution:
kernel' = kernel * s and bias' = (bias - mean) * s + beta, with s = gamma / sqrt(var + eps).
The folded net computes the same function (to float32 rounding) with two elementwise passes
over every feature map fewer, and TensorFlow runs the convolution, its bias and the ReLU after it
as one fused kernel. `keras_resnet.export` serves folded models (docs/performance.md, *Serving*).
"""

from __future__ import annotations

import keras
import numpy as np


@keras.saving.register_keras_serializable(package="keras_resnet")
class FoldedBatchNormalization(keras.layers.Layer):
    """Stands where a BN was folded into the convolution before it: passes its input through
    (with BN's call signature, so the folded model calls it as it called the BN)."""

    def call(self, inputs, training=None, mask=None):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


def _conv_before(bn: keras.layers.Layer) -> keras.layers.Conv2D | None:
    """The Conv2D whose output is `bn`'s only input and feeds nothing else, or None."""
    if len(bn._inbound_nodes) != 1 or bn.axis not in (-1, 3):
        return None
    inputs = bn._inbound_nodes[0].input_tensors
    if len(inputs) != 1:
        return None
    conv = inputs[0]._keras_history.operation
    if (type(conv) is not keras.layers.Conv2D or conv.data_format != "channels_last"
            or len(conv._inbound_nodes) != 1 or len(conv._outbound_nodes) != 1):
        return None
    return conv


def foldable_pairs(model: keras.Model) -> dict[str, str]:
    """{BN layer name: Conv2D layer name} of the BNs `fold_batch_norm` merges into a convolution."""
    return {layer.name: conv.name for layer in model.layers
            if isinstance(layer, keras.layers.BatchNormalization)
            and (conv := _conv_before(layer)) is not None}


def folded_kernel_and_bias(conv: keras.layers.Conv2D, bn: keras.layers.BatchNormalization
                           ) -> tuple[np.ndarray, np.ndarray]:
    """The kernel and bias of `conv` followed by `bn` at inference, computed in float64."""
    kernel = np.asarray(keras.ops.convert_to_numpy(conv.kernel), np.float64)
    bias = (np.asarray(keras.ops.convert_to_numpy(conv.bias), np.float64) if conv.use_bias
            else np.zeros(kernel.shape[-1]))

    def value(variable, default: float) -> np.ndarray:
        if variable is None:
            return np.full(kernel.shape[-1], default)
        return np.asarray(keras.ops.convert_to_numpy(variable), np.float64)

    gamma = value(bn.gamma if bn.scale else None, 1.0)
    beta = value(bn.beta if bn.center else None, 0.0)
    mean, variance = value(bn.moving_mean, 0.0), value(bn.moving_variance, 1.0)
    scale = gamma / np.sqrt(variance + bn.epsilon)
    return kernel * scale, (bias - mean) * scale + beta


def _is_graph_of_layers(model: object) -> bool:
    """Whether `model` is a functional model or a built Sequential (whose layers know their
    inputs), the two kinds `fold_batch_norm` can rewire."""
    if isinstance(model, keras.Sequential):
        return model.built and getattr(model, "_functional", None) is not None
    return isinstance(model, keras.Model) and hasattr(model, "_operations_by_depth")


def fold_batch_norm(model: keras.Model) -> keras.Model:
    """An inference copy of a functional or built Sequential `model` in which every BN that reads
    a Conv2D's output (and is that output's only reader) is merged into the convolution, which
    gains a bias; the BN becomes a `FoldedBatchNormalization` (an identity) of the same name.
    Other layers are copied with their weights.

    The copy is a snapshot: for inference only (it has no BN to train), and training `model`
    afterwards does not change it. Pre-activation units, whose BN reads a sum, keep those BNs.
    """
    if not _is_graph_of_layers(model):
        raise TypeError("fold_batch_norm needs a functional Keras model or a Sequential built "
                        f"with an Input, got {type(model).__name__}"
                        f"{'' if model.__class__ is not keras.Sequential else ' not built'}.")
    pairs = foldable_pairs(model)
    folded_convs = set(pairs.values())

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        if layer.name in pairs:
            return FoldedBatchNormalization(name=layer.name, dtype=layer.dtype_policy)
        config = layer.get_config()
        if layer.name in folded_convs:
            config["use_bias"], config["bias_initializer"] = True, "zeros"
        return layer.__class__.from_config(config)

    folded = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        if layer.name in pairs or not layer.weights:
            continue
        target = folded.get_layer(layer.name)
        if layer.name in folded_convs:
            bn = model.get_layer(next(b for b, c in pairs.items() if c == layer.name))
            kernel, bias = folded_kernel_and_bias(layer, bn)
            target.kernel.assign(kernel.astype(target.kernel.dtype))
            target.bias.assign(bias.astype(target.bias.dtype))
        else:
            target.set_weights(layer.get_weights())
    return folded
