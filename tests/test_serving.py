"""serving/client.py: the REST body and gRPC PredictRequest it sends, the answers it reads, and
its command line (a real process) when the server is unreachable or a file is missing.

Running the requests through an exported model is in test_export.py (TF Serving itself cannot
run here).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import predict_pb2

ROOT = Path(__file__).resolve().parents[1]
CIFAR_JPEG_TAR = Path("/work/shared/datasets/cifar10-jpeg.tar.gz")


def load_client():
    spec = importlib.util.spec_from_file_location("serving_client", ROOT / "serving" / "client.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


client = load_client()


@pytest.fixture(scope="module")
def image_files() -> list[bytes]:
    """Three real image files: CIFAR-10 JPEGs."""
    import tarfile

    files = []
    with tarfile.open(CIFAR_JPEG_TAR) as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".jpg"):
                files.append(tar.extractfile(member).read())
            if len(files) == 3:
                return files
    raise AssertionError(f"{CIFAR_JPEG_TAR} holds fewer than 3 JPEG files")


def free_port() -> int:
    """A local port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_rest_body_is_row_format_b64(image_files):
    body = json.loads(json.dumps(client.rest_request_body(image_files)))
    assert set(body) == {"signature_name", "instances"}
    assert body["signature_name"] == "serving_default"
    assert [set(instance) for instance in body["instances"]] == [{"b64"}] * 3
    assert [base64.b64decode(i["b64"]) for i in body["instances"]] == image_files


def test_rest_url_names_model_and_version():
    assert client.rest_url("localhost:8501", "resnet20_cifar10") == \
        "http://localhost:8501/v1/models/resnet20_cifar10:predict"
    assert client.rest_url("host:9000", "resnet50_imagenet", 3) == \
        "http://host:9000/v1/models/resnet50_imagenet/versions/3:predict"


def test_grpc_request_holds_string_tensor(image_files):
    request = client.grpc_predict_request("resnet20_cifar10", image_files, version=2)
    request = predict_pb2.PredictRequest.FromString(request.SerializeToString())  # on the wire
    assert request.model_spec.name == "resnet20_cifar10"
    assert request.model_spec.signature_name == "serving_default"
    assert request.model_spec.version.value == 2
    assert list(request.inputs) == ["image_bytes"]
    proto = request.inputs["image_bytes"]
    assert proto.dtype == types_pb2.DT_STRING
    assert [d.size for d in proto.tensor_shape.dim] == [3]
    assert list(proto.string_val) == image_files
    assert not client.grpc_predict_request("m", image_files).model_spec.HasField("version")


def test_grpc_predictions_reads_responses():
    response = predict_pb2.PredictResponse()
    outputs = {
        "probabilities": np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]], np.float32),
        "classes": np.array([[1, 2], [0, 1]], np.int32),
        "scores": np.array([[0.7, 0.2], [0.6, 0.3]], np.float32),
        "class_names": np.array([[b"cat", b"dog"], [b"ship", b"cat"]], object),
    }
    for name, value in outputs.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
    predictions = client.grpc_predictions(response)
    assert [p["classes"] for p in predictions] == [[1, 2], [0, 1]]
    assert [p["class_names"] for p in predictions] == [["cat", "dog"], ["ship", "cat"]]
    np.testing.assert_allclose(predictions[0]["scores"], [0.7, 0.2])
    assert client.format_top("a.jpg", predictions[0]).splitlines() == [
        "a.jpg", "  1. 0.7000  class 1  cat", "  2. 0.2000  class 2  dog"]


def test_format_top_shows_synsets_and_names():
    prediction = {"classes": [0], "scores": [0.5], "synsets": ["n01440764"],
                  "class_names": ["tench, Tinca tinca"]}
    assert client.format_top("fish.png", prediction).splitlines()[1] == \
        "  1. 0.5000  class 0  n01440764 tench, Tinca tinca"


def run_client(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "serving" / "client.py"), *args],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def test_client_reports_unreachable_rest(image_files, tmp_path):
    image = tmp_path / "cat.jpg"
    image.write_bytes(image_files[0])
    port = free_port()
    result = run_client([f"--server=127.0.0.1:{port}", "--model=resnet20_cifar10", str(image)])
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"client: cannot reach http://127.0.0.1:{port}/v1/models/resnet20_cifar10:predict")


def test_grpc_reports_unreachable_server(image_files):
    request = client.grpc_predict_request("resnet20_cifar10", image_files)
    with pytest.raises(RuntimeError, match=r"gRPC 127\.0\.0\.1:\d+: UNAVAILABLE"):
        client.grpc_predict(f"127.0.0.1:{free_port()}", request, timeout=5)


def test_client_refuses_a_missing_image_file(tmp_path):
    result = run_client(["--model=resnet20_cifar10", str(tmp_path / "missing.jpg")])
    assert result.returncode == 2
    assert f"no such file: {tmp_path / 'missing.jpg'}" in result.stderr
