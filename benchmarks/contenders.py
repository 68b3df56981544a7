"""The benchmark's contenders: their names, the nets they build and the steps they time.

Our nets and their variants (each the figure behind one choice of the model library), the
hand-written keras.io-style Keras CIFAR ResNet, and PyTorch's nets. Top-level imports are stdlib
only: the PyTorch worker imports this module under a Python without Keras.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

CIFAR_NETS = ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110")
IMAGENET_NETS = ("resnet50",)
# reference: keras.applications / hand-written keras.io. Variants of our net, each the figure
# behind one choice of the model library: ours_keras_bn has Keras's own (unfused)
# BatchNormalization in place of keras_resnet.layers.BatchNormalization; ours_strided_shortcut
# subsamples option A's shortcut by the strided slice `x[:, ::2, ::2, :]` instead of
# keras_resnet.layers.subsample (the same values; CIFAR nets only). reference_channels_first is
# the keras.io net in channels_first (NCHW): the figure behind keras_resnet building channels_last
# models only (our net has no channels_first form to time; CIFAR nets only, not in the default
# --impls).
VARIANTS = ("ours_keras_bn", "ours_strided_shortcut")
IMPLS = ("ours", *VARIANTS, "reference", "reference_channels_first", "torch")
CIFAR_ONLY_IMPLS = ("ours_strided_shortcut", "reference_channels_first")
# Serving contenders: ours as keras_resnet.export writes it (BN folded into the convolutions);
# ours with its BN left in the graph, inferring by Keras's affine (the layer's inference path, for
# the BNs that cannot be folded) or by TensorFlow's fused kernel (FusedBatchNormV3,
# is_training=False); and keras.applications' net exported the same way with its BN as it is
# (keras.applications folds nothing).
SERVING_IMPLS = {"ours": "keras_resnet (BN folded)",
                 "ours_unfolded_bn": "keras_resnet, BN not folded",
                 "ours_fused_inference_bn": "keras_resnet, BN not folded, fused inference BN",
                 "reference": "keras.applications"}
# Option A's subsampling, timed alone (section shortcut): keras_resnet.layers.subsample, the
# strided slice and a 1x1 max-pool of stride 2, all taking the same pixels.
SUBSAMPLINGS = ("keras_resnet", "strided_slice", "max_pool")
SUBSAMPLING_LABELS = {"keras_resnet": "keras_resnet.layers.subsample (reshape + slice)",
                      "strided_slice": "strided slice", "max_pool": "1x1 max-pool, stride 2"}
BACKENDS = ("tensorflow", "jax")
PRECISIONS = ("float32", "bfloat16")
MOMENTUM = 0.9
LEARNING_RATE = 0.01


def photograph(size: int):
    """A real colour photograph (scikit-image's cat), cropped square and resized to 2x `size`."""
    import numpy as np
    import skimage.data
    from PIL import Image

    image = skimage.data.chelsea()
    side = min(image.shape[:2])
    image = Image.fromarray(image[:side, :side]).resize((2 * size, 2 * size), Image.BILINEAR)
    return np.asarray(image)


def variant_layer(variant: str, layer):
    """clone_model's layer copier for a variant of our net: the one layer kind it replaces
    (Keras's BatchNormalization, the fused-inference BN, or the strided-slice option-A shortcut),
    every other as is."""
    import keras

    import keras_resnet

    batch_norm = isinstance(layer, keras_resnet.layers.BatchNormalization)
    if variant == "ours_keras_bn" and batch_norm:
        return keras.layers.BatchNormalization.from_config(layer.get_config())
    if variant == "ours_fused_inference_bn" and batch_norm:
        return fused_inference_bn_class().from_config(layer.get_config())
    shortcut = isinstance(layer, keras_resnet.layers.ZeroPadShortcut)
    if variant == "ours_strided_shortcut" and shortcut:
        return strided_shortcut_class().from_config(layer.get_config())
    return layer.__class__.from_config(layer.get_config())


def subsampling(kind: str) -> Callable:
    """Option A's subsampling `x[:, ::s, ::s, :]` as keras_resnet does it, as the strided slice
    itself, or as a 1x1 max-pool of stride s: the same pixels and gradients."""
    from keras import ops

    import keras_resnet

    return {"keras_resnet": keras_resnet.layers.subsample,
            "strided_slice": lambda x, s: x[:, ::s, ::s, :] if s > 1 else x,
            "max_pool": lambda x, s: (ops.max_pool(x, pool_size=1, strides=s, padding="same")
                                      if s > 1 else x)}[kind]


@functools.cache
def fused_inference_bn_class():
    """keras_resnet's BatchNormalization inferring with TensorFlow's fused kernel as well."""
    import keras_resnet

    class FusedInferenceBatchNormalization(keras_resnet.layers.BatchNormalization):
        def call(self, inputs, training=None, mask=None):
            if training and self.trainable:
                return super().call(inputs, training=training, mask=mask)
            import tensorflow as tf

            outputs = tf.raw_ops.FusedBatchNormV3(
                x=inputs, scale=tf.cast(self.gamma, tf.float32),
                offset=tf.cast(self.beta, tf.float32),
                mean=tf.cast(self.moving_mean, tf.float32),
                variance=tf.cast(self.moving_variance, tf.float32), epsilon=self.epsilon,
                data_format="NHWC", is_training=False)[0]
            return tf.cast(outputs, self.compute_dtype)

    return FusedInferenceBatchNormalization


@functools.cache
def strided_shortcut_class():
    """keras_resnet's option A shortcut with the strided slice in place of layers.subsample."""
    from keras import ops

    import keras_resnet

    class StridedZeroPadShortcut(keras_resnet.layers.ZeroPadShortcut):
        def call(self, inputs):
            x = subsampling("strided_slice")(inputs, self.strides)
            return ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, self.filters - x.shape[-1]]])

    return StridedZeroPadShortcut


def tf_fit_steps(model, x, y, autotune: bool = False) -> Callable[[int], float]:
    """`model.fit` (what the trainers run) over `steps` steps of one in-memory batch, with the
    trainers' tf.data options (no autotuner, whose thread delays the end of each `fit`), or with
    tf.data's default options (`autotune=True`), to measure that choice."""
    import tensorflow as tf

    from keras_resnet.training.cifar_data import tf_data_options

    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    if not autotune:
        data = data.with_options(tf_data_options())

    def run(steps: int) -> float:
        start = time.perf_counter()
        model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
        return time.perf_counter() - start

    return run


def jax_train_step(model, optimizer, x, y) -> Callable[[int], float]:
    """A jitted stateless SGD step with the batch on the device (the JAX trainers' fast path)."""
    import jax
    import jax.numpy as jnp
    import keras

    loss_object = keras.losses.SparseCategoricalCrossentropy()
    optimizer.build(model.trainable_variables)
    state = [[v.value for v in model.trainable_variables],
             [v.value for v in model.non_trainable_variables],
             [v.value for v in optimizer.variables]]
    x, y = jnp.asarray(x), jnp.asarray(y)

    def loss(trainable, non_trainable, images, labels):
        outputs, non_trainable = model.stateless_call(trainable, non_trainable, images,
                                                      training=True)
        return loss_object(labels, outputs), non_trainable

    @functools.partial(jax.jit, donate_argnums=(0, 1, 2))  # the state is updated in place
    def step(trainable, non_trainable, optimizer_variables, images, labels):
        (value, non_trainable), grads = jax.value_and_grad(loss, has_aux=True)(
            trainable, non_trainable, images, labels)
        trainable, optimizer_variables = optimizer.stateless_apply(optimizer_variables, grads,
                                                                   trainable)
        return trainable, non_trainable, optimizer_variables, value

    def run(steps: int) -> float:
        start = time.perf_counter()
        value = None
        for _ in range(steps):
            outputs = step(*state, x, y)
            state[:], value = outputs[:3], outputs[3]
        value.block_until_ready()
        return time.perf_counter() - start

    return run


def handwritten_cifar_resnet(keras, depth: int, input_shape: tuple[int, int, int], classes: int,
                             data_format: str = "channels_last"):
    """The common keras.io CIFAR ResNet v1: Conv2D(same)-BN-ReLU layers, 1x1 conv projections.
    With `data_format="channels_first"` it takes the same channels-last images and transposes
    them once (what a channels-first net does with decoded images), then runs in NCHW."""
    layers = keras.layers
    channel_axis = 1 if data_format == "channels_first" else -1

    def unit(x, filters, kernel=3, strides=1, activation=True, batch_norm=True):
        x = layers.Conv2D(filters, kernel, strides=strides, padding="same", data_format=data_format,
                          kernel_initializer="he_normal")(x)
        if batch_norm:
            x = layers.BatchNormalization(axis=channel_axis)(x)
        return layers.Activation("relu")(x) if activation else x

    inputs = keras.Input(input_shape)
    x = layers.Permute((3, 1, 2))(inputs) if data_format == "channels_first" else inputs
    x = unit(x, 16)
    filters = 16
    for stage in range(3):
        for block in range((depth - 2) // 6):
            strides = 2 if stage > 0 and block == 0 else 1
            y = unit(unit(x, filters, strides=strides), filters, activation=False)
            if strides > 1:
                x = unit(x, filters, kernel=1, strides=strides, activation=False, batch_norm=False)
            x = layers.Activation("relu")(layers.add([x, y]))
        filters *= 2
    x = layers.Flatten()(layers.AveragePooling2D(8, data_format=data_format)(x))
    outputs = layers.Dense(classes, activation="softmax", kernel_initializer="he_normal")(x)
    suffix = "_channels_first" if data_format == "channels_first" else ""
    return keras.Model(inputs, outputs, name=f"keras_io_resnet{depth}{suffix}")



def torch_cifar_resnet(torch, depth: int, classes: int, shortcuts: bool = True):
    """Sec. 4.2's CIFAR ResNet in PyTorch: 3x3 convs, BN, option-A shortcuts (subsample + zeros);
    `shortcuts=False` gives the plain net of the same depth."""
    nn, functional = torch.nn, torch.nn.functional

    class Unit(nn.Module):
        def __init__(self, inputs: int, filters: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(inputs, filters, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(filters)
            self.conv2 = nn.Conv2d(filters, filters, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(filters)
            self.stride, self.extra = stride, filters - inputs

        def forward(self, x):
            y = functional.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            if not shortcuts:
                return functional.relu(y)
            if self.stride > 1 or self.extra:
                x = functional.pad(x[:, :, ::self.stride, ::self.stride],
                                   (0, 0, 0, 0, 0, self.extra))
            return functional.relu(x + y)

    class CifarResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16),
                                      nn.ReLU())
            units, inputs = [], 16
            for stage, filters in enumerate((16, 32, 64)):
                for block in range((depth - 2) // 6):
                    units.append(Unit(inputs, filters, 2 if stage and not block else 1))
                    inputs = filters
            self.units = nn.Sequential(*units)
            self.fc = nn.Linear(64, classes)

        def forward(self, x):
            return self.fc(self.units(self.stem(x)).mean((2, 3)))

    return CifarResNet()

