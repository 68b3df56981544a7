"""Building blocks of Sec. 3.2-3.3: conv-BN units, shortcuts and residual units.

Every function takes a Keras tensor and returns one; layer names carry the stage and block
(`conv4_block6_2_conv`), as in keras.applications.
"""

from __future__ import annotations

import dataclasses

import keras
from keras import layers

from keras_resnet.layers import BatchNormalization, ZeroPadShortcut

SHORTCUT_OPTIONS = ("A", "B", "C")

# Sec. 3.4: BN after every convolution. Caffe / the paper's released models use epsilon 1e-5 and
# a moving-average momentum of 0.9 (Keras' default 0.99 lags far behind on short schedules).
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9


@dataclasses.dataclass(frozen=True)
class LayerOptions:
    """Options shared by every layer of one network."""

    weight_decay: float = 0.0  # SGD weight decay (gradient term wd * w), applied as L2(wd / 2)
    zero_init_residual: bool = False  # Goyal et al. 2017: last BN gamma of each branch = 0

    def kernel_regularizer(self) -> keras.regularizers.Regularizer | None:
        return keras.regularizers.L2(self.weight_decay / 2) if self.weight_decay else None


def he_normal() -> keras.initializers.Initializer:
    """He et al. 2015 ("Delving deep"), as cited in Sec. 3.4: N(0, 2 / fan_in), untruncated."""
    return keras.initializers.VarianceScaling(2.0, mode="fan_in", distribution="untruncated_normal")


def conv(x, filters: int, kernel: int, stride: int, options: LayerOptions, name: str):
    """Bias-free convolution; strided k>1 convolutions pad k//2 on every side, as Caffe does."""
    padding = "same"
    if stride > 1 and kernel > 1:
        x = layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
        padding = "valid"
    return layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        padding=padding,
        use_bias=False,
        kernel_initializer=he_normal(),
        kernel_regularizer=options.kernel_regularizer(),
        name=f"{name}_conv",
    )(x)


def batch_norm(x, name: str, zero_gamma: bool = False):
    """BN of Sec. 3.4 (Keras's, run by TF's fused kernel on the TensorFlow backend)."""
    return BatchNormalization(
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        gamma_initializer="zeros" if zero_gamma else "ones",
        name=name,
    )(x)


def conv_bn(x, filters: int, kernel: int, stride: int, options: LayerOptions, name: str,
            zero_gamma: bool = False):
    """Convolution followed by BN (Sec. 3.4), without the ReLU."""
    x = conv(x, filters, kernel, stride, options, name)
    return batch_norm(x, f"{name}_bn", zero_gamma)


def branch_layout(block: str, filters: int, stride: int, bottleneck_stride: str
                  ) -> list[tuple[int, int, int]]:
    """(kernel, filters, stride) of each convolution of a residual branch (Fig. 5)."""
    if block == "basic":
        return [(3, filters, stride), (3, filters, 1)]
    stride_1x1, stride_3x3 = (stride, 1) if bottleneck_stride == "1x1" else (1, stride)
    return [(1, filters, stride_1x1), (3, filters, stride_3x3), (1, 4 * filters, 1)]


def projects(x, filters: int, stride: int, option: str) -> bool:
    """Whether the shortcut is a projection: option C always, option B where dimensions grow."""
    return option == "C" or (option == "B" and (stride > 1 or x.shape[-1] != filters))


def shortcut(x, filters: int, stride: int, option: str, options: LayerOptions, name: str,
             with_bn: bool = True):
    """The shortcut of Eq. (1) / (2) under option A, B or C (Sec. 3.3)."""
    if projects(x, filters, stride, option):
        if with_bn:
            return conv_bn(x, filters, 1, stride, options, f"{name}_0")
        return conv(x, filters, 1, stride, options, f"{name}_0")
    if stride > 1 or x.shape[-1] != filters:  # option A where dimensions grow
        return ZeroPadShortcut(filters, stride, name=f"{name}_0_pad")(x)
    return x


def residual_unit(x, layout: list[tuple[int, int, int]], option: str | None,
                  options: LayerOptions, name: str):
    """Post-activation unit of Fig. 2 / Fig. 5: y = ReLU(F(x) + shortcut(x)).

    With `option=None` the shortcut is dropped: the plain counterpart (Sec. 4.1).
    """
    y = x
    for i, (kernel, filters, stride) in enumerate(layout, start=1):
        last = i == len(layout)
        y = conv_bn(y, filters, kernel, stride, options, f"{name}_{i}",
                    zero_gamma=last and options.zero_init_residual)
        if not last:
            y = layers.ReLU(name=f"{name}_{i}_relu")(y)
    if option is not None:
        stride = max(s for _, _, s in layout)
        y = layers.Add(name=f"{name}_add")(
            [shortcut(x, layout[-1][1], stride, option, options, name), y]
        )
    return layers.ReLU(name=f"{name}_out")(y)


def preact_unit(x, layout: list[tuple[int, int, int]], option: str, options: LayerOptions,
                name: str, activated: bool = False):
    """Pre-activation unit (He et al. 2016, "Identity Mappings"): x + F(ReLU(BN(x))).

    A projection shortcut reads the pre-activated input, as in that paper's code. `activated`
    marks the first unit after the stem, whose input is already BN-ReLU'd.
    """
    pre = x
    if not activated:
        pre = batch_norm(x, f"{name}_preact_bn")
        pre = layers.ReLU(name=f"{name}_preact_relu")(pre)
    y = pre
    for i, (kernel, filters, stride) in enumerate(layout, start=1):
        if i > 1:
            y = batch_norm(y, f"{name}_{i - 1}_bn")
            y = layers.ReLU(name=f"{name}_{i - 1}_relu")(y)
        y = conv(y, filters, kernel, stride, options, f"{name}_{i}")
    stride = max(s for _, _, s in layout)
    source = pre if projects(x, layout[-1][1], stride, option) else x
    short = shortcut(source, layout[-1][1], stride, option, options, name, with_bn=False)
    return layers.Add(name=f"{name}_out")([short, y])
