"""Thin public constructors, one per network, and the registry (`get_model`, `list_models`)."""

from __future__ import annotations

import os

import keras

from keras_resnet.builder import build_resnet
from keras_resnet.preprocessing import PreprocessInput
from keras_resnet.pretrained import IMAGENET_WEIGHTS, preprocessing_mode
from keras_resnet.specs import SPECS, NetSpec, get_spec, list_models

_DOC = """{title} of He et al., "Deep Residual Learning for Image Recognition" (2015), {where}.

Args:
    include_top: whether to end in global average pooling and the `classes`-way fc layer.
    weights: {weights_doc}
    input_tensor: optional Keras tensor to use as the model's input.
    input_shape: (height, width, channels); default {default_shape}. Height and width may be None
        (fully convolutional, e.g. for multi-scale testing) and must be >= {stride}.
    pooling: with include_top=False: None (4D feature map), "avg" or "max".
    classes: number of classes of the fc layer (default {default_classes}).
    classifier_activation: activation of the fc layer ("softmax", None for logits, ...).
    name: model name (default "{name}").
    shortcut: {shortcut_doc}
    preact: use pre-activation units (He et al. 2016, "Identity Mappings in Deep Residual
        Networks").
    bottleneck_stride: "1x1" (the paper's released models) or "3x3" ("ResNet v1.5", the layout of
        torchvision's and timm's weights); bottleneck nets only.
    zero_init_residual: initialise the last BN gamma of each residual branch to 0 (Goyal et al.
        2017).
    weight_decay: SGD weight decay on conv and fc kernels (the paper: 1e-4), as
        L2(weight_decay / 2).

Returns:
    A `keras.Model`.
"""

_FILES_DOC = ("the path of a `.weights.h5` / `.keras` file of this package, of a\n"
              "        keras.applications ResNet `.h5`, or of a torchvision / timm state dict\n"
              "        (`.safetensors`, `.pth`); see keras_resnet.pretrained.")
_WEIGHTS_DOC = {
    "pretrained": '"imagenet" (the paper\'s released model as keras.applications publishes\n'
                  '        it; input `preprocess_input(x, mode="caffe")`), None (random He\n'
                  "        initialisation), or " + _FILES_DOC,
    "imagenet": "None (random He initialisation), or\n        " + _FILES_DOC,
    "cifar": "None (random He initialisation), or the path of a `.weights.h5` or `.keras` file.",
}

_SHORTCUT_DOC = {
    None: "must be None: a plain net has no shortcuts (Sec. 4.1).",
    "A": 'None (the paper\'s default here, "A"), "A" (identity, zero-padded where dimensions\n'
    '        grow), "B" (projection where dimensions grow) or "C" (projection everywhere);\n'
    "        Sec. 3.3.",
    "B": 'None (the paper\'s default here, "B"), "A" (identity, zero-padded where dimensions\n'
    '        grow), "B" (projection where dimensions grow) or "C" (projection everywhere);\n'
    "        Sec. 3.3.",
}


def _constructor(spec: NetSpec):
    def constructor(
        include_top: bool = True,
        weights: str | os.PathLike | None = None,
        input_tensor=None,
        input_shape: tuple[int | None, int | None, int] | None = None,
        pooling: str | None = None,
        classes: int = spec.default_classes,
        classifier_activation: str | None = "softmax",
        name: str | None = None,
        shortcut: str | None = None,
        preact: bool = False,
        bottleneck_stride: str = "1x1",
        zero_init_residual: bool = False,
        weight_decay: float = 0.0,
    ) -> keras.Model:
        return build_resnet(
            spec,
            include_top=include_top,
            weights=weights,
            input_tensor=input_tensor,
            input_shape=input_shape,
            pooling=pooling,
            classes=classes,
            classifier_activation=classifier_activation,
            name=name,
            shortcut=shortcut,
            preact=preact,
            bottleneck_stride=bottleneck_stride,
            zero_init_residual=zero_init_residual,
            weight_decay=weight_decay,
        )

    kind = "Plain" if spec.plain else "ResNet"
    constructor.__name__ = constructor.__qualname__ = spec.constructor_name
    constructor.__module__ = __name__
    where = "Table 1 (ImageNet)" if spec.family == "imagenet" else "Sec. 4.2 (CIFAR-10)"
    constructor.__doc__ = _DOC.format(
        title=f"{kind}-{spec.depth}",
        where=where,
        weights_doc=_WEIGHTS_DOC["pretrained" if spec.name in IMAGENET_WEIGHTS else spec.family],
        default_shape=spec.default_input_shape,
        stride=spec.total_stride,
        default_classes=spec.default_classes,
        name=spec.name,
        shortcut_doc=_SHORTCUT_DOC[spec.default_shortcut],
    )
    return constructor


# One constructor per registered network (ImageNet of Table 1, then CIFAR-10 of Sec. 4.2), named
# as in keras.applications; declared here once, from the spec table.
CONSTRUCTORS = {name: _constructor(SPECS[name]) for name in list_models()}
globals().update({fn.__name__: fn for fn in CONSTRUCTORS.values()})


def get_model(name: str, **kwargs) -> keras.Model:
    """Builds a registered network by lower-case name, e.g. `get_model("resnet56", classes=100)`."""
    return CONSTRUCTORS[get_spec(name).name](**kwargs)


def raw_pixel_model(name: str, weights: str | os.PathLike, mode: str | None = None,
                    image_size: int | None = None, **kwargs) -> keras.Model:
    """Network `name` with pretrained `weights` on raw RGB pixels (0..255): its first layer is
    `PreprocessInput(mode)`, by default the mode the weights expect (`preprocessing_mode`).

    `image_size` sets a square input (default: the net's); `kwargs` go to the constructor.
    """
    mode = mode or preprocessing_mode(weights)
    if mode is None:
        raise ValueError(f"weights={os.fspath(weights)!r}: the file does not say which input "
                         f"preprocessing it expects; pass mode='caffe' or mode='torch'.")
    height, width, channels = get_spec(name).default_input_shape
    if image_size is not None:
        height = width = image_size
    inputs = keras.Input((height, width, channels), name="pixels")
    pixels = PreprocessInput(mode, name="preprocess_input")(inputs)
    return get_model(name, weights=weights, input_tensor=pixels, **kwargs)


__all__ = ["get_model", "get_spec", "list_models", "raw_pixel_model",
           *(fn.__name__ for fn in CONSTRUCTORS.values())]
