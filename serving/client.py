"""Send image files to a keras_resnet model behind TF Serving; print each image's top classes.

    python serving/client.py --model=resnet20_cifar10 cat.jpg ship.png              # REST, :8501
    python serving/client.py --protocol=grpc --server=localhost:8500 --model=resnet20_cifar10 a.jpg

REST sends `{"instances": [{"b64": ...}, ...]}` to `/v1/models/<model>:predict` with the
standard library only; gRPC sends a tensorflow-serving-api `PredictRequest` (needs
`pip install tensorflow-serving-api`). Both call the `serving_default` signature, which takes
the file bytes (JPEG, PNG, BMP or GIF) and does all preprocessing on the server.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

SIGNATURE = "serving_default"
INPUT = "image_bytes"


def rest_request_body(images: list[bytes], signature_name: str = SIGNATURE) -> dict[str, Any]:
    """The JSON body of a REST predict request: one base64 instance per image file."""
    return {"signature_name": signature_name,
            "instances": [{"b64": base64.b64encode(image).decode("ascii")} for image in images]}


def rest_url(server: str, model: str, version: int | None = None) -> str:
    """`http://<server>/v1/models/<model>[/versions/<version>]:predict`."""
    versions = f"/versions/{version}" if version is not None else ""
    return f"http://{server}/v1/models/{model}{versions}:predict"


def rest_predict(url: str, body: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
    """POSTs `body`; returns the `predictions` (one dict of outputs per image)."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)["predictions"]
    except urllib.error.HTTPError as error:  # TF Serving answers {"error": "..."}
        raise RuntimeError(f"{url} answered {error.code}: {error.read().decode()}") from error
    except urllib.error.URLError as error:
        raise RuntimeError(f"cannot reach {url}: {error.reason}") from error


def grpc_predict_request(model: str, images: list[bytes], signature_name: str = SIGNATURE,
                         version: int | None = None):
    """A tensorflow-serving-api PredictRequest: `image_bytes` = string tensor [len(images)]."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = version
    request.inputs[INPUT].CopyFrom(tf.make_tensor_proto(images, dtype=tf.string,
                                                        shape=[len(images)]))
    return request


def grpc_predictions(response) -> list[dict[str, Any]]:
    """A PredictResponse's outputs as one dict per image, like REST's `predictions`."""
    import tensorflow as tf

    outputs = {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}
    batch = len(next(iter(outputs.values())))
    return [{name: _plain(value[i]) for name, value in outputs.items()} for i in range(batch)]


def grpc_predict(server: str, request, timeout: float) -> list[dict[str, Any]]:
    """Sends `request` to PredictionService/Predict at `server` (host:port)."""
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(server) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            return grpc_predictions(stub.Predict(request, timeout=timeout))
        except grpc.RpcError as error:
            raise RuntimeError(f"gRPC {server}: {error.code().name}: {error.details()}") from error


def _plain(value: Any) -> Any:
    """numpy values (bytes strings included) as JSON-like Python values."""
    value = value.tolist()
    if isinstance(value, list):
        return [v.decode() if isinstance(v, bytes) else v for v in value]
    return value.decode() if isinstance(value, bytes) else value


def format_top(name: str, prediction: dict[str, Any]) -> str:
    """`name` and its top classes, best first: rank, score, class id, synset and name if known."""
    lines = [name]
    names = prediction.get("class_names", [None] * len(prediction["classes"]))
    synsets = prediction.get("synsets", [None] * len(prediction["classes"]))
    for rank, (cls, score, synset, label) in enumerate(
            zip(prediction["classes"], prediction["scores"], synsets, names), start=1):
        described = " ".join(str(v) for v in (synset, label) if v is not None)
        lines.append(f"  {rank}. {score:.4f}  class {cls}  {described}".rstrip())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+", type=Path, help="JPEG, PNG, BMP or GIF files")
    parser.add_argument("--model", required=True, help="model name in models.config")
    parser.add_argument("--protocol", choices=("rest", "grpc"), default="rest")
    parser.add_argument("--server", help="host:port (default localhost:8501 REST, :8500 gRPC)")
    parser.add_argument("--version", type=int, help="model version (default: latest)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.images if not p.is_file()]
    if missing:
        parser.error(f"no such file: {', '.join(missing)}")
    images = [p.read_bytes() for p in args.images]
    try:
        if args.protocol == "rest":
            url = rest_url(args.server or "localhost:8501", args.model, args.version)
            predictions = rest_predict(url, rest_request_body(images), args.timeout)
        else:
            request = grpc_predict_request(args.model, images, version=args.version)
            predictions = grpc_predict(args.server or "localhost:8500", request, args.timeout)
    except RuntimeError as error:
        print(f"client: {error}", file=sys.stderr)
        return 1
    for path, prediction in zip(args.images, predictions):
        print(format_top(str(path), prediction))
    return 0


if __name__ == "__main__":
    sys.exit(main())
