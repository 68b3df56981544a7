"""The reproduction runner `training/reproduce.py` end to end on its tiny suite: real
trainer processes on a class-balanced subset of the CIFAR-10 JPEG copy, a real SIGKILL, and the
report (Sec. 4.2's Table 6 columns, Fig. 6, Fig. 7) written from the runs' own files."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import cifar_helpers as helpers

REPO = Path(__file__).resolve().parents[1]
RUNNER = REPO / "training" / "reproduce.py"
TINY_STEPS = 27  # 3 epochs of (10 x 35 - 50) // 32 = 9 steps
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def runner(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(RUNNER), *args], cwd=REPO, env=helpers.env(),
                          capture_output=True, text=True, timeout=timeout)


def files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file()}


def percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def metrics(model_dir: Path) -> list[dict]:
    with open(model_dir / "metrics.csv") as f:
        return [{k: float(v) for k, v in row.items() if v} for row in csv.DictReader(f)]


@pytest.fixture(autouse=True)
def _require_data():
    if not helpers.CIFAR_JPEG_TAR.exists():
        pytest.fail(f"{helpers.CIFAR_JPEG_TAR} missing (the shared/ folder beside the repo)")


def row_cells(section: str, name: str) -> list[str]:
    row = next(line for line in section.splitlines() if line.startswith(f"| {name} |"))
    return [c.strip() for c in row.strip("|").split("|")]


@pytest.mark.slow
def test_tiny_suite_resumes_and_reports(tmp_path):
    """Killed mid-run, restarted: it resumes, records each finished run (ours and the PyTorch
    reference) in results/, and writes the report from those records alone."""
    runs, docs, records = tmp_path / "runs", tmp_path / "docs", tmp_path / "results"
    readme = tmp_path / "README.md"
    readme.write_text("# title\n<!-- results:begin -->\nold\n<!-- results:end -->\nend\n")
    args = ["--suite=tiny", f"--runs_dir={runs}", f"--docs_dir={docs}", f"--results_dir={records}",
            f"--readme={readme}"]
    plain, resnet = runs / "tiny" / "plain20", runs / "tiny" / "resnet20"

    # 1. Killed (runner and trainer, SIGKILL) after the first epoch's checkpoint of the first run.
    with open(tmp_path / "killed.log", "w") as log:
        process = subprocess.Popen([sys.executable, str(RUNNER), *args, "--noreport"], cwd=REPO,
                                   env=helpers.env(), stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        deadline = time.time() + 600
        while not (plain / "checkpoints" / "ckpt-00000009.json").exists():
            assert process.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
            assert time.time() < deadline, "no checkpoint after the first epoch in time"
            time.sleep(0.1)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert not (plain / "results.json").exists(), "the run finished before the kill"
    assert not resnet.exists() and not records.exists()
    killed_at = max(int(p.stem.split("-")[1]) for p in (plain / "checkpoints").glob("*.json"))
    assert 9 <= killed_at < TINY_STEPS

    # The data: a class-balanced pool (30 training + 5 validation images per class), 10 test.
    data = next((runs / "data").glob("cifar10-jpeg_*")) / "cifar10-jpeg"
    for split, per_class in (("train", 35), ("test", 10)):
        counts = [len(list(d.glob("*.jpg"))) for d in sorted((data / split).iterdir())]
        assert counts == [per_class] * 10, (split, counts)

    # 2. Restarted with the same flags: the killed run resumes, the others train; all recorded.
    second = runner(*args, "--noreport", "--response_images=7")
    helpers.check(second)
    assert "Using prepared data" in second.stdout
    assert f"Resuming from step {killed_at}" in second.stdout
    plain_results, resnet_results = helpers.results(plain), helpers.results(resnet)
    assert plain_results["steps"] == resnet_results["steps"] == TINY_STEPS
    assert plain_results["resumed_from_step"] == killed_at
    assert resnet_results["resumed_from_step"] == 0
    for model_dir in (plain, resnet):  # lr drops at 50% and 75% of training, one per epoch here
        rows = metrics(model_dir)
        assert [int(r["step"]) for r in rows] == [9, 18, 27]
        np.testing.assert_allclose([r["lr"] for r in rows], [0.1, 0.01, 0.001])
    for run in ("plain20", "resnet20", "torch_resnet20"):
        record = records / "tiny" / run
        for name in ("results.json", "metrics.csv", "metadata.json"):
            assert (record / name).read_bytes() == (runs / "tiny" / run / name).read_bytes()
        ours = not run.startswith("torch_")
        assert (record / "responses.csv").exists() == ours
        assert (record / "weights.json").exists() == ours
    torch_results = helpers.results(records / "tiny" / "torch_resnet20")
    assert not docs.exists()

    # 3. The model_dirs are gone (another machine): the runs are skipped as recorded, and the
    # report is written from the committed records alone.
    shutil.rmtree(runs)
    third = runner(*args)
    helpers.check(third)
    for run in ("plain20", "resnet20", "torch_resnet20"):
        assert f"{run}: recorded, skipped" in third.stdout
    assert ": training (" not in third.stdout and not runs.exists()

    report = (docs / "results.md").read_text()
    section = report[report.index("## `tiny`"):]
    for name, run, results in (("plain-20", "plain20", plain_results),
                               ("ResNet-20", "resnet20", resnet_results)):
        rows = metrics(records / "tiny" / run)
        best = min(rows, key=lambda r: (r["val_error"], r["epoch"]))
        cells = row_cells(section, name)
        assert cells[1:5] == ["20", "269,722", percent(rows[-1]["train_error"]),
                              percent(results["test_error"])], cells
        assert cells[5] == (f"{int(best['epoch'])} ({percent(best['val_error'])} / "
                            f"{percent(best['test_error'])})"), cells
        assert cells[6] == str(TINY_STEPS) and cells[7] == f"{results['train_wall_s'] / 60:.1f} min"
        assert cells[9] == "float32" and cells[11] in ("8.75%", "Fig. 6 curves only")
    torch_rows = metrics(records / "tiny" / "torch_resnet20")
    assert row_cells(section, "ResNet-20")[10] == (
        f"{percent(torch_rows[-1]['train_error'])} / {percent(torch_results['test_error'])}")
    assert row_cells(section, "ResNet-20 (PyTorch)")[4] == percent(torch_results["test_error"])
    assert "300 training images" in section and "27 iterations of batch 32" in section

    for png in ("fig6_tiny_plain.png", "fig6_tiny_resnet.png", "fig7_layer_responses_tiny.png"):
        assert (docs / png).read_bytes()[:8] == PNG_SIGNATURE and f"({png})" in section
    with open(docs / "fig7_layer_responses_tiny.csv") as f:
        responses = list(csv.DictReader(f))
    means = {}
    for name in ("plain-20", "ResNet-20"):
        layers = [r for r in responses if r["run"] == name]
        assert [r["layer"] for r in layers][:3] == ["conv1_bn", "conv2_block1_1_bn",
                                                    "conv2_block1_2_bn"]
        assert len(layers) == 19  # the 3x3 layers of a 20-layer net (all but the fc layer)
        stds = [float(r["std"]) for r in layers]
        assert min(stds) > 0
        assert sorted(int(r["sorted_rank"]) for r in layers) == list(range(1, 20))
        means[name] = float(np.mean(stds))
    assert "on 7 test images" in section

    # The claims' verdicts follow from the same numbers.
    train_lower = (metrics(records / "tiny" / "resnet20")[-1]["train_error"]
                   < metrics(records / "tiny" / "plain20")[-1]["train_error"])
    assert (f"- **{'shown' if train_lower else 'not shown'}**: ResNet-20 ends with a lower "
            f"training error than plain-20: ResNet-20 "
            f"{percent(metrics(records / 'tiny' / 'resnet20')[-1]['train_error'])}" in section)
    response_lower = means["ResNet-20"] < means["plain-20"]
    assert (f"- **{'shown' if response_lower else 'not shown'}**: Fig. 7: ResNet-20's 3x3 "
            f"responses are smaller than plain-20's: ResNet-20 {means['ResNet-20']:.4f} vs. "
            f"plain-20 {means['plain-20']:.4f}" in section)
    apart = abs(resnet_results["test_error"] - torch_results["test_error"])
    assert (f"within 50.0 points of the same net trained in PyTorch: ResNet-20 "
            f"{percent(resnet_results['test_error'])} vs. ResNet-20 (PyTorch) "
            f"{percent(torch_results['test_error'])}, {100 * apart:.2f} points apart" in section)
    assert "Not run yet" in report.split("## `fmnist`")[1]
    block = readme.read_text()  # the README quotes cifar_8k, which has no records here
    assert block.startswith("# title\n<!-- results:begin -->\nCIFAR-10 test error")
    assert "| ResNet-56 | not run yet | not run yet | 6.97% |" in block
    assert block.endswith("<!-- results:end -->\nend\n")
    assert "## `cifar_small`" not in report


@pytest.mark.slow
def test_unknown_suite_lists_the_suites(tmp_path):
    result = runner("--suite=cifar_huge", f"--runs_dir={tmp_path}", timeout=120)
    assert result.returncode != 0
    message = next(line for line in result.stderr.splitlines() if "--suite=cifar_huge" in line)
    for suite in ("cifar_8k", "fmnist", "paper"):
        assert suite in message, message


@pytest.mark.slow
def test_model_outside_suite_is_refused(tmp_path):
    result = runner("--suite=tiny", "--models=resnet56", f"--runs_dir={tmp_path}", timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --models=resnet56: resnet56 not in suite 'tiny'; allowed: plain20, resnet20, "
        "torch_resnet20.")
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_missing_archive_names_flag_and_path(tmp_path):
    missing = tmp_path / "nowhere.tar.gz"
    result = runner("--suite=tiny", f"--runs_dir={tmp_path}", f"--cifar_tar={missing}", timeout=120)
    assert result.returncode == 2
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: --cifar_tar={missing}: no such file"), error


@pytest.mark.slow
def test_model_dir_with_other_flags_refused(tmp_path):
    model_dir = tmp_path / "tiny" / "plain20"
    model_dir.mkdir(parents=True)
    started = {
        "model": "plain20",
        "dataset": "cifar10",
        "seed": 0,
        "verbose": 2,
        "validation_per_class": 5,
        "train_steps": 45,
        "batch_size": 32,
        "lr": 0.1,
        "weight_decay": 0.0001,
        "mixed_precision": "none",
    }
    (model_dir / "runner.json").write_text(json.dumps(started))
    result = runner("--suite=tiny", f"--runs_dir={tmp_path}", "--noreport", timeout=300)
    assert result.returncode == 2
    error = result.stderr.strip().splitlines()[-1]
    assert (
        f"{model_dir} was started with other flags "
        "(--train_steps=45; this suite asks --train_steps=27)"
        in error
    ), error
    assert sorted(p.name for p in model_dir.iterdir()) == ["runner.json"]


@pytest.mark.slow
def test_run_flags_ask_a_balanced_split():
    code = ("import json, runpy, sys; m = runpy.run_path(sys.argv[1], run_name='reproduce'); "
            "print(json.dumps({n: m['run_flags'](s, 'resnet20') for n, s in m['SUITES'].items()}))")
    result = subprocess.run([sys.executable, "-c", code, str(RUNNER)], cwd=REPO, env=helpers.env(),
                            capture_output=True, text=True, timeout=120)
    helpers.check(result)
    flags = json.loads(result.stdout.strip().splitlines()[-1])
    assert flags["tiny"]["validation_per_class"] == 5 and "validation_size" not in flags["tiny"]
    for name, run in flags.items():
        assert "validation_size" not in run, name


def test_report_and_records_read_a_remote_runs_dir(tmp_path):
    """A suite trained into a remote RUNS_DIR (gs://...; here TensorFlow's ram:// filesystem,
    the same tf.io.gfile code path) is reported and recorded from there."""
    tf = pytest.importorskip("tensorflow")
    import importlib.util

    from keras_resnet.training import report
    from keras_resnet.training.suites import SUITES

    source = REPO / "results" / "cifar_8k" / "resnet20"  # a real run's files
    remote = "ram://reproduce/runs"
    model_dir = f"{remote}/cifar_8k/resnet20"
    tf.io.gfile.makedirs(model_dir)
    for name in ("metrics.csv", "results.json", "metadata.json"):
        tf.io.gfile.copy(str(source / name), f"{model_dir}/{name}", overwrite=True)

    empty = tmp_path / "results"
    report.write_report([SUITES["cifar_8k"]], empty, remote, tmp_path / "docs")
    test_error = json.loads((source / "results.json").read_text())["test_error"]
    section = (tmp_path / "docs" / "results.md").read_text()
    assert row_cells(section, "ResNet-20")[4] == percent(test_error)
    assert (tmp_path / "docs" / "fig6_cifar_8k_resnet.png").read_bytes()[:8] == PNG_SIGNATURE

    spec = importlib.util.spec_from_file_location("reproduce_under_test", RUNNER)
    reproduce = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reproduce)
    assert reproduce.check_model_dir(model_dir, {"model": "other"}) is False  # no runner.json
    reproduce.export_record(model_dir, empty / "cifar_8k" / "resnet20", None)
    for name in ("metrics.csv", "results.json", "metadata.json"):
        assert (empty / "cifar_8k" / "resnet20" / name).read_bytes() == (source / name).read_bytes()
