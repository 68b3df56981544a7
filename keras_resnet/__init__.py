"""The networks of He et al., "Deep Residual Learning for Image Recognition" (2015), for Keras 3.

`keras_resnet.ResNet50(weights=None)` works like `keras.applications.ResNet50`; the module adds
ResNet-18/34, the plain nets, the CIFAR nets of Sec. 4.2 and the shortcut options A/B/C.
"""

from keras_resnet import runtime

runtime.prefer_onednn()  # before anything below imports TensorFlow (see keras_resnet.runtime)

from keras_resnet import layers, losses, models  # noqa: E402
from keras_resnet.flops import count_flops  # noqa: E402
from keras_resnet.models import (  # noqa: E402
    ResNet18,
    ResNet34,
    ResNet50,
    ResNet101,
    ResNet152,
    Plain18,
    Plain34,
    Plain50,
    Plain101,
    Plain152,
    ResNet20,
    ResNet32,
    ResNet44,
    ResNet56,
    ResNet110,
    ResNet1202,
    Plain20,
    Plain32,
    Plain44,
    Plain56,
    Plain110,
    get_model,
    get_spec,
    list_models,
)

__version__ = "0.1.0"

__all__ = ["count_flops", "layers", "losses", "runtime", *models.__all__]
