"""Fig. 6 (training curves) and Fig. 7 (layer responses) from trainer model_dirs."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import cifar_helpers as helpers
from keras_resnet.training import figures
from keras_resnet.training.callbacks import CSV_COLUMNS


def _model_dir(path, steps_errors):
    """A model_dir as the trainer writes it: metadata.json, metrics.csv and model.keras."""
    import keras

    import keras_resnet

    path.mkdir()
    rng = np.random.default_rng(0)
    mean = rng.uniform(0, 255, (32, 32, 1)).astype("float32")
    inputs = keras.Input((32, 32, 1))
    x = keras_resnet.layers.SubtractMean(mean)(inputs)
    model = keras_resnet.get_model("resnet20", input_tensor=x, classes=10, weights=None)
    model.save(path / "model.keras")
    (path / "metadata.json").write_text(json.dumps({
        "model": "resnet20", "dataset": "fashion_mnist", "image_size": [32, 32], "channels": 1,
        "class_names": [str(i) for i in range(10)], "eval_resize": None, "mean": "pixel"}))
    with open(path / "metrics.csv", "w") as f:
        f.write(",".join(CSV_COLUMNS) + "\n")
        for epoch, (step, train, test) in enumerate(steps_errors, start=1):
            f.write(f"{epoch},{step},0.1,1.0,{train},,,1.0,{test},1\n")
    return path, model


def test_curves_dash_train_and_bold_test(tmp_path):
    import matplotlib.image

    first, _ = _model_dir(tmp_path / "a", [(391, 0.6, 0.5), (782, 0.4, 0.35), (1173, 0.3, 0.3)])
    second, _ = _model_dir(tmp_path / "b", [(391, 0.7, 0.6), (782, 0.5, 0.45)])
    output = tmp_path / "fig6.png"
    result = helpers.run(f"--model_dirs={first},{second}", "--labels=plain-20,ResNet-20",
                         f"--output={output}", script=helpers.REPO / "training" / "plot_curves.py",
                         timeout=120)
    helpers.check(result)
    image = matplotlib.image.imread(output)
    assert image.shape[0] > 300 and image.shape[1] > 400
    assert image[..., :3].std() > 0.05, "the figure is not blank"

    figure = figures.training_curves_figure([str(first)])
    lines = [(line.get_linestyle(), line.get_linewidth(), list(line.get_ydata()))
             for line in figure.axes[0].get_lines()]
    (train_style, train_width, train_y), (test_style, test_width, test_y) = lines
    assert train_style == "--" and test_style == "-" and test_width > train_width
    assert train_y == pytest.approx([60, 40, 30]) and test_y == pytest.approx([50, 35, 30])


def test_missing_metrics_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"metrics.csv: missing or empty"):
        figures.plot_training_curves([str(tmp_path)], str(tmp_path / "x.png"))


def test_layer_responses_are_std_after_bn(tmp_path):
    import keras

    model_dir, model = _model_dir(tmp_path / "run", [(1, 0.5, 0.5)])
    names = figures.three_by_three_bn_layers(model)
    assert len(names) == 19  # ResNet-20: conv1 and 2 x 3 x 3 block convs, all 3x3
    assert (
        names[0] == "conv1_bn"
        and names[1] == "conv2_block1_1_bn"
        and names[-1] == "conv4_block3_2_bn"
    )
    assert not any(name.endswith("_0_bn") for name in names), "1x1 projections are not 3x3 layers"

    images = np.random.default_rng(1).uniform(0, 255, (64, 32, 32, 1)).astype("float32")
    responses = figures.layer_responses(model, images, batch_size=25)
    assert [name for name, _ in responses] == names
    probe = keras.Model(model.inputs, model.get_layer("conv3_block2_1_bn").output)
    direct = keras.ops.convert_to_numpy(probe(images, training=False)).reshape(-1, 32)
    assert dict(responses)["conv3_block2_1_bn"] == pytest.approx(
        direct.std(axis=0).mean(), rel=1e-4
    )

    output = tmp_path / "fig7"
    result = helpers.run(f"--model_dirs={model_dir}", "--num_images=50", f"--output={output}",
                         script=helpers.REPO / "training" / "layer_responses.py", timeout=180)
    helpers.check(result)
    with open(f"{output}.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["layer"] for r in rows] == names
    stds = [float(r["std"]) for r in rows]
    ranks = [int(r["sorted_rank"]) for r in rows]
    assert sorted(ranks) == list(range(1, 20))
    assert [stds[ranks.index(k)] for k in range(1, 20)] == sorted(stds, reverse=True)
    assert (tmp_path / "fig7.png").stat().st_size > 10000


def test_layer_responses_figure_has_the_title(tmp_path):
    responses = {
        "plain-20": [("a_bn", 1.0), ("b_bn", 0.5)],
        "ResNet-20": [("a_bn", 0.4), ("b_bn", 0.6)],
    }
    figure = figures.layer_responses_figure(
        responses, "3x3 layer responses, 3 epochs of 350 images"
    )
    assert figure.axes[0].get_title() == "3x3 layer responses, 3 epochs of 350 images"
    assert figures.layer_responses_figure(responses).axes[0].get_title() == ""
    figures.write_layer_responses(responses, str(tmp_path / "fig7.png"), str(tmp_path / "fig7.csv"),
                                  title="a title")
    assert (tmp_path / "fig7.png").stat().st_size > 10000
