"""The paper's training figures from finished runs: Fig. 6 (training and test error against
iterations) and Fig. 7 (std of the 3x3 layers' responses, after BN and before ReLU)."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence

import numpy as np

from keras_resnet.training.files import read_json, read_metrics_csv


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def run_label(model_dir: str) -> str:
    """The model name from metadata.json (any tf.io.gfile path), else the folder's name."""
    metadata = read_json(os.path.join(model_dir, "metadata.json")) or {}
    return metadata.get("model") or os.path.basename(os.path.normpath(model_dir))


def plot_training_curves(model_dirs: Sequence[str], output: str,
                         labels: Sequence[str] | None = None, title: str | None = None) -> str:
    """Fig. 6 as a PNG at `output` (see `training_curves_figure`)."""
    figure = training_curves_figure(model_dirs, labels, title)
    figure.savefig(output, dpi=120)
    _pyplot().close(figure)
    return output


def training_curves_figure(model_dirs: Sequence[str], labels: Sequence[str] | None = None,
                           title: str | None = None):
    """Fig. 6: training error (dashed) and test error (bold) in % against iterations, one line
    pair per run, from each run's metrics.csv; a matplotlib Figure."""
    plt = _pyplot()
    labels = list(labels) if labels else [run_label(d) for d in model_dirs]
    if len(labels) != len(model_dirs):
        raise ValueError(f"{len(labels)} labels for {len(model_dirs)} model_dirs.")
    figure, axes = plt.subplots(figsize=(6, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (model_dir, label) in enumerate(zip(model_dirs, labels)):
        rows = read_metrics_csv(os.path.join(model_dir, "metrics.csv"))
        if not rows:
            raise ValueError(f"{os.path.join(model_dir, 'metrics.csv')}: missing or empty; is "
                             f"{model_dir} a model_dir written by the trainer?")
        color = colors[index % len(colors)]
        steps = np.array([r["step"] for r in rows]) / 1e4
        train = [100 * r["train_error"] for r in rows]
        axes.plot(steps, train, "--", color=color, linewidth=1)
        test_rows = [r for r in rows if "test_error" in r]
        axes.plot([r["step"] / 1e4 for r in test_rows], [100 * r["test_error"] for r in test_rows],
                  "-", color=color, linewidth=2.5, label=label)
    axes.set_xlabel("iter. (1e4)")
    axes.set_ylabel("error (%)")
    axes.set_title(title or "dashed: training error, bold: test error")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    return figure


def three_by_three_bn_layers(model) -> list[str]:
    """Names of the BN layers that follow a 3x3 convolution, in network order (Fig. 7)."""
    names = []
    for layer in model.layers:
        if not layer.name.endswith("_bn"):
            continue
        conv_name = layer.name[: -len("_bn")] + "_conv"
        try:
            conv = model.get_layer(conv_name)
        except ValueError:
            continue
        if tuple(getattr(conv, "kernel_size", ())) == (3, 3):
            names.append(layer.name)
    return names


def layer_responses(model, images: np.ndarray, batch_size: int = 100) -> list[tuple[str, float]]:
    """Fig. 7: for each 3x3 layer (network order), the std of its response after BN and before
    ReLU: the per-channel std over images and positions, averaged over channels."""
    import keras

    names = three_by_three_bn_layers(model)
    if not names:
        raise ValueError(f"{model.name}: no 3x3 convolution followed by a *_bn layer.")
    probe = keras.Model(model.inputs[0], [model.get_layer(n).output for n in names])
    sums = [0.0] * len(names)
    squares = [0.0] * len(names)
    counts = [0] * len(names)
    for start in range(0, len(images), batch_size):
        outputs = probe(images[start: start + batch_size].astype("float32"), training=False)
        for i, output in enumerate(outputs):
            values = keras.ops.convert_to_numpy(output).astype(np.float64)
            values = values.reshape(-1, values.shape[-1])
            sums[i] = sums[i] + values.sum(axis=0)
            squares[i] = squares[i] + (values**2).sum(axis=0)
            counts[i] += values.shape[0]
    result = []
    for name, total, total_sq, count in zip(names, sums, squares, counts):
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
        result.append((name, float(std.mean())))
    return result


def write_layer_responses(responses: dict[str, list[tuple[str, float]]], png: str, csv_path: str,
                          title: str | None = None) -> None:
    """Fig. 7 as a PNG (`layer_responses_figure`) and a CSV with the columns run, index, layer,
    std, sorted_rank."""
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["run", "index", "layer", "std", "sorted_rank"])
        for run, values in responses.items():
            order = np.argsort([-std for _, std in values], kind="stable")
            rank = {int(i): r for r, i in enumerate(order)}
            for index, (layer, std) in enumerate(values):
                writer.writerow([run, index + 1, layer, f"{std:.6g}", rank[index] + 1])
    figure = layer_responses_figure(responses, title)
    figure.savefig(png, dpi=120)
    _pyplot().close(figure)


def layer_responses_figure(responses: dict[str, list[tuple[str, float]]], title: str | None = None):
    """Fig. 7: the std of each run's 3x3 layer responses, top in network order, bottom sorted by
    magnitude; `title` (e.g. the scale of the runs) above the top panel."""
    plt = _pyplot()
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6))
    for run, values in responses.items():
        stds = [std for _, std in values]
        top.plot(range(1, len(stds) + 1), stds, label=run)
        bottom.plot(range(1, len(stds) + 1), sorted(stds, reverse=True), label=run)
    if title:
        top.set_title(title)
    top.set_xlabel("layer index (original)")
    bottom.set_xlabel("layer index (sorted by magnitude)")
    for axes in (top, bottom):
        axes.set_ylabel("std")
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    return figure
