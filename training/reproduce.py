"""Reproduce the CIFAR-10 claims of He et al. 2015, Sec. 4.2, at a stated scale, and write the
report (docs/results.md, Fig. 6 and Fig. 7) from the runs' records:

    python training/reproduce.py --suite=cifar_8k    # 4 nets on all of CIFAR-10, 8k iterations
    python training/reproduce.py --suite=fmnist      # ResNet-20 on all of Fashion-MNIST
    KERAS_BACKEND=jax python training/reproduce.py --suite=paper   # the paper's schedule, on a GPU
    python training/reproduce.py --suite=cifar_8k --report_only

The suites (nets, data, recipe, claims) are keras_resnet.training.suites.SUITES. Every run trains
in its own process and model_dir (RUNS_DIR/SUITE/RUN): `training/cifar10.py` for our nets,
`benchmarks/torch_cifar_reference.py` for a suite's PyTorch references. A finished run's record
(results.json, metrics.csv, metadata.json, and Fig. 7's responses.csv and weights.json computed
from its model) is copied to RESULTS_DIR/SUITE/RUN, which is committed; a run with a record is
skipped, an interrupted one resumes from its newest checkpoint, so the runner can be stopped and
restarted at any time, on another machine too (runs without a record then start afresh).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
from absl import app, flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quiet TensorFlow here and in the trainers

from keras_resnet.training import files, report  # noqa: E402
from keras_resnet.training.suites import SUITES, TORCH_PREFIX, Suite  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TRAINER = REPO / "training" / "cifar10.py"
TORCH_TRAINER = REPO / "benchmarks" / "torch_cifar_reference.py"
CIFAR_JPEG_TAR = REPO.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
CIFAR_CLASSES = 10
README_SUITE = "cifar_8k"  # the suite whose records README.md's results block quotes
RUNNER_FILE = "runner.json"  # the flags (without paths) the runner started a model_dir with


class RunnerError(RuntimeError):
    """Bad input or a model_dir that does not belong to this suite; the message says what to do."""


flags.DEFINE_enum("suite", None, list(SUITES), "The suite to train and report.", required=True)
flags.DEFINE_list("models", None, "Train only these runs of the suite (default: all), in this "
                  "order; e.g. to split a suite over machines.")
flags.DEFINE_string("runs_dir", str(REPO / "runs"), "Model_dirs go to RUNS_DIR/SUITE/RUN (a "
                    "tf.io.gfile path: gs://... too, for our nets), prepared data to "
                    "RUNS_DIR/data (for a remote RUNS_DIR, runs/data in the repository).")
flags.DEFINE_string("results_dir", str(REPO / "results"), "Finished runs' records go to "
                    "RESULTS_DIR/SUITE/RUN.")
flags.DEFINE_string("docs_dir", str(REPO / "docs"), "Where results.md and the figures go.")
flags.DEFINE_string("readme", str(REPO / "README.md"), "The README whose results block the "
                    f"report rewrites from the {README_SUITE} records ('' for none).")
flags.DEFINE_string("cifar_tar", str(CIFAR_JPEG_TAR), "The CIFAR-10 JPEG copy (.tar.gz).")
flags.DEFINE_string("fashion_mnist_dir", None, "Fashion-MNIST's idx .gz files (default: the "
                    "trainer's, keras_resnet.training.cifar_data.FASHION_MNIST_DIR).")
flags.DEFINE_string("torch_python", "/usr/bin/python3", "A Python with PyTorch, for the suite's "
                    "PyTorch references.")
flags.DEFINE_integer("torch_threads", 0, "PyTorch's threads in the references (0: one per core; "
                     "1 beside another training on the same cores).", lower_bound=0)
flags.DEFINE_bool("report", True, "Write the report after training.")
flags.DEFINE_bool("report_only", False, "Only write the report from the existing records.")
flags.DEFINE_integer("response_images", 1000, "Test images for Fig. 7's layer responses "
                     "(computed when a run's record is written).", lower_bound=1)
FLAGS = flags.FLAGS


# --------------------------------------------------------------------------- data

def prepare_data(suite: Suite, data_root: Path, cifar_tar: Path,
                 fashion_mnist_dir: str | None) -> tuple[str, str]:
    """(--data_source, --data_dir) for the suite's trainer runs; CIFAR-10 subsets are extracted
    once from the JPEG copy into DATA_ROOT/KEY and reused."""
    if suite.data.dataset == "fashion_mnist":
        from keras_resnet.training.cifar_data import FASHION_MNIST_DIR

        return "files", fashion_mnist_dir or FASHION_MNIST_DIR
    spec = suite.data
    pool = "all" if spec.train_per_class is None else \
        spec.train_per_class + spec.validation_per_class
    test = "all" if spec.test_per_class is None else spec.test_per_class
    target = data_root / f"cifar10-jpeg_pool{pool}_test{test}_seed{spec.seed}"
    if (target / "manifest.json").exists():
        print(f"Using prepared data {target}", flush=True)
        return "folder", str(target / "cifar10-jpeg")
    if not cifar_tar.is_file():
        raise RunnerError(f"--cifar_tar={cifar_tar}: no such file; expected the CIFAR-10 JPEG copy "
                          f"(shared/datasets/cifar10-jpeg.tar.gz beside the repository).")
    print(f"Extracting a class-balanced subset of {cifar_tar} to {target}", flush=True)
    limits = {"train": None if pool == "all" else pool, "test": spec.test_per_class}
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    try:
        with tarfile.open(cifar_tar) as tar:
            members = [m for m in tar if m.isfile() and m.name.lower().endswith(".jpg")]
            chosen = select_balanced(members, limits, spec.seed)
            # In archive order: a gzip stream seeks backwards by decompressing from the start.
            tar.extractall(tmp, members=sorted(chosen, key=lambda m: m.offset), filter="data")
    except (tarfile.TarError, OSError, EOFError) as error:
        raise RunnerError(f"--cifar_tar={cifar_tar}: unreadable ({type(error).__name__}: "
                          f"{error}).") from None
    counts = {split: len([m for m in chosen if Path(m.name).parts[1] == split])
              for split in limits}
    (tmp / "manifest.json").write_text(json.dumps(
        {"source": str(cifar_tar), "per_class": limits, "seed": spec.seed, "images": counts,
         "files": sorted(m.name for m in chosen)}, indent=1) + "\n")
    os.replace(tmp, target)
    return "folder", str(target / "cifar10-jpeg")


def select_balanced(members: list[tarfile.TarInfo], limits: dict[str, int | None],
                    seed: int) -> list[tarfile.TarInfo]:
    """Per split and class (ROOT/SPLIT/CLASS/FILE), a seeded random `limits[split]` files
    (all if None)."""
    groups: dict[tuple[str, str], list[tarfile.TarInfo]] = {}
    for member in members:
        parts = Path(member.name).parts
        if len(parts) == 4 and parts[1] in limits:
            groups.setdefault((parts[1], parts[2]), []).append(member)
    classes = sorted({name for _, name in groups})
    if len(classes) != CIFAR_CLASSES or len(groups) != len(limits) * CIFAR_CLASSES:
        raise RunnerError(f"--cifar_tar: expected ROOT/{{{','.join(limits)}}}/<10 classes>/*.jpg, "
                          f"found {len(groups)} split/class folders.")
    chosen = []
    for (split, name), group in sorted(groups.items()):
        group.sort(key=lambda m: m.name)
        limit = limits[split]
        if limit is not None and limit > len(group):
            raise RunnerError(f"--cifar_tar: {split}/{name} has {len(group)} images; the suite "
                              f"asks for {limit}.")
        rng = np.random.default_rng([seed, sorted(limits).index(split), classes.index(name)])
        keep = range(len(group)) if limit is None else np.sort(rng.permutation(len(group))[:limit])
        chosen += [group[i] for i in keep]
    return chosen


# --------------------------------------------------------------------------- runs

def run_flags(suite: Suite, model: str) -> dict:
    """The trainer flags of one run, without its paths (--data_dir, --model_dir); a reference
    run (torch_MODEL) gets the PyTorch trainer's recipe flags."""
    if model.startswith(TORCH_PREFIX):
        recipe = {k: v for k, v in suite.train_flags.items()
                  if k in ("train_steps", "batch_size", "lr", "weight_decay", "momentum",
                           "checkpoint_steps")}
        return {"model": model[len(TORCH_PREFIX):], "seed": suite.data.seed,
                "validation_per_class": suite.data.validation_per_class, **recipe}
    run = {"model": model, "dataset": suite.data.dataset, "seed": suite.data.seed, "verbose": 2}
    if not suite.train_flags.get("train_on_all"):
        run["validation_per_class"] = suite.data.validation_per_class
    return {**run, **suite.train_flags}


def command_line(script: Path, run: dict) -> list[str]:
    """The command of a run's flags (booleans as --name / --noname)."""
    args = []
    for name, value in run.items():
        if isinstance(value, bool):
            args.append(f"--{name}" if value else f"--no{name}")
        else:
            args.append(f"--{name}={value}")
    return [sys.executable, str(script), *args]


def check_model_dir(model_dir: str, run: dict) -> bool:
    """True if the run in `model_dir` is finished. Raises if the model_dir was started with
    other flags (a different suite definition), as resuming it would mix two schedules."""
    started = files.read_json(os.path.join(model_dir, RUNNER_FILE))
    if started is not None and started != run:
        differing = sorted(k for k in set(started) | set(run) if started.get(k) != run.get(k))
        before = ", ".join(f"--{k}={started.get(k)}" for k in differing)
        now = ", ".join(f"--{k}={run.get(k)}" for k in differing)
        raise RunnerError(f"{model_dir} was started with other flags ({before}; this suite asks "
                          f"{now}): pass another --runs_dir or delete it.")
    return (started is not None
            and files.read_json(os.path.join(model_dir, "results.json")) is not None)


def train_suite(suite: Suite, models: list[str], runs_dir: str, results_dir: Path,
                cifar_tar: Path, fashion_mnist_dir: str) -> None:
    """Train the suite's runs one after another and record each finished one: runs with a
    record are skipped, interrupted ones resume. Every model_dir is checked first."""
    runs = {m: run_flags(suite, m) for m in models}
    recorded = {m: (results_dir / suite.name / m / "results.json").exists() for m in models}
    finished = {m: recorded[m] or check_model_dir(os.path.join(runs_dir, suite.name, m), runs[m])
                for m in models}
    if all(recorded.values()):
        data = None
    else:
        data = prepare_data(suite, data_root(runs_dir), cifar_tar, fashion_mnist_dir)
    images = None
    for index, model in enumerate(models, 1):
        model_dir = os.path.join(runs_dir, suite.name, model)
        record_dir = results_dir / suite.name / model
        prefix = f"[{suite.name} {index}/{len(models)}] {model}"
        if recorded[model]:
            print(f"{prefix}: recorded, skipped ({record_dir})", flush=True)
            continue
        if not finished[model]:
            files.make_dirs(model_dir)
            files.write_atomic(os.path.join(model_dir, RUNNER_FILE),
                               json.dumps(runs[model], indent=1, sort_keys=True))
            print(f"{prefix}: training ({model_dir})", flush=True)
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
            paths = {"data_source": data[0], "data_dir": data[1], "model_dir": model_dir}
            if model.startswith(TORCH_PREFIX):
                script = TORCH_TRAINER
                paths = {"data_dir": data[1], "model_dir": model_dir,
                         "torch_python": FLAGS.torch_python, "threads": FLAGS.torch_threads}
            else:
                script = TRAINER
            process = subprocess.run(command_line(script, {**runs[model], **paths}), cwd=REPO,
                                     env=env)
            if process.returncode != 0:
                raise RunnerError(f"{prefix}: {script.name} exited with {process.returncode}; "
                                  f"its output is above. Rerunning the suite resumes the run.")
        if images is None and suite.fig7 and not model.startswith(TORCH_PREFIX):
            images = response_test_images(suite, data, FLAGS.response_images)
        export_record(model_dir, record_dir, None if model.startswith(TORCH_PREFIX) else images)


def data_root(runs_dir: str) -> Path:
    """Where CIFAR-10 subsets are extracted: RUNS_DIR/data, or runs/data in the repository for a
    remote RUNS_DIR (the trainers read image folders from local disk)."""
    return REPO / "runs" / "data" if "://" in runs_dir else Path(runs_dir) / "data"


# --------------------------------------------------------------------------- records

def export_record(model_dir: str, record_dir: Path, test_images: np.ndarray | None) -> None:
    """Copy a finished run's record files to `record_dir`; for our nets also Fig. 7's responses
    on `test_images` and the end-of-training weight diagnostics, computed from model.keras."""
    import keras

    from keras_resnet.training import figures

    tmp = record_dir.with_name(f"{record_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in report.RECORD_FILES:
        if files.path_exists(os.path.join(model_dir, name)):
            (tmp / name).write_bytes(files.read_bytes(os.path.join(model_dir, name)))
    if files.path_exists(os.path.join(model_dir, "model.keras")):
        (tmp / "model.keras").write_bytes(files.read_bytes(os.path.join(model_dir, "model.keras")))
        model = keras.models.load_model(str(tmp / "model.keras"))
        (tmp / "model.keras").unlink()
        if test_images is not None:
            report.write_responses(tmp / report.RESPONSES_FILE,
                                   figures.layer_responses(model, test_images), len(test_images))
        kernel = np.asarray(model.get_layer("conv1_conv").kernel)
        gammas = [float(np.abs(np.asarray(layer.gamma)).max()) for layer in model.layers
                  if isinstance(layer, keras.layers.BatchNormalization)]
        # He init: E|w|^2 = k*k*c_in*filters * 2/(k*k*c_in) = 2 * filters.
        (tmp / report.WEIGHTS_FILE).write_text(json.dumps(
            {"conv1_norm": float(np.linalg.norm(kernel)),
             "he_expectation": float(np.sqrt(2 * kernel.shape[-1])),
             "largest_bn_gamma": max(gammas)}, indent=1) + "\n")
    if record_dir.exists():
        shutil.rmtree(record_dir)
    os.replace(tmp, record_dir)
    print(f"Recorded {model_dir} in {record_dir}", flush=True)


def response_test_images(suite: Suite, data: tuple[str, str], num_images: int) -> np.ndarray:
    """The first `num_images` (a seeded subset) of the suite's test images, padded to 32x32."""
    from keras_resnet.training import cifar_data

    images = cifar_data.load(suite.data.dataset, data[0], data[1], max_train=1,
                             max_test=num_images).x_test
    return cifar_data.pad_to(images, 32) if images.shape[1] < 32 else images


# --------------------------------------------------------------------------- main

def main(argv: list[str]) -> int:
    del argv
    suite = SUITES[FLAGS.suite]
    models = FLAGS.models or list(suite.runs)
    unknown = [m for m in models if m not in suite.runs]
    if unknown:
        print(f"error: --models={','.join(models)}: {', '.join(unknown)} not in suite "
              f"{suite.name!r}; allowed: {', '.join(suite.runs)}.", file=sys.stderr)
        return 2
    runs_dir = FLAGS.runs_dir if "://" in FLAGS.runs_dir else os.path.abspath(FLAGS.runs_dir)
    docs_dir = Path(FLAGS.docs_dir).resolve()
    remote_references = [m for m in models if "://" in runs_dir and m.startswith(TORCH_PREFIX)]
    if remote_references and not FLAGS.report_only:
        print(f"error: --runs_dir={runs_dir}: the PyTorch references "
              f"({', '.join(remote_references)}) write local files; give them a local "
              f"--runs_dir.", file=sys.stderr)
        return 2
    results_dir = Path(FLAGS.results_dir).resolve()
    try:
        if not FLAGS.report_only:
            train_suite(suite, models, runs_dir, results_dir, Path(FLAGS.cifar_tar),
                        FLAGS.fashion_mnist_dir)
        if FLAGS.report or FLAGS.report_only:
            shown = [s for s in SUITES.values() if not s.hidden or s is suite]
            report.write_report(shown, results_dir, runs_dir, docs_dir)
            if FLAGS.readme:
                readme = Path(FLAGS.readme)
                block = report.readme_results(SUITES[README_SUITE], results_dir)
                readme.write_text(report.with_readme_results(readme.read_text(), block))
    except RunnerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    app.run(main)
