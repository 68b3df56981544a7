"""Testing of Sec. 3.4 / 4.1: 10-crop, multi-scale, 1-crop and top-k errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_resnet
from imagenet_helpers import jpeg, photo
from keras_resnet.layers import SubtractMean
from keras_resnet.training import evaluation
from keras_resnet.training import imagenet_input as ii


def coordinate_image(height: int, width: int) -> np.ndarray:
    """Pixel (y, x) holds (y, x, 7): every crop is identified by its pixel values."""
    y, x = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return np.stack([y, x, np.full_like(y, 7)], axis=-1).astype(np.float32)


def small_model(size, classes: int = 5, mean=(100.0, 110.0, 120.0)) -> keras.Model:
    """A small convolutional net on raw pixels; its softmax depends on where the crop is."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((size, size, 3))
    x = SubtractMean(np.asarray(mean, np.float32))(inputs)
    x = keras.layers.Rescaling(1 / 64)(x)  # keeps the softmax away from saturation
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def test_ten_crops_are_corners_centre_flips():
    image = coordinate_image(10, 13)
    crops = evaluation.ten_crops(tf.constant(image), 6).numpy()
    corners = [(2, 3), (0, 0), (0, 7), (4, 0), (4, 7)]  # centre, TL, TR, BL, BR of a 10x13 image
    expected = [image[y:y + 6, x:x + 6] for y, x in corners]
    expected += [crop[:, ::-1] for crop in expected]
    assert crops.shape == (10, 6, 6, 3)
    for got, want in zip(crops, expected):
        np.testing.assert_array_equal(got, want)
    assert len({c.tobytes() for c in crops}) == 10


def test_ten_crop_averages_the_softmax():
    size = 32
    model = small_model(size)
    photos = [photo("astronaut"), photo("rocket")]
    examples = tf.data.Dataset.from_tensor_slices(([jpeg(p) for p in photos], [1, 3]))
    scores, labels = evaluation.ten_crop_scores(model, examples, size, resize=40, batch_size=2)
    assert scores.shape == (2, 5) and list(labels) == [1, 3]
    for encoded, got in zip(examples.map(lambda e, y: e), scores):
        image = ii.resize_shorter_side(ii.decode(encoded), 40).numpy()
        h, w = image.shape[:2]
        offsets = [((h - size) // 2, (w - size) // 2), (0, 0), (0, w - size), (h - size, 0),
                   (h - size, w - size)]
        crops = [image[y:y + size, x:x + size] for y, x in offsets]
        crops += [c[:, ::-1] for c in crops]
        probs = model.predict(np.stack(crops), verbose=0)
        assert np.ptp(probs, axis=0).max() > 1e-4  # the crops do score differently
        np.testing.assert_allclose(got, probs.mean(axis=0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got.sum(), 1.0, rtol=1e-5)


def test_multiscale_shares_weights_over_scales():
    size, classes = 64, 4
    mean_image = np.random.default_rng(0).uniform(80, 160, (size, size, 3)).astype(np.float32)
    inputs = keras.Input((size, size, 3))
    x = SubtractMean(mean_image)(inputs)
    model = keras_resnet.get_model("resnet18", input_tensor=x, classes=classes)
    head = model.get_layer("predictions")  # small logits: softmax scores that differ between scales
    head.kernel.assign(head.kernel * 1e-4)

    mean, body = evaluation.fully_convolutional(model)
    np.testing.assert_array_equal(mean, mean_image)
    assert body.input_shape == (None, None, None, 3)
    shared = {id(v) for v in model.weights}
    assert {id(v) for v in body.weights} <= shared and len(body.weights) == len(model.weights) - 1

    photos = [photo("chelsea"), photo("coffee")]  # 300x451 and 400x600
    examples = tf.data.Dataset.from_tensor_slices(([jpeg(p) for p in photos], [0, 2]))
    scales = evaluation.multiscale_sizes(size)
    assert scales == (64, 73, 110, 137, 183)
    scores, labels, per_scale = evaluation.multiscale_scores(model, examples, size, batch_size=2)
    assert list(labels) == [0, 2] and sorted(per_scale) == list(scales)

    # Independently: a fresh fully-convolutional ResNet-18 given the trained weights, on each
    # whole image resized to shorter side s, minus the mean image resized likewise.
    fresh = keras_resnet.get_model("resnet18", input_shape=(None, None, 3), classes=classes)
    fresh.set_weights([w for layer in model.layers if not isinstance(layer, SubtractMean)
                       for w in layer.get_weights()])
    for i, encoded in enumerate(examples.map(lambda e, y: e)):
        image = ii.decode(encoded)
        for s in scales:
            view = evaluation.scale_view(image, s, 9)
            assert min(view.shape[:2]) == s
            x = view - tf.image.resize(mean_image, view.shape[:2])
            np.testing.assert_allclose(per_scale[s][i], fresh(x[None], training=False)[0],
                                       rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(scores[i], np.mean([per_scale[s][i] for s in scales], axis=0),
                                   rtol=1e-6)
    assert not np.allclose(per_scale[scales[0]], per_scale[scales[-1]], atol=1e-4)


def test_multiscale_at_train_size_matches():
    size = 32
    model = small_model(size)
    square = photo("astronaut")  # 512 x 512: at shorter side 32 the whole image is the model input
    examples = tf.data.Dataset.from_tensor_slices(([jpeg(square)], [0]))
    _, _, per_scale = evaluation.multiscale_scores(model, examples, size, scales=[size])
    resized = ii.resize_shorter_side(ii.decode(tf.constant(jpeg(square))), size)
    np.testing.assert_allclose(per_scale[size][0], model.predict(resized[None], verbose=0)[0],
                               rtol=1e-5, atol=1e-6)


def test_center_crop_runs_on_the_1crop_view():
    size = 32
    model = small_model(size)
    encoded = jpeg(photo("coffee"))
    examples = tf.data.Dataset.from_tensor_slices(([encoded], [4]))
    scores, labels = evaluation.center_crop_scores(model, examples, size)
    view = ii.center_view(tf.constant(encoded), size, ii.eval_resize(size))
    np.testing.assert_allclose(scores[0], model.predict(view[None], verbose=0)[0], rtol=1e-5)
    assert list(labels) == [4]


def test_top_k_errors_count_labels_outside():
    scores = np.array([
        [0.9, 0.05, 0.02, 0.01, 0.01, 0.01],  # label 0: rank 0
        [0.1, 0.3, 0.2, 0.15, 0.15, 0.1],     # label 2: rank 1
        [0.3, 0.2, 0.15, 0.14, 0.11, 0.1],    # label 5: rank 5 (outside the top 5)
        [0.2, 0.1, 0.3, 0.25, 0.1, 0.05],     # label 4: rank 3
    ])
    result = evaluation.top_k_errors(scores, np.array([0, 2, 5, 4]))
    assert result == {"top1_error": 0.75, "top5_error": 0.25, "images": 4}


def test_unknown_mode_names_allowed_modes():
    model = small_model(32)
    examples = tf.data.Dataset.from_tensor_slices(([jpeg(photo("coffee"))], [0]))
    with pytest.raises(ValueError, match=r"--modes=5crop: unknown or empty \['5crop'\]; "
                                         r"allowed: 1crop, 10crop, multiscale\."):
        evaluation.evaluate(model, examples, 32, modes=["5crop"])


def test_multiscale_needs_subtract_mean():
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(
        keras.layers.GlobalAveragePooling2D()(inputs)))
    with pytest.raises(ValueError, match="SubtractMean"):
        evaluation.fully_convolutional(model)
