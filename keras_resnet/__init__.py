"""The networks of He et al., "Deep Residual Learning for Image Recognition" (2015), for Keras 3.

`keras_resnet.ResNet50(weights="imagenet")` works like `keras.applications.ResNet50`; the module
adds ResNet-18/34, the plain nets, the CIFAR nets of Sec. 4.2, the shortcut options A/B/C, and
loads torchvision's and timm's weights into the same nets (keras_resnet.pretrained).
"""

from keras_resnet import runtime

runtime.prefer_onednn()  # before anything below imports TensorFlow (see keras_resnet.runtime)

from keras_resnet import layers, losses, models, pretrained  # noqa: E402
from keras_resnet.flops import count_flops  # noqa: E402
from keras_resnet.models import *  # noqa: E402, F403  (the constructors, listed in models.__all__)
from keras_resnet.preprocessing import decode_predictions, preprocess_input  # noqa: E402

__version__ = "0.1.0"

__all__ = ["count_flops", "decode_predictions", "layers", "losses", "preprocess_input",
           "pretrained", "runtime", *models.__all__]
