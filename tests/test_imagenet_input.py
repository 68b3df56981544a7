"""The ImageNet input pipeline (Sec. 3.4) on tiny ImageNet-format sets made from real
photographs."""

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from imagenet_helpers import class_names, jpeg, make_photo_set, photo
from keras_resnet.training import imagenet_input as ii

# ImageNet's RGB eigen-decomposition (0..1 scale) as published with AlexNet-style lighting.
EIGVAL = np.array([0.2175, 0.0188, 0.0045], np.float32)
EIGVEC = np.array([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140],
                   [-0.5836, -0.6948, 0.4203]], np.float32)


@pytest.fixture(scope="module")
def folder_set(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("folder_set"))
    make_photo_set(root, "folder")
    return root


@pytest.fixture(scope="module")
def tfrecord_set(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("tfrecord_set"))
    make_photo_set(root, "tfrecord")
    return root


@pytest.mark.parametrize("shape", [(375, 500), (1411, 1411), (200, 300)])
def test_scale_augmentation_in_256_480(shape):
    draw = tf.function(lambda seed: ii.scale_window(tf.constant(shape), 224, (256, 480), seed=seed))
    lengths, implied = [], []
    for i in range(400):
        shorter, window = draw(tf.constant([i, 7]))
        y, x, h, w = window.numpy()
        assert h == w
        assert 0 <= y and y + h <= shape[0] and 0 <= x and x + w <= shape[1]
        lengths.append(int(shorter))
        implied.append(224 * min(shape) / h)  # shorter side of the resized image the crop came from
    assert 256 <= min(lengths) <= 262 and 474 <= max(lengths) <= 480
    # The window is the 224 crop of the image resized to shorter side L, up to rounding the window's
    # side to whole pixels (half a pixel of the window is L / side / 2 of L).
    tolerance = 480**2 / (2 * 224 * min(shape)) + 1e-6
    np.testing.assert_allclose(implied, lengths, atol=tolerance)


def test_train_view_has_the_requested_size():
    for name in ("astronaut", "rocket"):
        encoded = tf.constant(jpeg(photo(name)))
        for crop in ii.CROPS:
            view = ii.train_view(encoded, 64, ii.train_scale_range(64), crop)
            assert view.shape == (64, 64, 3) and view.dtype == tf.float32
            assert 0.0 <= float(tf.reduce_min(view)) and float(tf.reduce_max(view)) <= 255.0


def test_fused_decode_crop_matches_resize_crop():
    image = photo("coffee")  # 400 x 600
    encoded = tf.constant(jpeg(image, quality=95))
    _, window = ii.scale_window(
        tf.constant(image.shape[:2]), 224, (256, 480), seed=tf.constant([3, 4])
    )
    y, x, side, _ = window.numpy()
    fused = tf.image.resize(ii.decode_window(encoded, window), [224, 224]).numpy()
    # The obvious way: decode all, resize to shorter side L, crop the corresponding 224 square.
    scale = 224 / side
    whole = tf.image.resize(ii.decode(encoded), [round(400 * scale), round(600 * scale)]).numpy()
    oy, ox = round(y * scale), round(x * scale)
    obvious = whole[oy:oy + 224, ox:ox + 224]
    elsewhere = whole[:224, -224:]
    # Differences come from the crop's sub-pixel offset in the resized image (<= 0.5 px).
    assert np.abs(fused - obvious).mean() < 6.0
    assert np.abs(fused - elsewhere).mean() > 5 * np.abs(fused - obvious).mean()


def test_center_view_is_centre_crop_at_256():
    image = photo("rocket")  # 427 x 640
    encoded = tf.constant(jpeg(image, quality=95))
    view = ii.center_view(encoded, 224, 256).numpy()
    whole = ii.resize_shorter_side(ii.decode(encoded), 256).numpy()
    assert whole.shape[:2] == (256, 384)
    centre = whole[16:240, 80:304]
    assert np.abs(view - centre).mean() < 3.0
    assert np.abs(view - whole[:224, :224]).mean() > 10.0


def test_lengths_scale_with_image_size():
    assert ii.train_scale_range(224) == (256, 480) and ii.eval_resize(224) == 256
    assert ii.train_scale_range(112) == (128, 240) and ii.eval_resize(112) == 128
    assert ii.train_scale_range(64) == (73, 137) and ii.eval_resize(64) == 73


def test_pca_lighting_shift_magnitude():
    images = tf.fill([4000, 2, 2, 3], 128.0)
    lit = ii.pca_lighting(images, EIGVAL, EIGVEC, std=0.1, seed=tf.constant([1, 2])).numpy()
    shift = lit - 128.0
    np.testing.assert_allclose(shift, np.broadcast_to(shift[:, :1, :1], shift.shape), atol=1e-4)
    coefficients = shift[:, 0, 0] @ EIGVEC  # alpha_i * lambda_i * 255 along each eigenvector
    np.testing.assert_allclose(coefficients.std(axis=0) / (255 * EIGVAL), 0.1, rtol=0.08)
    np.testing.assert_allclose(coefficients.mean(axis=0) / (255 * EIGVAL), 0.0, atol=0.01)
    # The largest component moves colours by ~0.1 * 0.2175 * 255 = 5.5 levels (rms) on 0..255.
    assert 4.5 < np.sqrt((shift[:, 0, 0] ** 2).sum(axis=1).mean()) < 6.5


def test_statistics_mean_and_luminance_axis(folder_set, tmp_path):
    info = ii.describe_data(folder_set)
    stats = ii.compute_statistics(ii.encoded_examples(info, "train", False), 32, 1000)
    assert stats.images == info.num_examples["train"]
    assert stats.mean_image.shape == (32, 32, 3) and stats.mean("channel").shape == (3,)
    np.testing.assert_allclose(stats.eigvec.T @ stats.eigvec, np.eye(3), atol=1e-5)
    assert list(stats.eigval) == sorted(stats.eigval, reverse=True) and stats.eigval[-1] >= 0
    luminance = abs(stats.eigvec[:, 0] @ np.ones(3) / np.sqrt(3))
    assert luminance > 0.9
    views = ii.center_crop_dataset(ii.encoded_examples(info, "train", False), 64, 32)
    pixels = np.concatenate([x.numpy() for x, _ in views])
    np.testing.assert_allclose(stats.mean_image, pixels.mean(axis=0), atol=1e-3)
    path = str(tmp_path / ii.STATS_FILE)
    stats.save(path)
    loaded = ii.InputStatistics.load(path)
    np.testing.assert_array_equal(loaded.mean_image, stats.mean_image)
    np.testing.assert_array_equal(loaded.eigvec, stats.eigvec)


def test_folder_and_tfrecord_labels_agree(folder_set, tfrecord_set):
    folder = ii.describe_data(folder_set)
    shards = ii.describe_data(tfrecord_set)
    assert (folder.source, shards.source) == ("folder", "tfrecord")
    assert folder.class_names == shards.class_names == tuple(class_names(6))
    assert shards.label_offset == 1  # the standard shards label 1..N
    assert folder.num_examples == shards.num_examples == {"train": 36, "validation": 12}
    assert (folder.dataset, shards.dataset) == ("folder", "imagenet")
    for info in (folder, shards):
        labels = [int(y) for _, y in ii.encoded_examples(info, "validation", False)]
        assert sorted(labels) == sorted(list(range(6)) * 2)


def test_data_info_is_cached_in_model_dir(folder_set, tmp_path):
    first = ii.describe_data(folder_set, cache_dir=str(tmp_path))
    assert (tmp_path / ii.INFO_FILE).exists()
    assert ii.describe_data(folder_set, cache_dir=str(tmp_path)) == first


def test_train_dataset_yields_raw_pixels(tfrecord_set):
    info = ii.describe_data(tfrecord_set)
    stats = ii.compute_statistics(ii.encoded_examples(info, "train", False), 64, 8)
    ds = ii.train_dataset(ii.encoded_examples(info, "train", True, seed=1), 8,
                          ii.AugmentConfig(image_size=64), stats)
    images, labels = next(iter(ds))
    assert images.shape == (8, 64, 64, 3) and images.dtype == tf.float32
    assert labels.shape == (8,) and labels.dtype == tf.int32
    assert 50 < float(tf.reduce_mean(images)) < 200  # raw pixels, mean not subtracted


def test_input_context_shards_over_hosts(folder_set, tfrecord_set):
    for root in (folder_set, tfrecord_set):
        info = ii.describe_data(root)
        parts = [sorted(e.numpy() for e, _ in ii.encoded_examples(
            info, "validation", False, tf.distribute.InputContext(2, i, 2))) for i in range(2)]
        whole = sorted(e.numpy() for e, _ in ii.encoded_examples(info, "validation", False))
        assert parts[0] and parts[1] and not set(parts[0]) & set(parts[1])
        assert sorted(parts[0] + parts[1]) == whole


def test_png_images_in_a_folder_decode(tmp_path):
    root = tmp_path / "set"
    for split in ("train", "val"):
        (root / split / "n0").mkdir(parents=True)
        tf.io.write_file(str(root / split / "n0" / "a.png"), tf.io.encode_png(photo("chelsea")))
    info = ii.describe_data(str(root))
    encoded, _ = next(iter(ii.encoded_examples(info, "train", False)))
    assert tuple(ii.image_shape(encoded).numpy()) == (300, 451)
    assert ii.train_view(encoded, 64, (73, 137)).shape == (64, 64, 3)


@pytest.mark.slow
def test_tfds_source_reads_encoded_images(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=8):
        info = ii.describe_data(str(tmp_path), source="tfds")
        assert info.num_classes == 1000 and info.class_names[0] == "n01440764"
        assert info.dataset == "imagenet"
        ds = ii.train_dataset(ii.encoded_examples(info, "train", True), 4,
                              ii.AugmentConfig(image_size=32, pca_std=0.0), None)
        images, labels = next(iter(ds))
    assert images.shape == (4, 32, 32, 3) and labels.shape == (4,)


def test_no_shards_names_path_and_pattern(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"validation-\*-of-\*") as error:
        ii.describe_data(str(tmp_path), source="tfrecord")
    assert str(tmp_path) in str(error.value)


def test_empty_data_dir_names_every_layout(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"train-\*-of-\*.*train/<class>/.*imagenet2012"
    ) as error:
        ii.describe_data(str(tmp_path))
    assert str(tmp_path) in str(error.value)


def test_no_train_folder_names_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train/<class>") as error:
        ii.describe_data(str(tmp_path), source="folder")
    assert os.path.join(str(tmp_path), "train") in str(error.value)


def test_bad_options_name_argument_and_values(folder_set):
    with pytest.raises(ValueError, match=r"source='imagenet'.*'tfrecord'"):
        ii.describe_data(folder_set, source="imagenet")
    with pytest.raises(ValueError, match=r"crop='random'.*'inception'"):
        ii.train_view(tf.constant(jpeg(photo("chelsea"))), 64, (73, 137), crop="random")
    with pytest.raises(ValueError, match=r"mean='image'.*'pixel'"):
        ii.InputStatistics(np.zeros([2, 2, 3]), EIGVAL, EIGVEC, 1).mean("image")
    with pytest.raises(ValueError, match=r"scale_range=\(100, 480\)"):
        ii.scale_window(tf.constant([300, 400]), 224, (100, 480))


def test_input_pipeline_benchmark_runs(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "input_pipeline", Path(__file__).resolve().parents[1] / "benchmarks" / "input_pipeline.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    output = tmp_path / "bench.json"
    benchmark.main(["--rounds=1", "--images=32", "--cores=1", f"--json={output}"])
    result = json.loads(output.read_text())
    assert set(result["images_per_s_per_core"]) == set(benchmark.CONTENDERS)
    assert all(rate > 0 for rate in result["images_per_s_per_core"].values())
    assert result["fused_over_naive"] > 0 and min(map(min, result["photos"].values())) >= 300
