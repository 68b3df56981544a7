"""Thin public constructors, one per network, and the registry (`get_model`, `list_models`)."""

from __future__ import annotations

import keras

from keras_resnet.builder import build_resnet
from keras_resnet.specs import SPECS, NetSpec, get_spec, list_models

_DOC = """{title} of He et al., "Deep Residual Learning for Image Recognition" (2015), {where}.

Args:
    include_top: whether to end in global average pooling and the `classes`-way fc layer.
    weights: None (random He initialisation), or the path of a `.weights.h5` or `.keras` file.
    input_tensor: optional Keras tensor to use as the model's input.
    input_shape: (height, width, channels); default {default_shape}. Height and width may be None
        (fully convolutional, e.g. for multi-scale testing) and must be >= {stride}.
    pooling: with include_top=False: None (4D feature map), "avg" or "max".
    classes: number of classes of the fc layer (default {default_classes}).
    classifier_activation: activation of the fc layer ("softmax", None for logits, ...).
    name: model name (default "{name}").
    shortcut: {shortcut_doc}
    preact: use pre-activation units (He et al. 2016, "Identity Mappings in Deep Residual Networks").
    bottleneck_stride: "1x1" (the paper's released models) or "3x3" ("ResNet v1.5"); bottleneck
        nets only.
    zero_init_residual: initialise the last BN gamma of each residual branch to 0 (Goyal et al. 2017).
    weight_decay: SGD weight decay on conv and fc kernels (the paper: 1e-4), as L2(weight_decay / 2).

Returns:
    A `keras.Model`.
"""

_SHORTCUT_DOC = {
    None: "must be None: a plain net has no shortcuts (Sec. 4.1).",
    "A": 'None (the paper\'s default here, "A"), "A" (identity, zero-padded where dimensions grow), '
    '"B" (projection where dimensions grow) or "C" (projection everywhere); Sec. 3.3.',
    "B": 'None (the paper\'s default here, "B"), "A" (identity, zero-padded where dimensions grow), '
    '"B" (projection where dimensions grow) or "C" (projection everywhere); Sec. 3.3.',
}


def _constructor(spec: NetSpec):
    def constructor(
        include_top: bool = True,
        weights: str | None = None,
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
            include_top,
            weights,
            input_tensor,
            input_shape,
            pooling,
            classes,
            classifier_activation,
            name,
            shortcut,
            preact,
            bottleneck_stride,
            zero_init_residual,
            weight_decay,
        )

    kind = "Plain" if spec.plain else "ResNet"
    constructor.__name__ = constructor.__qualname__ = f"{kind}{spec.depth}"
    where = "Table 1 (ImageNet)" if spec.family == "imagenet" else "Sec. 4.2 (CIFAR-10)"
    constructor.__doc__ = _DOC.format(
        title=f"{kind}-{spec.depth}",
        where=where,
        default_shape=spec.default_input_shape,
        stride=spec.total_stride,
        default_classes=spec.default_classes,
        name=spec.name,
        shortcut_doc=_SHORTCUT_DOC[spec.default_shortcut],
    )
    return constructor


CONSTRUCTORS = {name: _constructor(spec) for name, spec in SPECS.items()}


# ImageNet (Table 1), then CIFAR-10 (Sec. 4.2).
ResNet18 = CONSTRUCTORS["resnet18"]
ResNet34 = CONSTRUCTORS["resnet34"]
ResNet50 = CONSTRUCTORS["resnet50"]
ResNet101 = CONSTRUCTORS["resnet101"]
ResNet152 = CONSTRUCTORS["resnet152"]
Plain18 = CONSTRUCTORS["plain18"]
Plain34 = CONSTRUCTORS["plain34"]
Plain50 = CONSTRUCTORS["plain50"]
Plain101 = CONSTRUCTORS["plain101"]
Plain152 = CONSTRUCTORS["plain152"]
ResNet20 = CONSTRUCTORS["resnet20"]
ResNet32 = CONSTRUCTORS["resnet32"]
ResNet44 = CONSTRUCTORS["resnet44"]
ResNet56 = CONSTRUCTORS["resnet56"]
ResNet110 = CONSTRUCTORS["resnet110"]
ResNet1202 = CONSTRUCTORS["resnet1202"]
Plain20 = CONSTRUCTORS["plain20"]
Plain32 = CONSTRUCTORS["plain32"]
Plain44 = CONSTRUCTORS["plain44"]
Plain56 = CONSTRUCTORS["plain56"]
Plain110 = CONSTRUCTORS["plain110"]


def get_model(name: str, **kwargs) -> keras.Model:
    """Builds a registered network by lower-case name, e.g. `get_model("resnet56", classes=100)`."""
    return CONSTRUCTORS[get_spec(name).name](**kwargs)


__all__ = [
    "get_model",
    "get_spec",
    "list_models",
    "ResNet18",
    "ResNet34",
    "ResNet50",
    "ResNet101",
    "ResNet152",
    "Plain18",
    "Plain34",
    "Plain50",
    "Plain101",
    "Plain152",
    "ResNet20",
    "ResNet32",
    "ResNet44",
    "ResNet56",
    "ResNet110",
    "ResNet1202",
    "Plain20",
    "Plain32",
    "Plain44",
    "Plain56",
    "Plain110",
]
