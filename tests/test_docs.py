"""Generated pages are their generators' output from the committed records, not typed by hand."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def load_generator():
    spec = importlib.util.spec_from_file_location("model_table", REPO / "docs" / "model_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(*command: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
    return subprocess.run([sys.executable, *command], check=False, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_readme_network_table_is_up_to_date():
    generator = load_generator()
    readme = (REPO / "README.md").read_text()
    assert generator.with_table(readme, generator.table()) == readme, \
        "README table is stale: run python docs/model_table.py --write"


def test_performance_page_is_up_to_date(tmp_path):
    out = tmp_path / "performance.md"
    result = run("docs/make_performance.py", f"--out={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert out.read_text() == (REPO / "docs" / "performance.md").read_text(), \
        "docs/performance.md is stale: run python docs/make_performance.py"


def test_performance_page_fits_a_few_screens():
    page = (REPO / "docs" / "performance.md").read_text()
    assert len(page.splitlines()) <= 200
    assert page.count("### Matrix-multiply limit") == 0  # one sentence, not a table per run


def test_start_of_training_page_is_up_to_date(tmp_path):
    out = tmp_path / "start_of_training.md"
    result = run("benchmarks/torch_start_of_training.py",
                 "--page_from=results/benchmarks/start-of-training_x86-2core.json",
                 f"--markdown={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert out.read_text() == (REPO / "docs" / "start_of_training.md").read_text(), \
        "docs/start_of_training.md is stale: rerun its --page_from command"


def test_readme_speed_section_is_the_generated_one():
    result = run("docs/make_performance.py", "--readme")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout in (REPO / "README.md").read_text(), \
        "README's Speed section is stale: paste python docs/make_performance.py --readme"


def test_readme_results_come_from_the_records():
    from keras_resnet.training import report
    from keras_resnet.training.suites import SUITES

    readme = (REPO / "README.md").read_text()
    block = report.readme_results(SUITES["cifar_8k"], REPO / "results")
    assert report.with_readme_results(readme, block) == readme, \
        "README's results are stale: python training/reproduce.py --suite=cifar_8k --report_only"
    assert "| ResNet-20 |" in block


def test_results_page_is_generated_from_the_records(tmp_path):
    import json

    from keras_resnet.training import report
    from keras_resnet.training.suites import SUITES

    report.write_report([s for s in SUITES.values() if not s.hidden], REPO / "results", None,
                        tmp_path)
    page = (tmp_path / "results.md").read_text()
    assert page == (REPO / "docs" / "results.md").read_text(), \
        "docs/results.md is stale: python training/reproduce.py --suite=cifar_8k --report_only"
    for weights in (REPO / "results").glob("*/*/weights.json"):  # unstable starts are named
        grown = json.loads(weights.read_text())
        ratio = grown["conv1_norm"] / grown["he_expectation"]
        net = report.pretty(weights.parent.name)
        assert (f"{net} ({ratio:.1f}x)" in page) == (ratio > report.UNSTABLE_GROWTH), net
