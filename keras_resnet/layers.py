"""Parameter-free layers of the paper's networks, registered for `.keras` round trips."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def subsample(x, stride: int):
    """The pixels `x[:, ::stride, ::stride, :]` of NHWC feature maps (option A's subsampling).

    Where height and width are known multiples of the stride (every CIFAR net), it reshapes each
    `stride x stride` patch into axes of its own and takes their first pixel with a contiguous
    slice: the same values and gradients, but TensorFlow computes the gradient of a contiguous
    slice as a Pad, not the strided slice's StridedSliceGrad; forward and backward together run
    several times as fast at the CIFAR nets' two shapes on CPU (docs/performance.md, *Option A's
    subsampling alone*). Other shapes take the strided slice.
    """
    if stride == 1:
        return x
    _, height, width, channels = x.shape
    if None in (height, width, channels) or height % stride or width % stride:
        return x[:, ::stride, ::stride, :]
    rows, cols = height // stride, width // stride
    patches = ops.reshape(x, (-1, rows, stride, cols, stride, channels))
    first = ops.slice(patches, (0,) * 6, (-1, rows, 1, cols, 1, channels))
    return ops.reshape(first, (-1, rows, cols, channels))


@keras.saving.register_keras_serializable(package="keras_resnet")
class ZeroPadShortcut(keras.layers.Layer):
    """Shortcut option A (Sec. 3.3): identity with stride subsampling and zero-padded channels.

    Adds no parameters: `subsample(x, s)` (the pixels `x[:, ::s, ::s, :]`), then
    `filters - channels` zero channels appended.
    """

    def __init__(self, filters: int, strides: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)

    def call(self, inputs):
        x = subsample(inputs, self.strides)
        extra = self.filters - x.shape[-1]
        if extra < 0:
            raise ValueError(
                f"ZeroPadShortcut: input has {x.shape[-1]} channels, "
                f"more than filters={self.filters}."
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
                "SubtractMean: mean must have shape (H, W, C) or (C,), "
                f"got {self.mean_value.shape}."
            )

    def build(self, input_shape):
        self.mean = self.add_weight(
            name="mean",
            shape=self.mean_value.shape,
            initializer=keras.initializers.Constant(self.mean_value),
            trainable=False,
            dtype="float32",
            autocast=False,  # read as float32 under a mixed policy too (see `input_dtype`)
        )

    @property
    def input_dtype(self) -> str:
        """At least float32: under a mixed policy the pixels are centred before the cast to
        bfloat16 / float16, which would round pixels and mean near 255 to steps of 1 first."""
        return "float64" if self.compute_dtype == "float64" else "float32"

    def call(self, inputs):
        centred = ops.cast(inputs, self.input_dtype) - ops.cast(self.mean, self.input_dtype)
        return ops.cast(centred, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mean": self.mean_value.tolist()}


@keras.saving.register_keras_serializable(package="keras_resnet")
class BatchNormalization(keras.layers.BatchNormalization):
    """Keras's batch normalization (Sec. 3.4), trained by TensorFlow's fused kernel where it
    applies.

    Same arguments, weights, config and results as `keras.layers.BatchNormalization`. In training,
    on the TensorFlow backend, for NHWC feature maps, it calls `FusedBatchNormV3` (one kernel
    forward, one backward) instead of Keras's unfused moments + normalize graph, which is the
    largest cost of a ResNet training step on CPU (docs/performance.md). The moving statistics
    follow Keras's rule exactly: the batch variance is the biased one (the kernel's Bessel
    correction is undone). Inference is Keras's own per-channel affine: TensorFlow's oneDNN
    rewrite folds an inference `FusedBatchNormV3` into the convolution before it as post-ops that
    some CPUs run slowly (AVX2: a batch-1 ResNet-50 took many times as long; docs/performance.md,
    *Serving*). Anything else (JAX, masks, renorm, synchronized BN, other ranks or axes) is
    Keras's own code.
    """

    def _fusable(self, inputs, training, mask) -> bool:
        return (
            keras.backend.backend() == "tensorflow"
            and bool(training and self.trainable)
            and mask is None
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and self.center
            and self.scale
            and not self.renorm
            and not self.synchronized
            and keras.backend.standardize_dtype(inputs.dtype) in ("float32", "bfloat16", "float16")
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf  # only reached on the TensorFlow backend

        empty = tf.constant([], tf.float32)
        outputs, batch_mean, batch_variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=inputs,
            scale=tf.cast(self.gamma, tf.float32),
            offset=tf.cast(self.beta, tf.float32),
            mean=empty,
            variance=empty,
            epsilon=self.epsilon,
            data_format="NHWC",
            is_training=True,
        )
        shape = tf.shape(inputs)
        count = tf.cast(shape[0] * shape[1] * shape[2], tf.float32)
        biased_variance = batch_variance * ((count - 1.0) / tf.maximum(count, 1.0))
        self.moving_mean.assign(
            self.moving_mean * self.momentum + batch_mean * (1.0 - self.momentum)
        )
        self.moving_variance.assign(
            self.moving_variance * self.momentum + biased_variance * (1.0 - self.momentum))
        return tf.cast(outputs, self.compute_dtype)
