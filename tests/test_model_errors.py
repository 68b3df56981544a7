"""Bad arguments get a ValueError naming the argument, the value and what is allowed."""

import pytest

import keras_resnet


@pytest.mark.parametrize(
    "call,match",
    [
        (
            lambda: keras_resnet.get_model("resnet19"),
            r"'resnet19'.*Available models: resnet18, .*resnet1202",
        ),
        (lambda: keras_resnet.ResNet20(shortcut="D"), r"shortcut='D'.*'A', 'B', 'C'"),
        (lambda: keras_resnet.Plain20(shortcut="A"), r"shortcut='A'.*plain net"),
        (lambda: keras_resnet.Plain18(preact=True), r"preact=True.*plain net"),
        (
            lambda: keras_resnet.Plain56(zero_init_residual=True),
            r"zero_init_residual=True.*plain net",
        ),
        (
            lambda: keras_resnet.ResNet50(input_shape=(16, 16, 3)),
            r"input_shape=\(16, 16, 3\).*>= 32",
        ),
        (lambda: keras_resnet.ResNet20(input_shape=(2, 32, 3)), r"input_shape=\(2, 32, 3\).*>= 4"),
        (lambda: keras_resnet.ResNet20(input_shape=(32, 32, 0)), r"channels must be >= 1"),
        (lambda: keras_resnet.ResNet20(input_shape=(32, 32)), r"\(height, width, channels\)"),
        (
            lambda: keras_resnet.ResNet18(include_top=False, pooling="mean"),
            r"pooling='mean'.*None, 'avg', 'max'",
        ),
        (lambda: keras_resnet.ResNet18(classes=0), r"classes=0.*>= 1"),
        (lambda: keras_resnet.ResNet18(bottleneck_stride="3x3"), r"bottleneck_stride='3x3'.*basic"),
        (
            lambda: keras_resnet.ResNet50(bottleneck_stride="2"),
            r"bottleneck_stride='2'.*'1x1'.*'3x3'",
        ),
        (lambda: keras_resnet.ResNet20(weight_decay=-1.0), r"weight_decay=-1.0.*>= 0"),
        (
            lambda: keras_resnet.ResNet20(preact=True, zero_init_residual=True),
            r"zero_init_residual",
        ),
        (
            lambda: keras_resnet.ResNet20(weights="imagenet"),
            r"'imagenet'.* exist for resnet50, resnet101, resnet152 .*not for resnet20",
        ),
        (
            lambda: keras_resnet.ResNet50(weights="imagenet", classes=10),
            r"classes=10 with weights='imagenet' and include_top=True.* 1000 classes",
        ),
        (lambda: keras_resnet.ResNet20(weights="/nonexistent/w.weights.h5"), r"no such file"),
        (lambda: keras_resnet.ResNet20(weights="w.h5"), r"weights='w.h5': no such file"),
        (
            lambda: keras_resnet.ResNet20(weights="w.npz"),
            r"weights='w.npz'.*'\.weights\.h5', '\.keras'",
        ),
    ],
)
def test_bad_argument_error_names_it(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_weights_of_another_net_do_not_fit(tmp_path):
    path = tmp_path / "r32.weights.h5"
    keras_resnet.ResNet32().save_weights(path)
    with pytest.raises(ValueError, match=r"r32\.weights\.h5.*does not fit model 'resnet20'"):
        keras_resnet.ResNet20(weights=str(path))
    keras_path = tmp_path / "r20_100.keras"
    keras_resnet.ResNet20(classes=100).save(keras_path)
    with pytest.raises(ValueError, match=r"does not fit.*predictions"):
        keras_resnet.ResNet20(weights=str(keras_path))
