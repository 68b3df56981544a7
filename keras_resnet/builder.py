"""One builder for every network of the paper: stem, stages of units, head (Table 1, Sec. 4.2)."""

from __future__ import annotations

import os
import sys

import keras
from keras import layers

from keras_resnet import blocks, pretrained
from keras_resnet.specs import NetSpec

POOLING_OPTIONS = (None, "avg", "max")
BOTTLENECK_STRIDE_OPTIONS = ("1x1", "3x3")


def build_resnet(
    spec: NetSpec,
    include_top: bool = True,
    weights: str | os.PathLike | None = None,
    input_tensor=None,
    input_shape: tuple[int | None, ...] | None = None,
    pooling: str | None = None,
    classes: int | None = None,
    classifier_activation: str | None = "softmax",
    name: str | None = None,
    shortcut: str | None = None,
    preact: bool = False,
    bottleneck_stride: str = "1x1",
    zero_init_residual: bool = False,
    weight_decay: float = 0.0,
) -> keras.Model:
    """Builds `spec` as a functional Keras model; see `keras_resnet.ResNet50` for the arguments."""
    option = _check_options(spec, shortcut, preact, bottleneck_stride, zero_init_residual,
                            weight_decay, pooling)
    classes = spec.default_classes if classes is None else classes
    if include_top and (isinstance(classes, bool) or not isinstance(classes, int) or classes < 1):
        raise ValueError(f"classes={classes!r}: must be an integer >= 1.")
    if keras.config.image_data_format() != "channels_last":
        raise ValueError(
            f'image_data_format is {keras.config.image_data_format()!r}: keras_resnet builds '
            f'"channels_last" models only (faster to train on TensorFlow: docs/performance.md, '
            f'"Data format"); set keras.config.set_image_data_format("channels_last").'
        )
    inputs, x = _inputs(spec, input_tensor, input_shape)
    imagenet = isinstance(weights, str) and weights == "imagenet"
    if imagenet and spec.name in pretrained.IMAGENET_WEIGHTS and include_top and classes != 1000:
        raise ValueError(f"classes={classes} with weights='imagenet' and include_top=True: the "
                         f"ImageNet classifier has 1000 classes; for another number build with "
                         f"include_top=False and add your own head.")
    source = None if weights is None else pretrained.locate(weights, spec.name, include_top)
    options = blocks.LayerOptions(weight_decay=weight_decay, zero_init_residual=zero_init_residual)

    x = _stem(spec, x, options)
    for stage, (filters, repeats) in enumerate(zip(spec.widths, spec.repeats), start=2):
        for block in range(1, repeats + 1):
            stride = 2 if block == 1 and stage > 2 else 1
            layout = blocks.branch_layout(spec.block, filters, stride, bottleneck_stride)
            unit_name = f"conv{stage}_block{block}"
            if preact:
                x = blocks.preact_unit(x, layout, option, options, unit_name,
                                       activated=stage == 2 and block == 1)
            else:
                x = blocks.residual_unit(x, layout, option, options, unit_name)
    if preact:
        x = blocks.batch_norm(x, "post_bn")
        x = layers.ReLU(name="post_relu")(x)

    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        # float32 output under 16-bit policies, for a numerically sound softmax / loss; float32
        # and float64 policies keep their own dtype.
        half = keras.config.dtype_policy().compute_dtype in ("float16", "bfloat16")
        x = layers.Dense(
            classes,
            activation=classifier_activation,
            dtype="float32" if half else None,
            kernel_regularizer=options.kernel_regularizer(),
            name="predictions",
        )(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)

    # Keras walks the layer graph recursively: ResNet-1202 (~4,000 layers) needs a deeper stack.
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20 * sum(spec.repeats) + 1000))
    model = keras.Model(inputs, x, name=name or _default_name(spec, preact))
    if source is not None:
        pretrained.load_source(model, source)
    return model


def _default_name(spec: NetSpec, preact: bool) -> str:
    return f"{spec.name}_preact" if preact else spec.name


def _check_options(spec, shortcut, preact, bottleneck_stride, zero_init_residual, weight_decay,
                   pooling) -> str | None:
    """Validates the paper's options; returns the shortcut option to use (None for plain nets)."""
    if pooling not in POOLING_OPTIONS:
        raise ValueError(f"pooling={pooling!r}: must be one of None, 'avg', 'max'.")
    if bottleneck_stride not in BOTTLENECK_STRIDE_OPTIONS:
        raise ValueError(
            f"bottleneck_stride={bottleneck_stride!r}: must be '1x1' (the paper) or '3x3' "
            "(ResNet v1.5)."
        )
    if spec.block == "basic" and bottleneck_stride != "1x1":
        raise ValueError(
            f"bottleneck_stride={bottleneck_stride!r} has no effect on {spec.name}, which uses "
            "basic blocks; it applies to resnet50/101/152 and plain50/101/152 only."
        )
    if (
        not isinstance(weight_decay, (int, float))
        or isinstance(weight_decay, bool)
        or weight_decay < 0
    ):
        raise ValueError(f"weight_decay={weight_decay!r}: must be a number >= 0.")
    if spec.plain:
        for arg, value, default in (("shortcut", shortcut, None), ("preact", preact, False),
                                    ("zero_init_residual", zero_init_residual, False)):
            if value != default:
                raise ValueError(
                    f"{arg}={value!r}: {spec.name} is a plain net (no shortcuts, Sec. 4.1); "
                    f"{arg} applies to residual nets only."
                )
        return None
    option = spec.default_shortcut if shortcut is None else shortcut
    if option not in blocks.SHORTCUT_OPTIONS:
        raise ValueError(f"shortcut={shortcut!r}: must be one of 'A', 'B', 'C' (Sec. 3.3).")
    if preact and zero_init_residual:
        raise ValueError(
            "zero_init_residual=True with preact=True: a pre-activation branch ends in a "
            "convolution, not a BN, so there is no last gamma to zero."
        )
    return option


def _inputs(spec: NetSpec, input_tensor, input_shape):
    """The model's input and the tensor the stem reads, with the input shape checked."""
    if input_shape is None and input_tensor is not None:
        input_shape = tuple(input_tensor.shape[1:])
    if input_shape is None:
        input_shape = spec.default_input_shape
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"input_shape={input_shape!r}: must be (height, width, channels).")
    height, width, channels = input_shape
    if channels is None or channels < 1:
        raise ValueError(f"input_shape={input_shape!r}: channels must be >= 1, got {channels}.")
    minimum = spec.total_stride
    for size in (height, width):
        if size is not None and size < minimum:
            raise ValueError(
                f"input_shape={input_shape!r}: {spec.name} downsamples by {minimum}, so height and "
                f"width must be >= {minimum} (or None)."
            )
    if input_tensor is None:
        inputs = layers.Input(shape=input_shape, name="input")
        return inputs, inputs
    if not keras.backend.is_keras_tensor(input_tensor):
        inputs = layers.Input(tensor=input_tensor, shape=input_shape)
        return inputs, inputs
    return keras.utils.get_source_inputs(input_tensor), input_tensor


def _stem(spec: NetSpec, x, options: blocks.LayerOptions):
    """conv1 (and pool1 for ImageNet): 7x7/2 conv + 3x3/2 max-pool (Table 1), or 3x3 conv
    (Sec. 4.2)."""
    if spec.family == "imagenet":
        x = blocks.conv_bn(x, spec.widths[0], 7, 2, options, "conv1")
        x = layers.ReLU(name="conv1_relu")(x)
        x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
        return layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    x = blocks.conv_bn(x, spec.widths[0], 3, 1, options, "conv1")
    return layers.ReLU(name="conv1_relu")(x)
