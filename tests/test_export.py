"""Export to TF Serving SavedModels, checked with TensorFlow's own SavedModel loader.

Models: a ResNet-20 trained briefly on the CIFAR-10 JPEG copy (in-process helper), a ResNet-20
trained on Fashion-MNIST by the real CIFAR trainer and exported by the real export script, an
untrained ResNet-18 with the ImageNet head at 64x64, and a ResNet-20 trained under JAX.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import skimage.data
import tensorflow as tf
from google.protobuf import text_format
from PIL import Image
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

from cifar_helpers import cifar_jpegs
from keras_resnet import export, get_model
from keras_resnet.layers import SubtractMean
from keras_resnet.training import cifar_data, imagenet_input

ROOT = Path(__file__).resolve().parents[1]
FASHION_DIR = Path(cifar_data.FASHION_MNIST_DIR)
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
TOLERANCE = 1e-5


# ----------------------------------------------------------------------------------------------
# Helpers


def load_client():
    spec = importlib.util.spec_from_file_location("serving_client", ROOT / "serving" / "client.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_python(args: list[str], env: dict[str, str] | None = None,
               timeout: int = 300) -> subprocess.CompletedProcess:
    """A real `python ...` process in the repository root, with the package importable."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
                   **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=timeout, check=False)


def read_cifar_jpegs(train_per_class: int,
                     test_per_class: int) -> dict[str, tuple[list[bytes], np.ndarray]]:
    """The first JPEG files of each class and split of the CIFAR-10 JPEG copy, as file bytes."""
    files: dict[str, list[tuple[bytes, int]]] = {"train": [], "test": []}
    for split, label, _, data in cifar_jpegs(train_per_class, test_per_class):
        files[split].append((data, CIFAR10_CLASSES.index(label)))
    return {split: ([f for f, _ in items], np.array([y for _, y in items]))
            for split, items in files.items()}


def read_fashion_test(count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` Fashion-MNIST test images (uint8 28x28) and labels, from the idx files."""
    with gzip.open(FASHION_DIR / "t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(FASHION_DIR / "t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return images[:count], labels[:count].astype(int)


def decode(data: bytes, mode: str = "RGB") -> np.ndarray:
    """Pixels decoded by PIL, independently of TensorFlow's decoders."""
    return np.asarray(Image.open(io.BytesIO(data)).convert(mode))


def encode(image: np.ndarray, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=image_format, **options)
    return buffer.getvalue()


def photo(name: str) -> np.ndarray:
    return np.asarray(getattr(skimage.data, name)())[..., :3]


def write_model_dir(path: Path, model: keras.Model, metadata: dict) -> Path:
    """A model_dir as the trainers leave it: model.keras and metadata.json."""
    path.mkdir(parents=True, exist_ok=True)
    model.save(path / "model.keras")
    (path / "metadata.json").write_text(json.dumps(metadata))
    return path


def serve(loaded, images: list[bytes]) -> dict[str, np.ndarray]:
    outputs = loaded.signatures["serving_default"](image_bytes=tf.constant(images, tf.string))
    return {name: value.numpy() for name, value in outputs.items()}


def signature_listing(saved_model_dir: Path) -> dict[str, dict[str, tuple[str, str]]]:
    """`saved_model_cli show --all`, parsed: {signature: {"inputs/x": (dtype, shape), ...}}."""
    cli = Path(sys.executable).parent / "saved_model_cli"
    result = subprocess.run([str(cli), "show", "--dir", str(saved_model_dir), "--all"],
                            capture_output=True, text=True, timeout=120, check=False,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr
    listing: dict[str, dict[str, tuple[str, str]]] = {}
    signature = tensor = dtype = None
    for line in result.stdout.splitlines():
        if match := re.match(r"signature_def\['(\w+)'\]:", line):
            signature = match.group(1)
            listing[signature] = {}
        elif match := re.match(r"\s+(inputs|outputs)\['(\w+)'\] tensor_info:", line):
            tensor = f"{match.group(1)}/{match.group(2)}"
        elif match := re.match(r"\s+dtype: (\w+)", line):
            dtype = match.group(1)
        elif (match := re.match(r"\s+shape: (.+)", line)) and signature and tensor:
            listing[signature][tensor] = (dtype, match.group(1))
    return listing


# ----------------------------------------------------------------------------------------------
# Fixtures: each model is trained and exported once per module


@pytest.fixture(scope="module")
def cifar_files():
    return read_cifar_jpegs(train_per_class=256, test_per_class=30)


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("saved_models")


@pytest.fixture(scope="module")
def cifar(cifar_files, saved_models, tmp_path_factory):
    """ResNet-20 trained 40 steps on real CIFAR-10 JPEGs, as a model_dir, and its export."""
    keras.utils.set_random_seed(0)
    files, labels = cifar_files["train"]
    x = np.stack([decode(f) for f in files]).astype("float32")
    inputs = keras.Input((32, 32, 3), name="image")
    model = get_model("resnet20", input_tensor=SubtractMean(x.mean(axis=0))(inputs))
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy")
    model.fit(x, labels, batch_size=64, epochs=1, steps_per_epoch=40, verbose=0)
    metadata = {"model": "resnet20", "dataset": "cifar10", "class_names": CIFAR10_CLASSES,
                "image_size": [32, 32], "channels": 3, "eval_resize": None, "mean": "pixel",
                "backend": "tensorflow"}
    model_dir = write_model_dir(tmp_path_factory.mktemp("runs") / "resnet20_cifar10", model,
                                metadata)
    keras_model, metadata = export.load_model_dir(model_dir)
    version_dir = export.export_saved_model(keras_model, metadata,
                                            saved_models / "resnet20_cifar10")
    return SimpleNamespace(model=keras_model, metadata=metadata, version_dir=version_dir,
                           loaded=tf.saved_model.load(str(version_dir)))


@pytest.fixture(scope="module")
def resnet18(saved_models):
    """Untrained ResNet-18, ImageNet head, 64x64; its fc layer is scaled down so that the
    probabilities are not saturated (a 1e-5 comparison of one-hot vectors would prove little)."""
    keras.utils.set_random_seed(1)
    model, metadata = export.untrained_model("resnet18", image_size=64)
    features = keras.Model(model.input, model.get_layer("avg_pool").output)
    sample = np.stack([imagenet_input.center_view(encode(photo(n), "JPEG"), 64, 73).numpy()
                       for n in PHOTOS])
    logits = features.predict(sample, verbose=0) @ model.get_layer("predictions").kernel.numpy()
    kernel, bias = model.get_layer("predictions").get_weights()
    model.get_layer("predictions").set_weights([kernel / (3 * logits.std()), bias])
    version_dir = export.export_saved_model(model, metadata, saved_models / "resnet18_imagenet")
    return SimpleNamespace(model=model, metadata=metadata, version_dir=version_dir,
                           loaded=tf.saved_model.load(str(version_dir)))


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    """ResNet-20 trained on Fashion-MNIST by `training/cifar10.py`, exported by
    `training/export.py` (both real processes)."""
    work = tmp_path_factory.mktemp("fashion")
    model_dir, export_base = work / "run", work / "saved_models" / "resnet20_fashion_mnist"
    trained = run_python(["training/cifar10.py", "--model=resnet20", "--dataset=fashion_mnist",
                          "--train_steps=40", "--batch_size=64", "--max_train_examples=2560",
                          "--max_test_examples=100", "--validation_size=0", "--verbose=0",
                          f"--model_dir={model_dir}"])
    assert trained.returncode == 0, trained.stderr[-3000:]
    exported = run_python(["training/export.py", f"--model_dir={model_dir}",
                           f"--export_base={export_base}"])
    assert exported.returncode == 0, exported.stderr[-3000:]
    model, metadata = export.load_model_dir(model_dir)
    # The served net computes in float32 whatever the trainer's precision (`auto`: bfloat16 on
    # CPUs with AMX or AVX512-BF16): the Keras side of the comparisons is the same weights in
    # float32.
    return SimpleNamespace(model=export.float32_copy(model), metadata=metadata,
                           version_dir=export_base / "1",
                           stdout=exported.stdout, saved_models=export_base.parent,
                           loaded=tf.saved_model.load(str(export_base / "1")))


# ----------------------------------------------------------------------------------------------
# Signatures


@pytest.mark.parametrize("name, classes, input_shape", [
    ("cifar", 10, "(-1, 32, 32, 3)"),
    ("resnet18", 1000, "(-1, 64, 64, 3)"),
])
@pytest.mark.slow
def test_saved_model_cli_lists_signatures(
        request, name, classes, input_shape):
    listing = signature_listing(request.getfixturevalue(name).version_dir)
    expected = {
        "inputs/image_bytes": ("DT_STRING", "(-1)"),
        "outputs/probabilities": ("DT_FLOAT", f"(-1, {classes})"),
        "outputs/classes": ("DT_INT32", "(-1, 5)"),
        "outputs/scores": ("DT_FLOAT", "(-1, 5)"),
        "outputs/class_names": ("DT_STRING", "(-1, 5)"),
    }
    if name == "resnet18":
        expected["outputs/synsets"] = ("DT_STRING", "(-1, 5)")
    assert listing["serving_default"] == expected
    assert listing["predict_images"] == {
        "inputs/images": ("DT_FLOAT", input_shape),
        "outputs/probabilities": ("DT_FLOAT", f"(-1, {classes})"),
    }
    assert set(listing) - {"__saved_model_init_op"} == {"serving_default", "predict_images"}


def test_serving_jpeg_equals_keras(cifar, cifar_files):
    files = cifar_files["test"][0][::10]
    pixels = np.stack([decode(f) for f in files]).astype("float32")  # 32x32: no resizing
    expected = cifar.model.predict(pixels, verbose=0)
    outputs = serve(cifar.loaded, files)
    np.testing.assert_allclose(outputs["probabilities"], expected, rtol=0, atol=TOLERANCE)
    top = np.argsort(-expected, axis=1)[:, :5]
    np.testing.assert_array_equal(outputs["classes"], top)
    np.testing.assert_allclose(outputs["scores"], np.take_along_axis(expected, top, 1),
                               rtol=0, atol=TOLERANCE)
    assert outputs["class_names"].astype(str).tolist() == \
        [[CIFAR10_CLASSES[c] for c in row] for row in top]


def test_serving_png_equals_keras_1crop(cifar):
    images = [encode(photo(n), "PNG") for n in PHOTOS] + [encode(skimage.data.camera(), "PNG")]
    pixels = np.stack([
        export.preprocess_for_eval(tf.constant(image), (32, 32), 3, None).numpy()
        for image in images])
    np.testing.assert_array_equal(pixels[-1][..., 0], pixels[-1][..., 2])  # grey -> RGB
    expected = cifar.model.predict(pixels, verbose=0)
    np.testing.assert_allclose(serve(cifar.loaded, images)["probabilities"], expected,
                               rtol=0, atol=TOLERANCE)


def test_resnet18_serving_equals_keras(resnet18):
    images = [encode(photo(n), "JPEG", quality=90) for n in PHOTOS]
    assert resnet18.metadata["eval_resize"] == imagenet_input.eval_resize(64) == 73
    pixels = np.stack([imagenet_input.center_view(tf.constant(i), 64, 73).numpy() for i in images])
    expected = resnet18.model.predict(pixels, verbose=0)
    assert expected.max() < 0.9  # not saturated: the comparison below is informative
    outputs = serve(resnet18.loaded, images)
    np.testing.assert_allclose(outputs["probabilities"], expected, rtol=0, atol=TOLERANCE)
    table = export.imagenet_classes()
    top = outputs["classes"]
    assert outputs["synsets"].astype(str).tolist() == \
        [[table["synsets"][c] for c in row] for row in top]
    assert outputs["class_names"].astype(str).tolist() == \
        [[table["names"][c] for c in row] for row in top]
    assert table["synsets"][0] == "n01440764" and table["names"][0].startswith("tench")


@pytest.mark.parametrize("name", ["cifar", "resnet18"])
def test_predict_images_equals_keras(request, name):
    exported = request.getfixturevalue(name)
    height, width = exported.metadata["image_size"]
    images = np.random.default_rng(0).uniform(0, 255, (3, height, width, 3)).astype("float32")
    outputs = exported.loaded.signatures["predict_images"](images=tf.constant(images))
    np.testing.assert_allclose(outputs["probabilities"].numpy(),
                               exported.model.predict(images, verbose=0), rtol=0, atol=TOLERANCE)


@pytest.mark.slow
def test_fashion_model_serves_image_formats(fashion):
    assert fashion.metadata["image_size"] == [32, 32] and fashion.metadata["channels"] == 1
    assert fashion.metadata["padded_from"] == [28, 28]
    images, labels = read_fashion_test(200)
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2)))[..., None].astype("float32")  # pad_to_32
    expected = fashion.model.predict(padded, verbose=0)
    for image_format in ("PNG", "BMP", "GIF"):  # lossless: the very test pixels
        outputs = serve(fashion.loaded, [encode(i, image_format) for i in images[:20]])
        np.testing.assert_allclose(outputs["probabilities"], expected[:20], rtol=0, atol=TOLERANCE,
                                   err_msg=image_format)
    jpegs = [encode(i, "JPEG", quality=90) for i in images[:20]]
    decoded = np.pad(np.stack([decode(j, "L") for j in jpegs]), ((0, 0), (2, 2), (2, 2)))
    expected_jpeg = fashion.model.predict(decoded[..., None].astype("float32"), verbose=0)
    np.testing.assert_allclose(serve(fashion.loaded, jpegs)["probabilities"], expected_jpeg,
                               rtol=0, atol=TOLERANCE)
    outputs = serve(fashion.loaded, [encode(i, "PNG") for i in images])
    names = fashion.metadata["class_names"]
    assert names[0] == "T-shirt/top" and len(names) == 10
    top = outputs["classes"][:, 0]
    assert outputs["class_names"][:, 0].astype(str).tolist() == [names[c] for c in top]
    accuracy = np.mean(top == labels)
    assert accuracy > 0.2, f"served accuracy {accuracy:.2f} after 40 training steps (chance 0.1)"


@pytest.mark.slow
def test_unpadded_fashion_model_serves_28x28(tmp_path):
    """--nopad_to_32: metadata.json records no padding and the export feeds 28x28 as they are."""
    model_dir = tmp_path / "run"
    trained = run_python(["training/cifar10.py", "--model=resnet20", "--dataset=fashion_mnist",
                          "--nopad_to_32", "--train_steps=5", "--batch_size=64",
                          "--max_train_examples=320", "--max_test_examples=20",
                          "--validation_size=0", "--verbose=0", f"--model_dir={model_dir}"])
    assert trained.returncode == 0, trained.stderr[-3000:]
    model, metadata = export.load_model_dir(model_dir)
    assert metadata["image_size"] == [28, 28] and metadata["padded_from"] is None
    version_dir = export.export_saved_model(model, metadata, tmp_path / "saved_models" / "fashion")
    images, _ = read_fashion_test(20)
    expected = export.float32_copy(model).predict(images[..., None].astype("float32"), verbose=0)
    outputs = serve(tf.saved_model.load(str(version_dir)), [encode(i, "PNG") for i in images])
    np.testing.assert_allclose(outputs["probabilities"], expected, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("metadata, expected", [
    ({"dataset": "fashion_mnist", "image_size": [32, 32], "padded_from": [28, 28]}, (28, 28)),
    ({"dataset": "fashion_mnist", "image_size": [28, 28], "padded_from": None}, None),
    ({"dataset": "cifar10", "image_size": [32, 32], "padded_from": [24, 24]}, (24, 24)),
    # model_dirs from before padded_from was recorded
    ({"dataset": "fashion_mnist", "image_size": [32, 32]}, (28, 28)),
    ({"dataset": "fashion_mnist", "image_size": [28, 28]}, None),
    ({"dataset": "cifar10", "image_size": [32, 32]}, None),
])
def test_padding_comes_from_metadata(metadata, expected):
    assert export.padded_from_metadata(metadata) == expected


@pytest.mark.slow
def test_export_script_reports_the_version(fashion):
    assert f"Exported resnet20 to {fashion.version_dir}" in fashion.stdout
    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse((fashion.saved_models / "models.config").read_text(), config)
    assert [(c.name, c.base_path, c.model_platform) for c in config.model_config_list.config] == \
        [("resnet20_fashion_mnist", "/models/resnet20_fashion_mnist", "tensorflow")]


# ----------------------------------------------------------------------------------------------
# Clients and warm-up


def test_rest_body_gives_the_right_classes(cifar, cifar_files,
                                                                            tmp_path):
    client = load_client()
    files, labels = cifar_files["test"]
    paths = []
    for i, data in enumerate(files):
        paths.append(tmp_path / f"{i:03d}.jpg")
        paths[-1].write_bytes(data)
    body = json.loads(json.dumps(client.rest_request_body([p.read_bytes() for p in paths])))
    assert body["signature_name"] == "serving_default"
    received = [base64.b64decode(instance["b64"]) for instance in body["instances"]]
    outputs = serve(cifar.loaded, received)
    keras_top = cifar.model.predict(np.stack([decode(f) for f in files]).astype("float32"),
                                    verbose=0).argmax(axis=1)
    np.testing.assert_array_equal(outputs["classes"][:, 0], keras_top)
    assert outputs["class_names"][:, 0].astype(str).tolist() == \
        [CIFAR10_CLASSES[c] for c in keras_top]
    accuracy = np.mean(outputs["classes"][:, 0] == labels)
    assert accuracy > 0.18, f"served accuracy {accuracy:.2f} on 300 test files (chance 0.1)"


def test_grpc_request_runs_the_signature(cifar, cifar_files):
    client = load_client()
    files = cifar_files["test"][0][:4]
    request = client.grpc_predict_request("resnet20_cifar10", files)
    tensor = tf.make_ndarray(request.inputs["image_bytes"])
    assert tensor.tolist() == files
    np.testing.assert_allclose(serve(cifar.loaded, list(tensor))["probabilities"],
                               serve(cifar.loaded, files)["probabilities"], rtol=0, atol=0)


# "fashion" is the model that training/cifar10.py trains and training/export.py exports.
@pytest.mark.parametrize("name", ["cifar", pytest.param("fashion", marks=pytest.mark.slow)])
def test_warmup_file_runs_the_signature(request, name):
    exported = request.getfixturevalue(name)
    path = exported.version_dir / "assets.extra" / "tf_serving_warmup_requests"
    records = list(tf.data.TFRecordDataset(str(path)).as_numpy_iterator())
    assert len(records) == 2
    for record, magic in zip(records, (b"\xff\xd8\xff", b"\x89PNG")):
        log = prediction_log_pb2.PredictionLog.FromString(record)
        spec = log.predict_log.request.model_spec
        assert (spec.name, spec.signature_name) == (exported.version_dir.parent.name,
                                                    "serving_default")
        images = tf.make_ndarray(log.predict_log.request.inputs["image_bytes"])
        assert images.shape == (1,) and images[0].startswith(magic)
        probabilities = serve(exported.loaded, list(images))["probabilities"]
        assert probabilities.shape == (1, 10)
        np.testing.assert_allclose(probabilities.sum(), 1.0, rtol=1e-5)


# ----------------------------------------------------------------------------------------------
# Bad input


def _patched_jpeg_size(data: bytes, height: int, width: int) -> bytes:
    """A real JPEG whose frame header (SOF) claims height x width: a decompression bomb's header."""
    i = 2
    while data[i + 1] not in (0xC0, 0xC1, 0xC2):  # walk the marker segments up to the SOF
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return data[:i + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + data[i + 9:]


def _encode_pil(image: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bad_images(cifar_files) -> dict[str, tuple[bytes, str]]:
    """Inputs the signature must refuse, with the message (regex) that names the problem."""
    jpeg = cifar_files["test"][0][0]
    png = encode(photo("chelsea"), "PNG")
    corrupt_png = png[:200] + bytes(b ^ 0x5A for b in png[200:400]) + png[400:]
    gif = encode(photo("chelsea"), "GIF")
    blank = Image.new("1", (12000, 10000))  # 1 bit per pixel: small in memory and on disk
    return {
        "empty": (b"", r"image_bytes\[1\] is empty: expected a JPEG, PNG, BMP or GIF file"),
        "text": (b"this is not an image",
                 r"image_bytes\[1\] \(20 bytes\) is not a JPEG, PNG, BMP or GIF file"),
        "truncated_jpeg": (jpeg[:len(jpeg) // 2], r"Invalid JPEG data"),
        "corrupt_png": (corrupt_png, r"PNG"),
        "huge_png": (_encode_pil(blank, "PNG"),
                     (r"image_bytes\[1\] is too large: 10000x12000 \(HxW\) = 120000000 pixels, "
                      r"more than the limit of 67108864 pixels")),
        "huge_bmp": (_encode_pil(blank, "BMP"), r"image_bytes\[1\] is too large: 10000x12000"),
        "huge_jpeg": (_patched_jpeg_size(jpeg, 30000, 30000),
                      r"image_bytes\[1\] is too large: 30000x30000"),
        "huge_gif": (gif[:6] + b"\xff\xff\xff\xff" + gif[10:],
                     r"image_bytes\[1\] is too large: 65535x65535"),
    }


@pytest.mark.parametrize("case", ["empty", "text", "truncated_jpeg", "corrupt_png", "huge_png",
                                  "huge_bmp", "huge_jpeg", "huge_gif"])
def test_bad_image_is_invalid_argument(cifar, cifar_files, bad_images,
                                                                  case):
    data, message = bad_images[case]
    good = cifar_files["test"][0][1]
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        serve(cifar.loaded, [good, data])
    assert serve(cifar.loaded, [good])["probabilities"].shape == (1, 10)  # still serving


# ----------------------------------------------------------------------------------------------
# Versions and the model server config


def _digest(path: Path) -> str:
    return hashlib.sha256((path / "saved_model.pb").read_bytes()).hexdigest()


def tiny_model() -> tuple[keras.Model, dict]:
    """A small classifier: versioning does not depend on the network, only its export."""
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2, activation="softmax")])
    return model, {"model": "tiny", "dataset": None, "class_names": ["no", "yes"],
                   "image_size": [8, 8], "channels": 3, "eval_resize": None}


def test_export_never_overwrites_a_version(tmp_path):
    model, metadata = tiny_model()
    base = tmp_path / "saved_models" / "resnet20"
    first = export.export_saved_model(model, metadata, base)
    digest = _digest(first)
    second = export.export_saved_model(model, metadata, base, top_k=1)
    assert (first.name, second.name) == ("1", "2")
    assert _digest(first) == digest != _digest(second)
    (base / "9").mkdir()
    assert export.next_version(base) == 10
    staging_left = sorted(p.name for p in (tmp_path / "saved_models").iterdir())
    assert staging_left == ["resnet20"]


@pytest.mark.parametrize("stray", ["notes.txt", "latest", "01"])
def test_export_refuses_a_foreign_base(tmp_path, stray):
    base = tmp_path / "resnet20"
    (base / "1").mkdir(parents=True)
    (base / stray).mkdir() if "." not in stray else (base / stray).write_text("x")
    model, metadata = tiny_model()
    message = rf"holds \['{stray}'\], which are not version directories"
    with pytest.raises(ValueError, match=message):
        export.export_saved_model(model, metadata, base)
    assert sorted(p.name for p in base.iterdir()) == sorted(["1", stray])


@pytest.mark.slow
def test_export_script_bad_base_is_clear(tmp_path):
    (tmp_path / "resnet20" / "latest").mkdir(parents=True)
    result = run_python(["training/export.py", "--model=resnet20",
                         f"--export_base={tmp_path / 'resnet20'}"])
    assert result.returncode == 1
    assert "holds ['latest'], which are not version directories" in result.stderr


@pytest.mark.slow
def test_export_script_passes_its_limits(tmp_path):
    """--max_image_pixels reaches the signature's check; --serving_base_path, models.config."""
    base = tmp_path / "saved_models" / "resnet20"
    result = run_python(["training/export.py", "--model=resnet20", f"--export_base={base}",
                         "--max_image_pixels=1000", "--serving_base_path=/srv/models"])
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = tf.saved_model.load(str(base / "1"))
    crop = np.ascontiguousarray(photo("chelsea")[:32, :32])
    assert serve(loaded, [encode(crop[:31, :32].copy(), "PNG")])["probabilities"].shape == (1, 10)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=(r"image_bytes\[0\] is too large: 32x32 \(HxW\) = 1024 pixels, more "
                              r"than the limit of 1000 pixels")):
        serve(loaded, [encode(crop, "PNG")])
    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse((base.parent / "models.config").read_text(), config)
    assert [(c.name, c.base_path) for c in config.model_config_list.config] == [
        ("resnet20", "/srv/models/resnet20")]


def test_models_config_covers_every_model(cifar, resnet18, saved_models):
    (saved_models / ".resnet20-export-staging").mkdir()  # an export in progress
    (saved_models / "README.md").write_text("layout")
    (saved_models / "empty_model").mkdir()
    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse(export.write_models_config(saved_models).read_text(), config)
    assert [(c.name, c.base_path, c.model_platform) for c in config.model_config_list.config] == [
        ("resnet18_imagenet", "/models/resnet18_imagenet", "tensorflow"),
        ("resnet20_cifar10", "/models/resnet20_cifar10", "tensorflow")]
    text_format.Parse(export.write_models_config(saved_models, str(saved_models)).read_text(),
                      config := model_server_config_pb2.ModelServerConfig())
    for entry in config.model_config_list.config:
        assert (Path(entry.base_path) / "1" / "saved_model.pb").is_file()


# ----------------------------------------------------------------------------------------------
# JAX


JAX_TRAINING = """
import json, sys
import keras, numpy as np
from keras_resnet import get_model
from keras_resnet.layers import SubtractMean
assert keras.backend.backend() == "jax"
data = np.load(sys.argv[1])
keras.utils.set_random_seed(0)
inputs = keras.Input((32, 32, 3))
model = get_model("resnet20", input_tensor=SubtractMean(data["x"].mean(axis=0))(inputs))
model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
model.fit(data["x"], data["y"], batch_size=16, epochs=1, steps_per_epoch=1, verbose=0)
# Scale the fc layer so that the probabilities are not saturated (a comparison means something).
features = keras.Model(model.input, model.get_layer("avg_pool").output)
features = features.predict(data["test"], verbose=0)
kernel, bias = model.get_layer("predictions").get_weights()
model.get_layer("predictions").set_weights([kernel / (3 * (features @ kernel).std()), bias])
model.save(sys.argv[2] + "/model.keras")
np.save(sys.argv[2] + "/jax_probabilities.npy", model.predict(data["test"], verbose=0))
json.dump({"model": "resnet20", "dataset": "cifar10", "class_names": json.loads(sys.argv[3]),
           "image_size": [32, 32], "channels": 3, "eval_resize": None, "mean": "pixel",
           "backend": "jax"}, open(sys.argv[2] + "/metadata.json", "w"))
"""


@pytest.mark.slow
def test_jax_trained_model_exports(cifar_files, tmp_path):
    train, test = cifar_files["train"][0][::8], cifar_files["test"][0][:8]
    np.savez(tmp_path / "data.npz", x=np.stack([decode(f) for f in train]).astype("float32"),
             y=cifar_files["train"][1][::8],
             test=np.stack([decode(f) for f in test]).astype("float32"))
    model_dir = tmp_path / "jax_run"
    model_dir.mkdir()
    result = run_python(["-c", JAX_TRAINING, str(tmp_path / "data.npz"), str(model_dir),
                         json.dumps(CIFAR10_CLASSES)], env={"KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stderr[-3000:]
    version_dir = export.export_saved_model(*export.load_keras_file(model_dir / "model.keras"),
                                            tmp_path / "saved_models" / "resnet20_jax")
    jax_probabilities = np.load(model_dir / "jax_probabilities.npy")
    assert jax_probabilities.max() < 0.9
    outputs = serve(tf.saved_model.load(str(version_dir)), test)
    np.testing.assert_allclose(outputs["probabilities"], jax_probabilities, rtol=0, atol=1e-4)
