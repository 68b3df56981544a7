"""The networks of Table 1 and Sec. 4.2: structure, sizes and options."""

import keras
import numpy as np
import pytest

import keras_resnet

# torchvision's counts for the same nets (option B, bias-free convolutions, BN gamma/beta).
IMAGENET_PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}
# Table 6, in millions, to its rounding.
CIFAR_PARAMS_M = {"resnet20": 0.27, "resnet32": 0.46, "resnet44": 0.66, "resnet56": 0.85,
                  "resnet110": 1.7}
# Table 1, billions of multiply-adds at 224x224.
TABLE1_GMACS = {"resnet18": 1.8, "resnet34": 3.6, "resnet50": 3.8, "resnet101": 7.6,
                "resnet152": 11.3}


def trainable_params(model: keras.Model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_every_name_is_a_public_constructor():
    names = keras_resnet.list_models()
    expected = {f"{kind}{d}" for kind in ("resnet", "plain") for d in (18, 34, 50, 101, 152)}
    expected |= {f"resnet{d}" for d in (20, 32, 44, 56, 110, 1202)}
    expected |= {f"plain{d}" for d in (20, 32, 44, 56, 110)}
    assert set(names) == expected
    for name in names:
        constructor = next(
            fn
            for fn in map(lambda n: getattr(keras_resnet, n), keras_resnet.__all__)
            if getattr(fn, "__name__", "").lower() == name
        )
        assert constructor.__doc__ and "He et al." in constructor.__doc__
    assert keras_resnet.get_model("ResNet20").name == "resnet20"


@pytest.mark.parametrize("name", sorted(IMAGENET_PARAMS))
def test_imagenet_parameter_counts_as_published(name):
    assert trainable_params(keras_resnet.get_model(name)) == IMAGENET_PARAMS[name]


@pytest.mark.parametrize("name", sorted(CIFAR_PARAMS_M))
def test_cifar_parameter_counts_match_table6(name):
    assert (
        round(trainable_params(keras_resnet.get_model(name)) / 1e6, 2 if name != "resnet110" else 1)
        == CIFAR_PARAMS_M[name]
    )


@pytest.mark.slow
def test_resnet1202_has_19_4m_parameters():
    model = keras_resnet.ResNet1202()
    assert round(trainable_params(model) / 1e6, 1) == 19.4
    assert len([layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]) == 1201


@pytest.mark.parametrize("name", sorted(TABLE1_GMACS))
def test_multiply_adds_within_2pc_of_table1(name):
    gmacs = keras_resnet.count_flops(keras_resnet.get_model(name)) / 1e9
    assert gmacs == pytest.approx(TABLE1_GMACS[name], rel=0.02)


def test_stride_in_3x3_costs_4_1_gmacs():
    v15 = keras_resnet.count_flops(keras_resnet.ResNet50(bottleneck_stride="3x3")) / 1e9
    assert v15 == pytest.approx(4.1, rel=0.02)
    assert keras_resnet.count_flops(keras_resnet.Plain34()) / 1e9 == pytest.approx(3.6, rel=0.02)


@pytest.mark.parametrize("resnet,plain", [("resnet34", "plain34"), ("resnet20", "plain20"),
                                          ("resnet50", "plain50")])
def test_option_a_adds_no_parameter(resnet, plain):
    with_a = keras_resnet.get_model(resnet, shortcut="A")
    assert trainable_params(with_a) == trainable_params(keras_resnet.get_model(plain))
    assert not [layer for layer in with_a.layers if layer.name.endswith("_0_conv")]


@pytest.mark.parametrize("name", ["resnet18", "resnet20"])
def test_parameters_order_c_over_b_over_a(name):
    a, b, c = (trainable_params(keras_resnet.get_model(name, shortcut=s)) for s in "ABC")
    assert c > b > a


def test_stages_downsample_as_in_table1():
    model = keras_resnet.ResNet50()
    for stage, (size, channels) in zip(range(2, 6), [(56, 256), (28, 512), (14, 1024), (7, 2048)]):
        assert model.get_layer(f"conv{stage}_block1_out").output.shape[1:] == (size, size, channels)
    assert model.get_layer("conv4_block6_out")  # names users extract features by
    assert model.get_layer("pool1_pool").output.shape[1:] == (56, 56, 64)
    cifar = keras_resnet.ResNet56()
    for stage, (size, channels) in zip(range(2, 5), [(32, 16), (16, 32), (8, 64)]):
        assert cifar.get_layer(f"conv{stage}_block9_out").output.shape[1:] == (size, size, channels)
    assert not [layer for layer in cifar.layers if isinstance(layer, keras.layers.MaxPooling2D)]


def test_convolutions_are_bias_free_he_normal():
    model = keras_resnet.ResNet18()
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 17 + 3  # 17 weighted conv layers of Table 1 + 3 projections
    for layer in convs:
        assert not layer.use_bias
        bn = model.get_layer(layer.name.replace("_conv", "_bn"))
        assert isinstance(bn, keras.layers.BatchNormalization)
        assert bn.input is layer.output
    kernel = model.get_layer("conv5_block2_2_conv").kernel.numpy()  # fan_in 3*3*512
    assert kernel.std() == pytest.approx(np.sqrt(2 / (3 * 3 * 512)), rel=0.02)
    assert np.abs(kernel).max() > 2.5 * kernel.std()  # untruncated normal


def test_bottleneck_stride_in_1x1_or_3x3():
    paper = keras_resnet.ResNet50()
    assert paper.get_layer("conv3_block1_1_conv").strides == (2, 2)
    assert paper.get_layer("conv3_block1_2_conv").strides == (1, 1)
    v15 = keras_resnet.ResNet50(bottleneck_stride="3x3")
    assert v15.get_layer("conv3_block1_1_conv").strides == (1, 1)
    assert v15.get_layer("conv3_block1_2_conv").strides == (2, 2)


def test_option_a_zero_pads_and_subsamples():
    model = keras_resnet.ResNet20()
    pad = model.get_layer("conv3_block1_0_pad")
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 16)).astype("float32")
    y = keras.ops.convert_to_numpy(pad(x))
    assert y.shape == (2, 16, 16, 32)
    np.testing.assert_array_equal(y[..., :16], x[:, ::2, ::2, :])
    np.testing.assert_array_equal(y[..., 16:], 0)


def test_preact_follows_identity_mappings():
    model = keras_resnet.ResNet110(preact=True)
    assert model.name == "resnet110_preact"
    names = {layer.name for layer in model.layers}
    assert "conv2_block1_preact_bn" not in names  # shares the stem's BN-ReLU
    assert {"conv2_block2_preact_bn", "post_bn", "post_relu"} <= names
    assert isinstance(model.get_layer("conv3_block1_out"), keras.layers.Add)
    assert round(trainable_params(model) / 1e6, 1) == 1.7
    bottleneck = keras_resnet.ResNet50(preact=True, input_shape=(64, 64, 3), classes=5)
    assert bottleneck.output.shape == (None, 5)


def test_zero_init_residual_zeroes_last_gamma():
    model = keras_resnet.ResNet50(zero_init_residual=True)
    last = [layer for layer in model.layers if layer.name.endswith("_3_bn")]
    assert len(last) == 16
    assert all(not np.any(layer.gamma.numpy()) for layer in last)
    assert np.all(model.get_layer("conv2_block1_1_bn").gamma.numpy() == 1)
    assert np.all(model.get_layer("conv2_block1_0_bn").gamma.numpy() == 1)


def test_weight_decay_is_l2_on_every_kernel():
    model = keras_resnet.ResNet20(weight_decay=1e-4)
    kernels = [
        layer.kernel
        for layer in model.layers
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
    ]
    assert len(model.losses) == len(kernels) == 20
    expected = sum(0.5e-4 * float(np.sum(k.numpy() ** 2)) for k in kernels)
    assert float(sum(keras.ops.convert_to_numpy(loss) for loss in model.losses)) == pytest.approx(
        expected, rel=1e-4
    )
    assert not keras_resnet.ResNet20().losses


@pytest.mark.parametrize("pooling,shape", [(None, (None, 7, 7, 512)), ("avg", (None, 512)),
                                           ("max", (None, 512))])
def test_include_top_false_with_each_pooling(pooling, shape):
    model = keras_resnet.ResNet18(include_top=False, pooling=pooling)
    assert model.output.shape == shape


def test_input_tensor_becomes_the_model_input():
    tensor = keras.Input(shape=(64, 64, 3), name="images")
    model = keras_resnet.ResNet18(input_tensor=tensor, classes=7)
    assert model.inputs[0] is tensor
    assert model.output.shape == (None, 7)


def test_non_default_input_sizes():
    r50 = keras_resnet.ResNet50(input_shape=(160, 160, 3))
    assert r50.get_layer("conv5_block3_out").output.shape[1:] == (5, 5, 2048)
    fmnist = keras_resnet.ResNet20(input_shape=(28, 28, 1))
    out = fmnist.predict(np.zeros((3, 28, 28, 1), "float32"), verbose=0)
    assert out.shape == (3, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-5)
    fully_conv = keras_resnet.ResNet18(input_shape=(None, None, 3), classes=4)
    for size in (64, 96):
        assert fully_conv.predict(np.zeros((1, size, size, 3)), verbose=0).shape == (1, 4)


def test_count_flops_needs_a_fixed_input_size():
    with pytest.raises(ValueError, match="fixed input_shape"):
        keras_resnet.count_flops(keras_resnet.ResNet18(input_shape=(None, None, 3)))


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_count_flops_in_either_data_format(data_format):
    """A 3x3 conv of 8 -> 16 channels with stride 2 on 20x12 (-> 10x6) and a Dense 16 -> 5: the
    count is the same for NHWC and NCHW layouts (the spatial axes are found by data_format)."""
    shape = (20, 12, 8) if data_format == "channels_last" else (8, 20, 12)
    inputs = keras.Input(shape)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", data_format=data_format)(inputs)
    x = keras.layers.GlobalAveragePooling2D(data_format=data_format)(x)
    model = keras.Model(inputs, keras.layers.Dense(5)(x))
    assert keras_resnet.count_flops(model) == 10 * 6 * 3 * 3 * 8 * 16 + 16 * 5


def test_builder_refuses_channels_first():
    keras.config.set_image_data_format("channels_first")
    try:
        with pytest.raises(
            ValueError, match="image_data_format is 'channels_first'.*channels_last"
        ):
            keras_resnet.ResNet20()
    finally:
        keras.config.set_image_data_format("channels_last")


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_count_flops_counts_1d_and_3d_convolutions(data_format):
    """Conv1D 4 -> 6 channels, kernel 3, on 10 steps; Conv3D 6 -> 2, kernel 2, stride 2 on
    4x4x4 (-> 2x2x2): every output position times the kernel's size."""
    sequence = (10, 4) if data_format == "channels_last" else (4, 10)
    inputs = keras.Input(sequence)
    x = keras.layers.Conv1D(6, 3, padding="same", data_format=data_format)(inputs)
    model_1d = keras.Model(inputs, x)
    assert keras_resnet.count_flops(model_1d) == 10 * 3 * 4 * 6
    volume = (4, 4, 4, 6) if data_format == "channels_last" else (6, 4, 4, 4)
    inputs = keras.Input(volume)
    model_3d = keras.Model(
        inputs, keras.layers.Conv3D(2, 2, strides=2, data_format=data_format)(inputs)
    )
    assert keras_resnet.count_flops(model_3d) == 2 * 2 * 2 * (2 * 2 * 2 * 6) * 2


@pytest.mark.parametrize(
    "layer",
    [
        keras.layers.DepthwiseConv2D(3),
        keras.layers.SeparableConv2D(4, 3),
        keras.layers.Conv2DTranspose(4, 3),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_count_flops_refuses_unknown_convs(layer):
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, layer(inputs))
    with pytest.raises(
        ValueError, match=f"is a {type(layer).__name__}; it counts Conv1D/2D/3D and Dense"
    ):
        keras_resnet.count_flops(model)
