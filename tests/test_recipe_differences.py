"""benchmarks/recipe_differences.py: the PyTorch reference with each of its differences from our
recipe switched to ours, beside our trainer, on real CIFAR-10 JPEGs, as one record."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import cifar_helpers as helpers

SCRIPT = helpers.REPO / "benchmarks" / "recipe_differences.py"


@pytest.mark.slow
def test_variants_land_in_one_record(tmp_path):
    # .ci/run installs Debian's PyTorch: without it this is a failure, not a skip.
    assert subprocess.run(["/usr/bin/python3", "-c", "import torch"]).returncode == 0, \
        "no PyTorch for /usr/bin/python3 (apt-get install python3-torch)"
    data_dir = helpers.extract_cifar(tmp_path / "data", 35, 10)  # 35 train, 10 test per class
    record = tmp_path / "record.json"
    args = [sys.executable, str(SCRIPT), f"--data_dir={data_dir}",
            f"--runs_dir={tmp_path / 'runs'}", f"--json={record}", "--train_steps=18",
            "--batch_size=32", "--validation_per_class=5",
            "--variants=reference,glorot_classifier,ours"]
    result = subprocess.run(args, cwd=helpers.REPO, env=helpers.env(), capture_output=True,
                            text=True, timeout=900)
    helpers.check(result)
    data = json.loads(record.read_text())
    assert list(data["variants"]) == ["reference", "glorot_classifier", "ours"]
    for name, run in data["variants"].items():  # 300 images // 32 = 9 steps an epoch
        assert [int(r["step"]) for r in run["epochs"]] == [9, 18], name
        assert run["test_error"] == run["epochs"][-1]["test_error"]
    assert data["variants"]["reference"]["precision"] == "none"  # float32, as our trainer says it
    metadata = json.loads((tmp_path / "runs" / "resnet20" / "glorot_classifier" /
                           "metadata.json").read_text())
    assert metadata["recipe"]["classifier_init"] == "glorot"
    assert "| our trainer (training/cifar10.py, --mixed_precision=auto) |" in result.stdout

    again = subprocess.run(args, cwd=helpers.REPO, env=helpers.env(), capture_output=True,
                           text=True, timeout=600)  # finished runs are not trained again
    helpers.check(again)
    assert json.loads(record.read_text()) == data


@pytest.mark.slow
def test_unknown_variant_is_refused(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), f"--data_dir={tmp_path}",
                             f"--json={tmp_path / 'r.json'}", "--variants=reference,fp8"],
                            cwd=helpers.REPO, env=helpers.env(), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(
        "error: --variants: fp8 unknown; allowed: reference, decay_kernels_only")
    assert not (tmp_path / "r.json").exists()


def test_table_gives_each_variants_change_from_the_reference():
    from keras_resnet.training import report

    path = helpers.REPO / "results" / "cifar_8k" / "recipe_differences_resnet20.json"
    record = json.loads(path.read_text())  # the committed record of the real runs
    lines = report.recipe_differences_table(record)
    reference = record["variants"]["reference"]["epochs"][-1]["test_error"]
    assert len(lines) == 2 + len(record["variants"])
    for name, run in record["variants"].items():
        row = next(line for line in lines if line.startswith(f"| {run['description']} |"))
        change = row.strip("|").split("|")[-1].strip()
        expected = 100 * (run["epochs"][-1]["test_error"] - reference)
        assert change == ("" if name == "reference" else f"{expected:+.2f} points"), name
