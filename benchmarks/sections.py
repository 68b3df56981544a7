"""The benchmark's sections beside training, each a function of the run it adds its figures to.

shortcut  option A's subsampling alone; threads  TensorFlow thread settings and environment
variables; autotune  tf.data's autotuner on and off; trainer  training/cifar10.py end to end;
serving  the exported SavedModels; pipeline  benchmarks/input_pipeline.py.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.contenders import SERVING_IMPLS, SUBSAMPLINGS
from benchmarks.protocol import REPO, BenchmarkError, keras_worker, worker_env
from benchmarks.runner import Run
from benchmarks.stats import median, percentile

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


def shortcut(run: Run) -> None:
    """Forward + backward ms of option A's subsampling alone, per kind, alternated, at the
    CIFAR nets' two subsampling shapes (32x32x16 and 16x16x32, stride 2)."""
    if "tensorflow" not in run.workers:
        run.result["shortcut"] = {"skipped": "the comparison is of TensorFlow's kernels"}
        return
    worker, batch, contenders = run.workers["tensorflow"], run.s["cifar_batch"], []
    for size, channels in ((32, 16), (16, 32)):
        shape = [batch, size, size, channels]
        for kind in SUBSAMPLINGS:
            contender = {"id": f"shortcut/{kind}/{size}", "kind": kind, "shape": shape, "stride": 2}
            call_s = worker.call("setup_shortcut", id=contender["id"], kind=kind, shape=shape,
                                 stride=2)["call_s"]
            contender["calls"] = max(10, round(run.s["seconds_per_round"] / 5 / max(call_s, 1e-6)))
            contenders.append(contender)

    def measure(c: dict) -> float:
        return 1e3 * worker.call("time", id=c["id"], steps=c["calls"])["seconds"] / c["calls"]

    ms = run.alternate(contenders, measure, run.s["rounds"])
    rows = []
    for c in contenders:
        worker.call("release", id=c["id"])
        rows.append({"kind": c["kind"], "shape": c["shape"], "stride": c["stride"],
                     "calls_per_round": c["calls"], "ms_rounds": ms[c["id"]],
                     "median_ms": median(ms[c["id"]]), "steal_percent": c["steal_percent"]})
    run.result["shortcut"] = {"rows": rows}


def threads(run: Run) -> None:
    """Training images/s of our CIFAR net (--threads_net, in each of --threads_precisions; auto:
    the trainers' precision) under TensorFlow thread settings (inter-op x intra-op; 0 is
    TensorFlow's default, one per core), each optionally with one environment variable (e.g. a
    oneDNN option), one worker process per setting, alternated."""
    if "tensorflow" not in run.workers:
        run.result["threads"] = {"skipped": "thread settings are TensorFlow's"}
        return
    net, batch, workers, contenders = run.s["threads_net"], run.s["cifar_batch"], {}, []
    trainers, precisions = run.result["trainers_precision"], run.s["threads_precisions"]
    try:
        for setting in run.s["thread_settings"]:
            inter, intra, variables = parse_thread_setting(setting)
            worker = workers[setting] = keras_worker(f"tensorflow {setting}", "tensorflow", inter,
                                                     intra, **variables)
            versions = worker.call("versions")
            for precision in precisions:
                contender = {"id": f"threads/{setting}/{precision}", "setting": setting,
                             "precision": precision, "inter_op_threads": inter,
                             "intra_op_threads": intra, "environment": variables,
                             "versions": versions}
                contender.update(
                    run.setup_ours_cifar(worker, contender["id"], net, batch, precision))
                contender["steps"] = run.steps_for(contender["step_s"])
                contenders.append(contender)

        def measure(c: dict) -> float:
            seconds = workers[c["setting"]].call("time", id=c["id"], steps=c["steps"])["seconds"]
            return batch * c["steps"] / seconds

        rates = run.alternate(contenders, measure, run.s["rounds"])
    finally:
        for worker in workers.values():
            worker.close()
    kept = ("setting", "precision", "inter_op_threads", "intra_op_threads", "environment",
            "versions", "steal_percent")
    rows = [{k: c[k] for k in kept} | {"images_per_s": median(rates[c["id"]]),
                                        "rounds": rates[c["id"]]} for c in contenders]
    run.result["threads"] = {"net": net, "batch": batch, "precisions": precisions,
                             "trainers_precision": trainers, "rows": rows}


def autotune(run: Run) -> None:
    """Whole `fit` calls of our net with and without tf.data's autotuner, alternated: the
    autotuner's thread holds up the end of each call (the trainers turn it off)."""
    if "tensorflow" not in run.workers:
        run.result["autotune"] = {"skipped": "tf.data runs on the TensorFlow backend"}
        return
    net, batch, steps = "resnet20", run.s["cifar_batch"], run.s["autotune_steps"]
    worker, contenders = run.workers["tensorflow"], []
    for on in (False, True):
        contender = {"id": f"autotune/{net}/{on}", "autotune": on}
        contender.update(run.setup_ours_cifar(worker, contender["id"], net, batch, autotune=on))
        contenders.append(contender)

    def measure(c: dict) -> float:
        return worker.call("time", id=c["id"], steps=steps)["seconds"]

    seconds = run.alternate(contenders, measure, run.s["rounds"])
    rows = []
    for c in contenders:
        worker.call("release", id=c["id"])
        rows.append({"autotune": c["autotune"], "fit_seconds": seconds[c["id"]],
                     "median_fit_s": median(seconds[c["id"]]), "steal_percent": c["steal_percent"]})
    run.result["autotune"] = {"net": net, "batch": batch, "steps_per_fit": steps, "rows": rows}


def trainer(run: Run) -> None:
    """training/cifar10.py end to end vs the bare fit step of the same net, alternated."""
    if "tensorflow" not in run.workers:
        run.result["trainer"] = {"skipped": "needs the TensorFlow backend (the bare step is fit)"}
        return
    if not (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        run.result["trainer"] = {"skipped": f"{FASHION_MNIST_DIR} missing (Debian's "
                                 "dataset-fashion-mnist)"}
        return
    net, batch = run.s["trainer_net"], run.s["trainer_batch"]
    steps_per_epoch, epochs = run.s["trainer_steps_per_epoch"], run.s["trainer_epochs"]
    train = steps_per_epoch * batch
    # The paper's proportions: 45k training, 5k validation and 10k test images per epoch.
    validation, test = max(1, train // 9), max(1, 2 * train // 9)
    eval_batch = min(500, validation + test)
    bare_id = f"trainer/{net}/bare"
    precision = run.result["goal_precision"]  # both sides, as the trainers' default
    setup = run.workers["tensorflow"].call(
        "setup_train", id=bare_id, impl="ours", net=net, image=32, channels=1, classes=10,
        batch=batch, precision=precision, xla=False, warmup_steps=run.s["warmup_steps"],
        weight_decay=1e-4, mean=True, eval_images=validation + test, eval_batch=eval_batch)
    bare_steps = steps_per_epoch * (epochs - 1)
    workdir = Path(tempfile.mkdtemp(prefix="trainer-bench-"))
    args = ["--dataset=fashion_mnist", "--data_source=files", f"--model={net}",
            f"--batch_size={batch}", f"--max_train_examples={train + validation}",
            f"--validation_size={validation}", f"--max_test_examples={test}",
            f"--train_steps={steps_per_epoch * epochs}", f"--eval_batch_size={eval_batch}",
            f"--mixed_precision={'none' if precision == 'float32' else precision}", "--verbose=0"]
    runs = {"trainer": [], "bare": [], "evaluation": []}

    def measure(c: dict) -> float:
        if c["id"] == "bare":
            worker = run.workers["tensorflow"]
            seconds = worker.call("time", id=bare_id, steps=bare_steps)["seconds"]
            runs["evaluation"].append(worker.call("evaluate", id=bare_id)["seconds"])
            return bare_steps * batch / seconds
        model_dir = workdir / f"run{len(runs['trainer'])}"  # a fresh run each round
        runs["trainer"].append(str(model_dir))
        return trainer_rate(args + [f"--model_dir={model_dir}"], batch, run.s["subprocess_timeout"])

    contenders = [{"id": "trainer"}, {"id": "bare"}]
    rates = run.alternate(contenders, measure, run.s["trainer_rounds"])
    run.workers["tensorflow"].call("release", id=bare_id)
    shutil.rmtree(workdir, ignore_errors=True)
    trainer_rate_, bare_rate = median(rates["trainer"]), median(rates["bare"])
    epoch_train_s = steps_per_epoch * batch / bare_rate
    epoch_eval_s = median(runs["evaluation"])
    epoch_trainer_s = steps_per_epoch * batch / trainer_rate_
    # The trainer's epoch does the bare step's work plus one evaluation of the validation and
    # test images; what it costs beyond both is the input pipeline, callbacks and checkpoints.
    run.result["trainer"] = {
        "net": net, "batch": batch, "dataset": "fashion_mnist (real, in memory, padded to 32x32)",
        "steps_per_epoch": steps_per_epoch, "epochs": epochs,
        "train_images": train, "validation_images": validation, "test_images": test,
        "trainer_images_per_s": trainer_rate_, "bare_images_per_s": bare_rate,
        "trainer_epoch_s": epoch_trainer_s, "bare_epoch_s": epoch_train_s,
        "evaluation_s_per_epoch": epoch_eval_s,
        "overhead_percent": 100 * (epoch_trainer_s / (epoch_train_s + epoch_eval_s) - 1),
        "evaluation_percent_of_epoch": 100 * epoch_eval_s / epoch_trainer_s,
        "rounds": rates, "steal_percent": {c["id"]: c["steal_percent"] for c in contenders},
        "command": ["python", "training/cifar10.py", *args],
        "macs_per_image": setup["macs_per_image"],
    }


def serving(run: Run) -> None:
    """serving_default of our SavedModel, its fused-inference-BN variant's and
    keras.applications' (same export), alternated."""
    if "tensorflow" not in run.workers:
        run.result["serving"] = {"skipped": "SavedModel export needs the TensorFlow backend"}
        return
    worker, image, net = run.workers["tensorflow"], run.s["serving_size"], "resnet50"
    contenders = []
    for impl, label in SERVING_IMPLS.items():
        contender = {"id": f"serving/{net}/{impl}", "impl": impl, "implementation": label}
        contender.update(worker.call("setup_serving", id=contender["id"], impl=impl, net=net,
                                     image=image, batch=run.s["serving_batch"]))
        contenders.append(contender)
    samples: dict[str, dict[str, list[float]]] = {c["id"]: {"latencies_s": [], "batch_s": []}
                                                  for c in contenders}

    def measure(c: dict) -> float:
        out = worker.call("serve", id=c["id"], latency_calls=run.s["latency_calls"],
                          batch_calls=run.s["batch_calls"])
        samples[c["id"]]["latencies_s"] += out["latencies_s"]
        samples[c["id"]]["batch_s"].append(out["batch_s"])
        return out["batch_s"]

    run.alternate(contenders, measure, run.s["rounds"])
    rows = []
    for c in contenders:
        latencies = sorted(samples[c["id"]]["latencies_s"])
        batch_rates = [run.s["serving_batch"] * run.s["batch_calls"] / s
                       for s in samples[c["id"]]["batch_s"]]
        rows.append(dict(c, net=net, image_size=image, batch=run.s["serving_batch"],
                         p50_ms=1e3 * percentile(latencies, 50),
                         p99_ms=1e3 * percentile(latencies, 99), latency_samples=len(latencies),
                         batch_images_per_s=median(batch_rates), batch_rounds=batch_rates))
    run.result["serving"] = {"signature": "serving_default (JPEG bytes -> 1-crop -> net)",
                             "rows": rows}


def pipeline(run: Run) -> None:
    """benchmarks/input_pipeline.py, run as its own process (it owns its measurements)."""
    if "tensorflow" not in run.workers:
        run.result["pipeline"] = {"skipped": "the tf.data pipeline needs TensorFlow"}
        return
    out = Path(tempfile.mkdtemp(prefix="pipeline-bench-")) / "pipeline.json"
    command = [sys.executable, str(REPO / "benchmarks" / "input_pipeline.py"),
               "--contenders=fused,decode_only,pil", f"--json={out}",
               *(["--quick"] if run.s["quick"] else [f"--rounds={run.s['rounds']}"])]
    completed = subprocess.run(command, check=False, cwd=REPO, env=worker_env(),
                               capture_output=True, text=True,
                               timeout=run.s["subprocess_timeout"])
    if completed.returncode != 0:
        raise BenchmarkError(f"{' '.join(command)} failed:\n{completed.stderr[-4000:]}")
    data = json.loads(out.read_text())
    shutil.rmtree(out.parent, ignore_errors=True)
    data["command"] = ["python", "benchmarks/input_pipeline.py", command[2], *command[4:]]
    run.result["pipeline"] = data


def trainer_rate(args: list[str], batch: int, timeout: float) -> float:
    """Images/s of training/cifar10.py after its first epoch, from metrics.csv's wall_s column."""
    model_dir = Path(next(a for a in args if a.startswith("--model_dir=")).split("=", 1)[1])
    command = [sys.executable, str(REPO / "training" / "cifar10.py"), *args]
    completed = subprocess.run(command, check=False, cwd=REPO, env=worker_env(),
                               capture_output=True, text=True, timeout=timeout)
    if completed.returncode != 0:
        raise BenchmarkError(f"{' '.join(command)} failed:\n{completed.stderr[-4000:]}")
    with open(model_dir / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f)]
    if len(rows) < 2:
        raise BenchmarkError(f"{model_dir}/metrics.csv has {len(rows)} epochs; need 2 or more")
    first, last = rows[0], rows[-1]
    steps = int(float(last["step"])) - int(float(first["step"]))
    return steps * batch / (float(last["wall_s"]) - float(first["wall_s"]))


def parse_thread_setting(setting: str) -> tuple[int, int, dict[str, str]]:
    """'INTERxINTRA' or 'INTERxINTRA:NAME=VALUE' as (inter-op, intra-op, {NAME: VALUE})."""
    threads, _, variable = setting.partition(":")
    counts = threads.split("x")
    name, equals, value = variable.partition("=")
    if len(counts) != 2 or not all(c.isdigit() for c in counts) or (
            variable and not (equals and name.isidentifier())):
        raise ValueError(f"--thread_settings: {setting!r} is not INTERxINTRA (two counts >= 0, 0: "
                         "TensorFlow's default) with an optional :NAME=VALUE environment variable, "
                         "e.g. 0x0,1x2,0x0:TF_ENABLE_ONEDNN_OPTS=0.")
    return int(counts[0]), int(counts[1]), ({name: value} if variable else {})
