"""CIFAR / Fashion-MNIST input of Sec. 4.2: the three sources, the split, the mean image, the
augmentation (4-pixel pad, 32x32 crop, flip) and the resumable data order."""

import gzip
import os
import pickle
import struct

import numpy as np
import pytest

from keras_resnet.training import cifar_data
from keras_resnet.training.cifar_data import DataError


def write_cifar10(root, n_per_batch=6, seed=0):
    """A small `cifar-10-batches-py/` in the release format; returns (x_train, y_train, x_test)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    images, labels = [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = rng.integers(0, 256, (n_per_batch, 3, 32, 32), dtype=np.uint8)
        y = rng.integers(0, 10, n_per_batch).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": x.reshape(n_per_batch, -1), b"labels": y,
                         b"batch_label": name.encode()}, f)
        images.append(x.transpose(0, 2, 3, 1))
        labels.append(y)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"class{i}".encode() for i in range(10)]}, f)
    return np.concatenate(images[:5]), np.concatenate(labels[:5]), images[5]


def write_idx(path, array):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_cifar10_pickles_load_as_nhwc(tmp_path):
    x_train, y_train, x_test = write_cifar10(tmp_path)
    data = cifar_data.load("cifar10", "files", str(tmp_path))
    assert data.x_train.shape == (30, 32, 32, 3) and data.x_test.shape == (6, 32, 32, 3)
    np.testing.assert_array_equal(data.x_train, x_train)
    np.testing.assert_array_equal(data.y_train, y_train)
    np.testing.assert_array_equal(data.x_test, x_test)
    assert data.class_names[:2] == ["class0", "class1"]
    # --data_dir may also name the cifar-10-batches-py folder itself.
    assert (
        cifar_data.load("cifar10", "files", str(tmp_path / "cifar-10-batches-py")).x_train.shape[0]
        == 30
    )


def test_cifar100_pickles_use_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name, n in (("train", 8), ("test", 4)):
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         b"fine_labels": list(range(90, 90 + n)), b"coarse_labels": [0] * n}, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [f"f{i}".encode() for i in range(100)]}, f)
    data = cifar_data.load("cifar100", "files", str(tmp_path))
    assert data.y_train.tolist() == list(range(90, 98)) and len(data.class_names) == 100


def test_fashion_mnist_idx_files_load(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    for images, labels in cifar_data.FASHION_MNIST_FILES.values():
        write_idx(tmp_path / images, x)
        write_idx(tmp_path / labels, np.arange(7))
    data = cifar_data.load("fashion_mnist", "files", str(tmp_path))
    assert data.x_train.shape == (7, 28, 28, 1)
    np.testing.assert_array_equal(data.x_train[..., 0], x)
    assert data.class_names[0] == "T-shirt/top"
    assert cifar_data.pad_to(data.x_train, 32).shape == (7, 32, 32, 1)


def test_debian_fashion_mnist_is_default():
    assert os.path.exists(
        os.path.join(cifar_data.FASHION_MNIST_DIR, "t10k-labels-idx1-ubyte.gz")
    ), "Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)"
    data = cifar_data.load("fashion_mnist", "files", None, max_train=100, max_test=50)
    assert data.x_train.shape == (100, 28, 28, 1) and data.x_test.shape == (50, 28, 28, 1)
    assert set(np.unique(cifar_data.load("fashion_mnist", "files").y_test)) == set(range(10))


def test_folder_source_reads_class_folders(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(3)
    for split in ("train", "test"):
        for name in ("cat", "dog"):
            (tmp_path / split / name).mkdir(parents=True)
            for i in range(3):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(tmp_path / split / name / f"{i:04d}.png")
    data = cifar_data.load("cifar10", "folder", str(tmp_path))
    assert data.class_names == ["cat", "dog"]
    assert data.x_train.shape == (6, 32, 32, 3) and data.y_train.tolist() == [0, 0, 0, 1, 1, 1]
    saved = np.asarray(Image.open(tmp_path / "train" / "dog" / "0001.png"))
    np.testing.assert_array_equal(data.x_train[4], saved)
    assert cifar_data.load("cifar10", "folder", str(tmp_path), max_train=4).x_train.shape[0] == 4


def test_tfds_source_reads_tfds_datasets(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12):
        for name, shape, classes in (("cifar10", (32, 32, 3), 10), ("cifar100", (32, 32, 3), 100),
                                     ("fashion_mnist", (28, 28, 1), 10)):
            data = cifar_data.load(name, "tfds", str(tmp_path))
            assert data.x_train.shape == (12, *shape) and data.x_train.dtype == np.uint8
            assert data.x_test.shape == (12, *shape) and len(data.class_names) == classes


def test_unprepared_tfds_is_one_clear_error(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(DataError, match=r"'cifar10' is not in .*cannot be downloaded .*"
                                         r"tfds build cifar10"):
        cifar_data.load("cifar10", "tfds", str(tmp_path))


def test_missing_data_names_path_and_fix(tmp_path):
    with pytest.raises(DataError, match=r"cifar-10-batches-py does not exist.*cifar\.html"):
        cifar_data.load("cifar10", "files", str(tmp_path))
    with pytest.raises(
        DataError, match=r"train-images-idx3-ubyte.gz is missing.*dataset-fashion-mnist"
    ):
        cifar_data.load("fashion_mnist", "files", str(tmp_path))
    with pytest.raises(DataError, match=r"train does not exist.*cifar10-jpeg"):
        cifar_data.load("cifar10", "folder", str(tmp_path))


def test_corrupt_files_are_named(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match=r"Corrupt data file .*data_batch_3"):
        cifar_data.load("cifar10", "files", str(tmp_path))
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DataError, match=r"Corrupt data file .*train-images-idx3-ubyte.gz"):
        cifar_data.read_idx(str(tmp_path / "train-images-idx3-ubyte.gz"))
    (tmp_path / "train" / "a").mkdir(parents=True)
    (tmp_path / "test" / "a").mkdir(parents=True)
    (tmp_path / "train" / "a" / "0.jpg").write_bytes(b"\xff\xd8 truncated")
    (tmp_path / "test" / "a" / "0.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(DataError, match=r"Corrupt data file .*train/a/0.jpg"):
        cifar_data.load("cifar10", "folder", str(tmp_path))


def test_45k_5k_split_mean_of_training_part():
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, (100, 4, 4, 3), dtype=np.uint8)
    y = np.arange(100)
    x_train, y_train, x_val, y_val = cifar_data.split_validation(x, y, 10)
    assert len(x_train) == 90 and len(x_val) == 10
    assert sorted(np.concatenate([y_train, y_val]).tolist()) == list(range(100))
    mean = cifar_data.mean_image(x_train)
    assert mean.shape == (4, 4, 3) and mean.dtype == np.float32
    np.testing.assert_allclose(mean, x[y_train].astype(np.float64).mean(axis=0), rtol=1e-6)
    assert not np.allclose(mean, x.astype(np.float64).mean(axis=0))
    assert cifar_data.split_validation(x, y, 0)[2] is None


def test_validation_per_class_is_balanced():
    y = np.repeat([0, 1, 2], [30, 50, 20])  # imbalanced classes
    x = np.arange(len(y)).reshape(-1, 1, 1, 1)
    x_train, y_train, x_val, y_val = cifar_data.split_validation_per_class(x, y, 5)
    assert np.bincount(y_val).tolist() == [5, 5, 5]
    assert np.bincount(y_train).tolist() == [25, 45, 15]
    assert sorted(np.concatenate([x_train, x_val]).ravel().tolist()) == list(range(len(y)))
    np.testing.assert_array_equal(cifar_data.split_validation_per_class(x, y, 5)[2], x_val)
    assert not np.array_equal(cifar_data.split_validation_per_class(x, y, 5, seed=1)[2], x_val)
    assert cifar_data.split_validation_per_class(x, y, 0)[2] is None
    with pytest.raises(DataError, match=r"--validation_per_class=20: must be below the 20 "
                                        r"training images of class 2"):
        cifar_data.split_validation_per_class(x, y, 20)


def _check_crops(images, augmented):
    """Each output is a 32x32 window at offsets 0..8 of the 4-padded image, or its mirror."""
    padded = np.pad(images, ((0, 0), (4, 4), (4, 4), (0, 0))).astype(np.float32)
    offsets, flips = [], []
    for source, out in zip(padded, augmented):
        match = [(dy, dx, flip) for dy in range(9) for dx in range(9) for flip in (False, True)
                 if np.array_equal(source[dy:dy + 32, dx:dx + 32][:, ::-1] if flip
                                   else source[dy:dy + 32, dx:dx + 32], out)]
        assert match, "output is not a crop of the padded image"
        offsets.append(match[0][:2])
        flips.append(match[0][2])
    return offsets, flips


@pytest.mark.parametrize("backend", ["numpy", "tensorflow"])
def test_augmentation_is_pad4_crop_and_flip(backend):
    rng = np.random.default_rng(5)
    images = rng.integers(1, 256, (64, 32, 32, 3), dtype=np.uint8)  # no zeros: padding shows
    if backend == "numpy":
        out = cifar_data.augment_numpy(images, np.random.default_rng(0))
    else:
        tf = pytest.importorskip("tensorflow")
        out = cifar_data.augment_tf(tf.constant(images), tf.constant([0, 1], tf.int64)).numpy()
    assert out.shape == images.shape and out.dtype == np.float32
    offsets, flips = _check_crops(images, out)
    dys, dxs = zip(*offsets)
    assert {0, 8} <= set(dys) | set(dxs), "the extreme offsets 0 and 8 occur"
    assert 10 < sum(flips) < 54, "about half the images are flipped"
    assert len(set(offsets)) > 20, "offsets vary per image"


@pytest.mark.parametrize("backend", ["numpy", "tensorflow"])
def test_border_is_zero_after_mean_subtraction(backend):
    """With `fill` = the mean image, every border pixel of a crop (flipped or not) is the mean at
    its output position, so the model's SubtractMean makes it 0; the rest is the image's crop."""
    rng = np.random.default_rng(8)
    images = rng.integers(0, 256, (48, 32, 32, 3), dtype=np.uint8)
    mean = rng.uniform(60, 180, (32, 32, 3)).astype(np.float32) + 0.25  # never an integer
    if backend == "numpy":
        out = cifar_data.augment_numpy(images, np.random.default_rng(0), fill=mean)
    else:
        tf = pytest.importorskip("tensorflow")
        out = cifar_data.augment_tf(tf.constant(images), tf.constant([0, 1], tf.int64),
                                    fill=mean).numpy()
    inside = np.pad(np.ones((32, 32, 1), bool), ((4, 4), (4, 4), (0, 0)))
    borders = 0
    for source, crop in zip(images, out):
        padded = np.pad(source, ((4, 4), (4, 4), (0, 0))).astype(np.float32)
        candidates = []
        for dy in range(9):
            for dx in range(9):
                for flip in (False, True):
                    view = (slice(dy, dy + 32), slice(dx, dx + 32, None))
                    pixels, mask = padded[view], inside[view]
                    if flip:
                        pixels, mask = pixels[:, ::-1], mask[:, ::-1]
                    candidates.append((np.where(mask, pixels, mean), mask))
        match = [mask for expected, mask in candidates if np.array_equal(expected, crop)]
        assert match, "output is not a crop whose border is the mean image"
        borders += int((~match[0]).sum())
        assert np.all((crop - mean)[~match[0][..., 0]] == 0)
    assert borders > 0, "some crops reach into the border"


def test_border_fill_is_mean_or_black():
    mean = np.full((32, 32, 3), 120.0, np.float32)
    assert cifar_data.border_fill("cifar10", mean) is mean
    assert cifar_data.border_fill("cifar100", mean) is mean
    assert cifar_data.border_fill("fashion_mnist", mean) is None


def test_batch_order_depends_on_step_only():
    full = cifar_data.batch_indices(100, 16, seed=3, first_step=0, num_steps=25)
    for epoch in range(4):  # each epoch of the stream is a permutation
        assert sorted(full.reshape(-1)[epoch * 100:(epoch + 1) * 100].tolist()) == list(range(100))
    np.testing.assert_array_equal(cifar_data.batch_indices(100, 16, 3, 7, 11), full[7:18])
    assert not np.array_equal(cifar_data.batch_indices(100, 16, 4, 0, 25), full)


def test_tf_and_numpy_pipelines_agree():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(6)
    x = rng.integers(0, 256, (50, 32, 32, 3), dtype=np.uint8)
    y = np.arange(50, dtype=np.int32)
    full = list(cifar_data.tf_train_dataset(x, y, 8, 1, 0, 12).as_numpy_iterator())
    resumed = list(cifar_data.tf_train_dataset(x, y, 8, 1, 5, 7).as_numpy_iterator())
    assert len(full) == 12 and len(resumed) == 7
    for a, b in zip(full[5:], resumed):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    sequence = cifar_data.numpy_train_sequence(x, y, 8, 1, 5, 7)
    assert len(sequence) == 7
    images, labels = sequence[2]
    np.testing.assert_array_equal(labels, full[7][1])
    _check_crops(x[labels], images)
    del tf


def test_pipelines_skip_autotuner_keep_examples():
    """The training and evaluation pipelines turn tf.data's autotuner off (its thread held up the
    end of every fit / evaluate: docs/performance.md); evaluation still yields every example once,
    in order, the last batch partial."""
    rng = np.random.default_rng(7)
    x = rng.integers(0, 256, (23, 32, 32, 3), dtype=np.uint8)
    y = np.arange(23, dtype=np.int32)
    train = cifar_data.tf_train_dataset(x, y, 8, 1, 0, 3)
    evaluation = cifar_data.tf_eval_dataset(x.astype(np.float32), y, 10)
    for dataset in (train, evaluation):
        assert dataset.options().autotune.enabled is False
        assert dataset.options().deterministic is True
    batches = list(evaluation.as_numpy_iterator())
    assert [len(b[1]) for b in batches] == [10, 10, 3]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x.astype(np.float32))
