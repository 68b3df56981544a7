"""docs/results.md: the reproduction suites' tables, Fig. 6, Fig. 7 and the paper's claims, as
measured, written from the runs' records (results/SUITE/RUN: results.json, metrics.csv,
metadata.json, responses.csv, weights.json) and, for runs still training, their model_dirs."""

from __future__ import annotations

import csv
import io
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_resnet.training import files
from keras_resnet.training.files import read_metrics_csv
from keras_resnet.training.suites import (
    PAPER_SCHEDULE,
    PAPER_TEST_ERROR,
    TORCH_PREFIX,
    Claim,
    Suite,
    pretty,
)

RECORD_FILES = ("results.json", "metrics.csv", "metadata.json")
RESPONSES_FILE = "responses.csv"  # Fig. 7: layer, std (3x3 layers in network order)
WEIGHTS_FILE = "weights.json"  # conv1 kernel norm and largest BN gamma at the end of training
UNSTABLE_GROWTH = 3.0  # conv1 kernel norm / He-init expectation above which a start was unstable


def percent(value: float | None) -> str:
    """An error rate as a percentage with two decimals, as in Table 6."""
    return "n/a" if value is None else f"{100 * value:.2f}%"


def machine(results: dict) -> str:
    """GPUs if any, else the CPU model and cores, and the framework, from results.json."""
    hardware = results.get("hardware", {})
    gpus = [d for d in hardware.get("devices", []) if "CPU" not in d.upper()]
    cpu = hardware.get("cpu_model") or f"{hardware.get('processor', '')} CPU"
    where = ", ".join(gpus) if gpus else f"{hardware.get('cpu_count', '?')}-core {cpu}"
    load = hardware.get("load_average_at_end")
    load_text = f", 15-min load {load[2]:.1f} at the end" if load else ""
    return f"{where} ({hardware.get('backend', '?')}{load_text})"


@dataclass
class RunRecord:
    """What the report uses of one run: its record folder, or a model_dir still training."""

    model: str
    directory: str  # a tf.io.gfile path: a local folder, gs://..., ram://...
    rows: list[dict]
    results: dict | None

    @property
    def final_train_error(self) -> float | None:
        return self.rows[-1].get("train_error") if self.rows else None

    @property
    def best_validation_row(self) -> dict | None:
        rows = [r for r in self.rows if "val_error" in r]
        return min(rows, key=lambda r: (r["val_error"], r["epoch"])) if rows else None

    @property
    def metadata(self) -> dict:
        return files.read_json(os.path.join(self.directory, "metadata.json")) or {}

    @property
    def responses(self) -> list[tuple[str, float]]:
        return [(row["layer"], float(row["std"])) for row in read_responses(self.directory)]

    @property
    def precision(self) -> str:
        """float32, bfloat16 (mixed) or float16 (mixed), as the run recorded it."""
        if not self.results:
            return ""
        mode = self.results.get("mixed_precision") or self.results.get("precision", "")
        return "float32" if mode == "none" else mode


def read_responses(directory: str) -> list[dict]:
    """The rows of a run's responses.csv (layer, std, images); none if it has none."""
    path = os.path.join(directory, RESPONSES_FILE)
    if not files.path_exists(path):
        return []
    return list(csv.DictReader(io.StringIO(files.read_text(path))))


def write_responses(path: Path, responses: list[tuple[str, float]], images: int) -> None:
    """responses.csv of one run (Fig. 7 on `images` test images)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["layer", "std", "images"])
        writer.writerows([layer, f"{std:.6g}", images] for layer, std in responses)


def response_images(records: list[RunRecord]) -> int:
    """The number of test images of the records' Fig. 7 responses."""
    for record in records:
        rows = read_responses(record.directory)
        if rows:
            return int(rows[0]["images"])
    return 0


def load_runs(suite: Suite, results_dir: Path, runs_dir: str | None) -> list[RunRecord]:
    """The suite's runs in suite order: each run's record if it has one, else its model_dir
    under `runs_dir` (a tf.io.gfile path) if it has at least one epoch (a run still training)."""
    records = []
    for model in suite.runs:
        candidates = [str(results_dir / suite.name / model)]
        if runs_dir is not None:
            candidates.append(os.path.join(runs_dir, suite.name, model))
        for directory in candidates:
            rows = read_metrics_csv(os.path.join(directory, "metrics.csv"))
            if rows:
                records.append(RunRecord(model, directory, rows,
                                         files.read_json(os.path.join(directory, "results.json"))))
                break
    return records


def scale_text(suite: Suite, records: list[RunRecord]) -> str:
    """The scale of a suite's runs, from their metadata and results (what ran, not the table)."""
    metadata = records[0].metadata
    steps = sorted({r.results["steps"] for r in records if r.results})
    steps_text = "/".join(f"{s:,}" for s in steps) if steps else "unfinished"
    balanced = " (class-balanced pool)" if suite.data.train_per_class is not None else ""
    return (f"{suite.data.label}: {metadata.get('train_examples', 0):,} training images{balanced}, "
            f"{metadata.get('validation_examples', 0):,} validation, "
            f"{metadata.get('test_examples', 0):,} test; {steps_text} iterations of batch "
            f"{suite.batch_size}, lr 0.1 divided by 10 at 50% and 75% of training, weight decay "
            f"1e-4, momentum 0.9")


def short_scale(suite: Suite, records: list[RunRecord]) -> str:
    """The scale in a figure title."""
    steps = max((r.results["steps"] for r in records if r.results), default=0)
    return (f"{suite.data.label.split(' (')[0]}, "
            f"{records[0].metadata.get('train_examples', 0):,} train images, {steps:,} iter.")


def trainable_parameters(record: RunRecord) -> int:
    """Trainable parameters of the run's net, built for its input shape and classes."""
    import keras_resnet

    metadata = record.metadata
    shape = (*metadata.get("image_size", (32, 32)), metadata.get("channels", 3))
    model = record.model.removeprefix(TORCH_PREFIX)
    net = keras_resnet.get_model(model, weights=None, input_shape=shape,
                                 classes=len(metadata.get("class_names", range(10))))
    return int(sum(np.prod(w.shape) for w in net.trainable_weights))


def measured(claim: Claim, values: dict[str, dict[str, float]]) -> tuple[str, str]:
    """(verdict, the numbers) of a claim; verdict 'shown', 'not shown' or 'not measured'."""
    metric = values.get(claim.metric, {})
    lower = metric.get(claim.lower)
    if isinstance(claim.upper, str):
        upper = metric.get(claim.upper)
        if lower is None or upper is None:
            return "not measured", "runs missing"
        fmt = (lambda v: f"{v:.4f}") if claim.metric == "response_std" else percent
        numbers = f"{pretty(claim.lower)} {fmt(lower)} vs. {pretty(claim.upper)} {fmt(upper)}"
        if claim.tolerance is not None:
            apart = abs(lower - upper)
            return ("shown" if apart <= claim.tolerance else "not shown",
                    f"{numbers}, {100 * apart:.2f} points apart")
        return "shown" if lower < upper else "not shown", numbers
    if lower is None:
        return "not measured", "run missing"
    return ("shown" if lower <= claim.upper else "not shown",
            f"{pretty(claim.lower)} {claim.metric.replace('_', ' ')} {percent(lower)} "
            f"(at most {percent(claim.upper)})")


def claim_values(finished: list[RunRecord]) -> dict[str, dict[str, float]]:
    """The finished runs' final training and test errors and mean Fig. 7 response std."""
    return {"train_error": {r.model: r.final_train_error for r in finished},
            "test_error": {r.model: r.results["test_error"] for r in finished},
            "response_std": {r.model: float(np.mean([s for _, s in r.responses]))
                             for r in finished if r.responses}}


def readme_results(suite: Suite, results_dir: Path) -> str:
    """README.md's results block: the suite's test errors beside the PyTorch reference's and
    the paper's, and how many of its claims showed, from the committed records alone."""
    records = load_runs(suite, results_dir, None)
    finished = {r.model: r for r in records if r.results}
    steps = max((r.results["steps"] for r in finished.values()), default=0)
    title = (f"CIFAR-10 test error (JPEG q75 copy, 45k/5k split, {steps:,} iterations, 1/8 of "
             f"the paper's schedule; suite `{suite.name}`, [docs/results.md](docs/results.md)):")
    lines = [*textwrap.wrap(title, 100, break_long_words=False, break_on_hyphens=False), "",
             "| net | ours | PyTorch, same recipe | paper, Table 6 (64k iterations) |",
             "|---|---:|---:|---:|"]
    def test_error(run: str) -> str:
        return percent(finished[run].results["test_error"]) if run in finished else "not run yet"

    for model in suite.models:
        torch = test_error(TORCH_PREFIX + model) if model in suite.references else "n/a"
        paper = f"{PAPER_TEST_ERROR[model]:.2f}%" if model in PAPER_TEST_ERROR else "Fig. 6 only"
        lines.append(f"| {pretty(model)} | {test_error(model)} | {torch} | {paper} |")
    verdicts = [measured(claim, claim_values(list(finished.values())))[0]
                for claim in suite.claims]
    waiting = verdicts.count("not measured")
    waiting_text = f", {waiting} not measured yet (runs still to train)" if waiting else ""
    lines += ["", *textwrap.wrap(
        f"The paper's claims at this scale: {verdicts.count('shown')} shown, "
        f"{verdicts.count('not shown')} not shown{waiting_text}, of {len(verdicts)}; each with "
        "its numbers in docs/results.md.", 100)]
    return "\n".join(lines) + "\n"


def with_readme_results(readme: str, block: str) -> str:
    """`readme` with the text between its results markers replaced by `block`."""
    begin, end = "<!-- results:begin -->\n", "<!-- results:end -->"
    if begin not in readme or end not in readme:
        raise ValueError(f"README.md has no {begin.strip()} ... {end} markers")
    head, rest = readme.split(begin, 1)
    return head + begin + block + end + rest.split(end, 1)[1]


def recipe_differences_table(record: dict) -> list[str]:
    """benchmarks/recipe_differences.py's record as a table: training / test error after each
    epoch, per variant."""
    epochs = max((len(v["epochs"]) for v in record["variants"].values()), default=0)
    reference = record["variants"].get("reference")
    reference_test = reference["epochs"][-1]["test_error"] if reference else None
    lines = ["| variant | " + " | ".join(f"epoch {e + 1}: training / test error"
                                         for e in range(epochs))
             + " | last test error minus the reference's |",
             "|---|" + "---|" * epochs + "---:|"]
    for name, run in record["variants"].items():
        cells = [f"{percent(r['train_error'])} / {percent(r['test_error'])}"
                 for r in run["epochs"]]
        cells += [""] * (epochs - len(cells))
        change = ("" if reference_test is None or name == "reference" or len(run["epochs"]) < epochs
                  else f"{100 * (run['epochs'][-1]['test_error'] - reference_test):+.2f} points")
        lines.append(f"| {run['description']} | " + " | ".join(cells) + f" | {change} |")
    return lines


def recipe_differences_section(results_dir: Path, suite: Suite) -> list[str]:
    """The suite's recipe-differences records (results/SUITE/recipe_differences_MODEL.json)."""
    lines = []
    for path in sorted((results_dir / suite.name).glob("recipe_differences_*.json")):
        record = files.read_json(str(path))
        if not record or not record.get("variants"):
            continue
        lines += [f"Remaining differences from the PyTorch reference, each switched to ours "
                  f"alone ({pretty(record['model'])}, short runs of {record['train_steps']:,} "
                  f"iterations with the lr divided by 10 at 50% and 75%, one seed; "
                  f"`benchmarks/recipe_differences.py`, [record](../results/{suite.name}/"
                  f"{path.name})):", "", *recipe_differences_table(record), ""]
    return lines


def run_table(suite: Suite, records: list[RunRecord]) -> list[str]:
    """The suite's table: one row per run, the reference's errors beside ours."""
    import keras_resnet

    by_model = {r.model: r for r in records}
    lines = ["| net | layers | parameters | final training error | test error | best val. epoch "
             "(val. / test error) | steps | wall time | machine | precision | PyTorch, same "
             "recipe (training / test error) | paper, Table 6 (full schedule) |",
             "|---|---:|---:|---:|---:|---|---:|---:|---|---|---|---:|"]
    for record in records:
        model = record.model.removeprefix(TORCH_PREFIX)
        best = record.best_validation_row
        best_text = "n/a (no validation split)" if best is None else (
            f"{int(best['epoch'])} ({percent(best['val_error'])} / "
            f"{percent(best.get('test_error'))})")
        paper = PAPER_TEST_ERROR.get(model) if suite.data.dataset == "cifar10" else None
        paper_text = (f"{paper:.2f}%" if paper is not None else "Fig. 6 curves only"
                      if suite.data.dataset == "cifar10" else "n/a (not in the paper)")
        if record.results is None:
            done = (f"unfinished: step {int(record.rows[-1]['step']):,}", "", "")
            test = percent(record.rows[-1].get("test_error"))
        else:
            done = (f"{record.results['steps']:,}",
                    f"{record.results['train_wall_s'] / 60:.1f} min", machine(record.results))
            test = percent(record.results["test_error"])
        reference = by_model.get(TORCH_PREFIX + record.model)
        reference_text = ("" if record.model.startswith(TORCH_PREFIX) else "not run yet"
                          if TORCH_PREFIX + record.model in suite.runs else "n/a")
        if reference is not None and reference.results:
            reference_text = (f"{percent(reference.final_train_error)} / "
                              f"{percent(reference.results['test_error'])}")
        elif reference is not None:
            reference_text = f"unfinished: step {int(reference.rows[-1]['step']):,}"
        lines.append(f"| {pretty(record.model)} | {keras_resnet.get_spec(model).depth} | "
                     f"{trainable_parameters(record):,} | {percent(record.final_train_error)} | "
                     f"{test} | {best_text} | {done[0]} | {done[1]} | {done[2]} | "
                     f"{record.precision} | {reference_text} | {paper_text} |")
    return lines


def weight_rows(records: list[RunRecord]) -> tuple[list[str], dict[str, float]]:
    """Markdown rows of the weights at the end of training, and the conv1 growth ratio per run."""
    rows, ratios = [], {}
    for record in records:
        weights = files.read_json(os.path.join(record.directory, WEIGHTS_FILE))
        if not weights:
            continue
        ratio = weights["conv1_norm"] / weights["he_expectation"]
        ratios[pretty(record.model)] = ratio
        rows.append(f"| {pretty(record.model)} | {weights['conv1_norm']:.1f} | "
                    f"{weights['he_expectation']:.1f} | {ratio:.1f}x | "
                    f"{weights['largest_bn_gamma']:.2f} |")
    return rows, ratios


def suite_section(suite: Suite, records: list[RunRecord], docs_dir: Path,
                  results_dir: Path) -> list[str]:
    """The markdown of one suite, writing its figures into `docs_dir`."""
    from keras_resnet.training import figures

    command = f"python training/reproduce.py --suite={suite.name}"
    if suite.name == "paper":
        command = f"KERAS_BACKEND=jax {command}"
    lines = [f"## `{suite.name}`: {suite.title}", ""]
    if not records:
        return lines + [f"Not run yet ({suite.budget}): `{command}`.", ""]
    lines += [f"Scale: {scale_text(suite, records)}. The paper: {PAPER_SCHEDULE}.", "",
              f"Command: `{command}` ({suite.budget}).", ""]
    lines += run_table(suite, records)
    lines += ["", "Final training error: the running mean over the last epoch (augmented images, "
              "training-mode BN), as in Fig. 6. Test error: the final model. The best validation "
              "epoch is chosen on the validation split only; nothing is tuned on the test set. "
              "Wall time: training with the per-epoch evaluations, without start-up.", ""]

    label = short_scale(suite, records)
    panels = []
    for kind, heading in (("plain", "plain nets"), ("resnet", "ResNets")):
        group = [r for r in records if r.model.startswith(kind)]
        if group:
            png = docs_dir / f"fig6_{suite.name}_{kind}.png"
            figures.plot_training_curves([r.directory for r in group], str(png),
                                         [pretty(r.model) for r in group],
                                         f"{heading}, {label}")
            panels.append(f"![Fig. 6, {heading}]({png.name})")
    lines += ["Fig. 6 at this scale (dashed: training error, bold: test error; plain nets left, "
              "ResNets right):", "", "| " + " | ".join(panels) + " |",
              "|" + "---|" * len(panels), ""]

    finished = [r for r in records if r.results]
    values = claim_values(finished)
    responses = {pretty(r.model): r.responses for r in finished if r.responses}
    if suite.fig7 and responses:
        figures.write_layer_responses(responses, str(docs_dir / f"{suite.fig7}.png"),
                                      str(docs_dir / f"{suite.fig7}.csv"),
                                      f"3x3 layer responses, {label}")
        lines += [f"Fig. 7 at this scale: std of each 3x3 layer's response (after BN, before "
                  f"the addition and ReLU) on {response_images(finished):,} test images, top in "
                  f"layer order, bottom sorted by magnitude ([CSV]({suite.fig7}.csv)):", "",
                  f"![Fig. 7]({suite.fig7}.png)", ""]
    growth, ratios = weight_rows(finished)
    if growth:
        lines += ["Weights at the end of training (a diagnostic of stable starts; BN makes each "
                  "layer blind to its kernel's scale, so a kernel that grew k-fold learns at 1/k^2 "
                  "of the learning rate):", "",
                  "| net | conv1 kernel L2 norm | He-init expectation | ratio | largest BN gamma |",
                  "|---|---:|---:|---:|---:|", *growth, ""]
        grown = [f"{net} ({ratio:.1f}x)" for net, ratio in ratios.items()
                 if ratio > UNSTABLE_GROWTH]
        if grown:
            lines += [f"The conv1 kernels of {', '.join(grown)} ended more than "
                      f"{UNSTABLE_GROWTH:g}x their He-init norm: they grew in the first "
                      "iterations at lr 0.1 and trained slowly from then on, which the errors "
                      "above include (the paper warms ResNet-110 up at lr 0.01 because 0.1 is "
                      "too large for it to start converging, Sec. 4.2). Whether such a start "
                      "is the recipe's or this implementation's: [the first iterations beside "
                      "PyTorch, same weights and batches](start_of_training.md).", ""]
    lines += recipe_differences_section(results_dir, suite)
    lines += ["Claims, as measured:", ""]
    verdicts = [measured(claim, values) for claim in suite.claims]
    lines += [f"- **{verdict}**: {claim.text}: {numbers}."
              for claim, (verdict, numbers) in zip(suite.claims, verdicts)]
    if any(verdict == "not shown" for verdict, _ in verdicts):
        lines += ["", "A claim marked *not shown* did not appear at this scale, which trains for "
                  "a fraction of the paper's 64k iterations; the `paper` suite's full schedule is "
                  "the scale at which the paper shows it."]
    if any(verdict == "not measured" for verdict, _ in verdicts):
        lines += ["", "A claim marked *not measured* waits for runs that have not finished: "
                  f"`{command}` trains them (it resumes what is in its model_dirs and skips the "
                  "runs recorded in results/)."]
    return lines + [""]


def write_report(suites: list[Suite], results_dir: Path, runs_dir: str | None,
                 docs_dir: Path) -> Path:
    """docs_dir/results.md and the figures, from the suites' records (and model_dirs)."""
    docs_dir.mkdir(parents=True, exist_ok=True)
    lines = ["# Reproducing the CIFAR-10 claims of He et al. 2015 (Sec. 4.2)", "",
             "Generated by `python training/reproduce.py --suite=NAME` (or `--report_only`) from "
             "the runs' records in [results/](../results/); every number below comes from those "
             "files. Scaled-down suites are labelled with their scale: they test the paper's "
             "claims, not its absolute errors, and the data is the CIFAR-10 JPEG (q75) copy, not "
             "the lossless release.", ""]
    for suite in suites:
        lines += suite_section(suite, load_runs(suite, results_dir, runs_dir), docs_dir,
                               results_dir)
    path = docs_dir / "results.md"
    tmp = path.with_name(f"results.md.tmp-{os.getpid()}")
    tmp.write_text("\n".join(lines))
    os.replace(tmp, path)
    print(f"Wrote {path}", flush=True)
    return path
