"""The benchmarks package, docs/make_performance.py and benchmarks/gpu_suite.sh.

The quick modes run as real processes on real frameworks; the tests check the JSON's shape and
that every figure is positive and finite. The speed goals are checked by running the benchmark
on a quiet machine, not here.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import contenders, stats
from benchmarks.goals import evaluate_goals
from keras_resnet import runtime
from keras_resnet.training.cifar_data import FASHION_MNIST_DIR

REPO = Path(__file__).resolve().parents[1]
BENCHMARK = REPO / "benchmarks" / "train_throughput.py"
RECORDS = REPO / "results" / "benchmarks"
FASHION_MNIST = Path(FASHION_MNIST_DIR) / "train-images-idx3-ubyte.gz"


def env() -> dict:
    base = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    base["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), base.get("PYTHONPATH", "")) if p)
    return base


def run(*command: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(list(command), check=False, cwd=REPO, env=env(), capture_output=True,
                          text=True, timeout=timeout)


def check(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, (
        f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    )


def torch_available() -> bool:
    return run("/usr/bin/python3", "-c", "import torch, torchvision", timeout=120).returncode == 0 \
        if Path("/usr/bin/python3").exists() else False


def performance_page(tmp_path: Path, full_run: Path, **records: Path) -> str:
    """docs/make_performance.py's page from the full run `full_run`, with the committed records of
    results/benchmarks and `records` (file name: path) in their place or beside them."""
    folder = tmp_path / "records"
    shutil.copytree(RECORDS, folder, dirs_exist_ok=True)
    for name, path in records.items():
        shutil.copy(path, folder / name)
    out = tmp_path / "performance.md"
    check(run_python(str(REPO / "docs" / "make_performance.py"), f"--json={full_run}",
                     f"--results_dir={folder}", f"--out={out}"))
    return out.read_text()


def run_python(*args: str) -> subprocess.CompletedProcess:
    return run(sys.executable, *args, timeout=120)


def span(ratios: list[float]) -> str:
    low, high = f"{min(ratios):.2f}", f"{max(ratios):.2f}"
    return f"{low}x" if low == high else f"{low}-{high}x"


def assert_positive(value, where: str) -> None:
    assert isinstance(value, (int, float)) and not isinstance(value, bool), (where, value)
    assert math.isfinite(value) and value > 0, (where, value)


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> tuple[dict, str, Path]:
    """One --quick run of every section and implementation (TensorFlow backend): its JSON, stdout
    and path."""
    if not FASHION_MNIST.exists():
        pytest.fail(
            f"{FASHION_MNIST} missing: install Debian's dataset-fashion-mnist (.ci/run does)"
        )
    path = tmp_path_factory.mktemp("bench") / "quick.json"
    impls = ",".join(contenders.IMPLS)  # the default leaves reference_channels_first out
    result = run(sys.executable, str(BENCHMARK), "--quick", f"--impls={impls}",
                 "--threads_precisions=auto,float32", f"--json={path}")
    check(result)
    return json.loads(path.read_text()), result.stdout, path


@pytest.mark.slow
def test_quick_run_measures_every_section(quick):
    data, stdout, _ = quick
    assert_positive(data["limit"]["tensorflow"]["float32"]["gflops"], "tensorflow matmul limit")
    assert_positive(data["machine_limit"]["gflops"], "machine limit")

    # --precisions' default float32,auto: auto is what the trainers train in here, the goals'
    # precision
    trainers = "bfloat16" if runtime.bfloat16_hardware() else "float32"
    assert data["trainers_precision"] == data["goal_precision"] == trainers
    precisions = data["settings"]["precisions"]
    assert precisions == sorted({"float32", trainers}, key=["float32", "bfloat16"].index)
    rows = {(r["net"], r["impl"], r["precision"]): r for r in data["training"]}
    impls = {
        "ours",
        "ours_keras_bn",
        "ours_strided_shortcut",
        "reference",
        "reference_channels_first",
    }
    if torch_available():
        assert data["torch"]["available"]
        impls.add("torch")
        assert_positive(data["limit"]["torch"]["float32"]["gflops"], "torch matmul limit")
    else:
        assert not data["torch"]["available"] and "PyTorch absent" in data["torch"]["note"]
    assert set(rows) == {("resnet20", impl, p) for impl in impls for p in precisions}
    # the limit ran in the net's own rounds, and '% of limit' divides by it
    net_limit = data["training_limits"]["resnet20"]
    assert len(net_limit["rounds"]) == 2 and net_limit["gflops"] == statistics.median(
        net_limit["rounds"]
    )
    for key, row in rows.items():
        for name in ("images_per_s", "gflops", "percent_of_limit", "macs_per_image"):
            assert_positive(row[name], f"{key} {name}")
        assert math.isclose(row["percent_of_limit"], 100 * row["gflops"] / net_limit["gflops"])
        assert len(row["rounds"]) == data["settings"]["rounds"] == 2
        for value in row["rounds"]:
            assert_positive(value, f"{key} round")
        assert len(row["steal_percent"]) == 2 and all(0 <= v <= 100 for v in row["steal_percent"])
    # GFLOP/s come from the library's count of each net (the keras.io net adds 1x1 projections).
    assert rows[("resnet20", "ours", "float32")]["macs_per_image"] == 40_551_040
    assert rows[("resnet20", "reference", "float32")]["macs_per_image"] == 40_551_040 + 2 * (
        16 * 16 * 16 * 32
    )

    shortcut = data["shortcut"]["rows"]
    assert {(r["kind"], tuple(r["shape"])) for r in shortcut} == {
        (kind, (data["settings"]["cifar_batch"], size, size, channels))
        for kind in ("keras_resnet", "strided_slice", "max_pool")
        for size, channels in ((32, 16), (16, 32))
    }
    for row in shortcut:
        assert_positive(row["median_ms"], f"shortcut {row['kind']}")
        assert len(row["ms_rounds"]) == 2 and all(v > 0 for v in row["ms_rounds"])

    # auto is the trainers' precision; a precision named twice trains once
    threads_precisions = list(dict.fromkeys([trainers, "float32"]))
    assert data["threads"]["trainers_precision"] == trainers
    assert data["threads"]["precisions"] == threads_precisions
    threads = {(r["setting"], r["precision"]): r for r in data["threads"]["rows"]}
    assert set(threads) == {(s, p) for s in ("0x0", "1x1:TF_ENABLE_ONEDNN_OPTS=0")
                            for p in threads_precisions}
    for precision in threads_precisions:
        assert threads["1x1:TF_ENABLE_ONEDNN_OPTS=0", precision]["inter_op_threads"] == 1
        # the variable reached the worker, and TensorFlow ran as it says
        assert threads["1x1:TF_ENABLE_ONEDNN_OPTS=0", precision]["versions"]["onednn"] == \
            "off (TF_ENABLE_ONEDNN_OPTS=0)"
        if (
            platform.machine().lower() in runtime.X86_64
            and runtime.ONEDNN_VARIABLE not in os.environ
        ):
            assert threads["0x0", precision]["versions"]["onednn"] == "on (TF_ENABLE_ONEDNN_OPTS=1)"
    for (setting, precision), row in threads.items():
        assert_positive(row["images_per_s"], f"threads {setting} {precision}")
        assert len(row["rounds"]) == 2

    trainer = data["trainer"]
    for name in (
        "trainer_images_per_s",
        "bare_images_per_s",
        "evaluation_s_per_epoch",
        "trainer_epoch_s",
        "bare_epoch_s",
        "evaluation_percent_of_epoch",
    ):
        assert_positive(trainer[name], f"trainer {name}")
    assert trainer["overhead_percent"] == pytest.approx(
        100
        * (
            trainer["trainer_epoch_s"]
            / (trainer["bare_epoch_s"] + trainer["evaluation_s_per_epoch"])
            - 1
        )
    )
    assert trainer["command"][:2] == ["python", "training/cifar10.py"]
    trainers_flag = "none" if trainers == "float32" else trainers
    assert f"--mixed_precision={trainers_flag}" in trainer["command"]

    serving = {r["impl"]: r for r in data["serving"]["rows"]}
    assert set(serving) == {"ours", "ours_unfolded_bn", "ours_fused_inference_bn", "reference"}
    for impl, row in serving.items():
        for name in ("p50_ms", "p99_ms", "batch_images_per_s", "export_s"):
            assert_positive(row[name], f"serving {impl} {name}")
        assert row["p99_ms"] >= row["p50_ms"]
        assert row["latency_samples"] == 2 * data["settings"]["latency_calls"]

    pipeline = data["pipeline"]["images_per_s_per_core"]
    assert set(pipeline) == {"fused", "decode_only", "pil"}
    for name, value in pipeline.items():
        assert_positive(value, f"pipeline {name}")

    goals = {g["key"]: g for g in data["goals"]}
    assert {"resnet20_percent_of_limit", "trainer_overhead_percent", "pipeline_over_pil",
            "pipeline_over_decode_only", "serving_p50_ratio"} <= set(goals)
    assert all(isinstance(g["met"], bool) for g in goals.values())
    if trainers != "float32":  # the float32 goals are given beside the trainers' precision's
        assert {g["key"] for g in data["goals_float32"]} == set(goals)
    assert data["machine"]["cpu_count"] == os.cpu_count()
    # The printed tables are the JSON's; a precision column only where threads trained in several.
    assert (
        "### Goals (training in " in stdout
        and "| resnet20 | keras.io-style | tensorflow |" in stdout
    )
    assert f"### TensorFlow threads: training resnet20 at batch {data['threads']['batch']} in " \
           f"{' and '.join(threads_precisions)}," in stdout
    assert ("| environment | precision | images/s |" in stdout) == (len(threads_precisions) > 1)


def randomize_batch_norm(model, rng) -> None:
    """Random BN scales and offsets keep ReLU inputs off the kink at 0: a channel that a ReLU
    zeroed for the whole batch normalizes to exactly 0 in one BN and to +-1e-8 in another, and the
    two ReLU gradients (0 or 1, both valid) then differ by far more than rounding."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.gamma.assign(rng.normal(1, 0.1, layer.gamma.shape))
            layer.beta.assign(rng.normal(0, 0.5, layer.beta.shape))


def assert_same_function(reference, other, x) -> None:
    """`other` gives `reference`'s outputs and input gradients in training and its outputs in
    inference on `x`, to float32 rounding."""
    import numpy as np
    import tensorflow as tf

    results = []
    for model in (reference, other):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = model(x, training=True)
            loss = tf.reduce_sum(y * tf.range(y.shape[-1], dtype=tf.float32))
        results.append([y, tape.gradient(loss, x), model(x, training=False)])
    for expected, actual in zip(*results):
        np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=1e-4,
                                   atol=1e-4 * np.abs(expected.numpy()).max())


@pytest.mark.parametrize(
    "variant", ["ours_keras_bn", "ours_strided_shortcut", "ours_fused_inference_bn"]
)
def test_variants_of_our_net_agree(variant):
    """Each variant the benchmark times against ours (Keras BN, strided-slice option A shortcut,
    fused-kernel inference BN) gives ours's outputs and gradients in training, and ours's
    outputs in inference, on ours's weights: the comparison is of implementations only."""
    import functools

    import keras
    import numpy as np
    import tensorflow as tf

    import keras_resnet

    keras.utils.set_random_seed(0)
    ours = keras_resnet.ResNet20(input_shape=(15, 15, 3))  # odd sizes: subsampling rounds up
    rng = np.random.default_rng(0)
    randomize_batch_norm(ours, rng)
    other = keras.models.clone_model(
        ours, clone_function=functools.partial(contenders.variant_layer, variant)
    )
    other.set_weights(ours.get_weights())
    kinds = {type(layer) for layer in other.layers} - {type(layer) for layer in ours.layers}
    assert {kind.__name__ for kind in kinds} == {"ours_keras_bn": {"BatchNormalization"},
                     "ours_strided_shortcut": {"StridedZeroPadShortcut"},
                     "ours_fused_inference_bn": {"FusedInferenceBatchNormalization"}}[variant]
    x = tf.constant(rng.normal(size=(8, 15, 15, 3)), tf.float32)
    assert_same_function(ours, other, x)
    if variant == "ours_fused_inference_bn":  # it infers with the fused kernel, ours does not
        def ops(model):
            function = tf.function(lambda t: model(t, training=False))
            graph = function.get_concrete_function(tf.TensorSpec(x.shape)).graph
            return {op.type for op in graph.get_operations()}

        assert "FusedBatchNormV3" in ops(other) and "FusedBatchNormV3" not in ops(ours)



def test_channels_first_reference_agrees():
    """The keras.io-style net in channels_first (the data-format figure) takes the same NHWC
    images and, on the channels_last net's weights, gives its outputs and input gradients in
    training and its outputs in inference, and counts the same multiply-adds."""
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_resnet import count_flops

    keras.utils.set_random_seed(0)
    nets = [contenders.handwritten_cifar_resnet(keras, 8, (32, 32, 3), 10, data_format)
            for data_format in ("channels_last", "channels_first")]
    rng = np.random.default_rng(0)
    randomize_batch_norm(nets[0], rng)
    nets[1].set_weights(nets[0].get_weights())
    assert {layer.data_format for layer in nets[1].layers
            if isinstance(layer, keras.layers.Conv2D)} == {"channels_first"}
    assert count_flops(nets[1]) == count_flops(nets[0])
    assert_same_function(*nets, tf.constant(rng.normal(size=(4, 32, 32, 3)), tf.float32))


def test_goals_compare_in_stated_direction():
    training = [
        {"net": "resnet50", "impl": impl, "framework": "tensorflow", "precision": "float32",
         "xla": False, "images_per_s": rate, "percent_of_limit": 30.0}
        for impl, rate in (("ours", 5.0), ("reference", 4.0))]
    result = {
        "training": training,
        "trainer": {"overhead_percent": 7.0},
        "serving": {
            "rows": [{"impl": "ours", "p50_ms": 80.0}, {"impl": "reference", "p50_ms": 100.0}]
        },
    }
    goals = {g["key"]: g for g in evaluate_goals(result)}
    assert goals["resnet50_over_applications"]["value"] == pytest.approx(1.25)
    assert goals["resnet50_over_applications"]["met"]
    assert not goals["resnet50_percent_of_limit"]["met"]  # 30% < 40%
    assert not goals["trainer_overhead_percent"]["met"]  # 7% > 5%
    result["trainer"]["overhead_percent"] = -1.0
    assert {g["key"]: g for g in evaluate_goals(result)}["trainer_overhead_percent"]["met"]
    assert goals["serving_p50_ratio"]["met"] and goals["serving_p50_ratio"]["target"] == "<= 1"
    # Training goals are in the run's goal precision (the trainers' default), float32 on request.
    bfloat16 = [dict(row, precision="bfloat16", images_per_s=2 * row["images_per_s"] if
                     row["impl"] == "ours" else row["images_per_s"], percent_of_limit=60.0)
                for row in training]
    mixed = dict(result, training=training + bfloat16, goal_precision="bfloat16")
    in_bfloat16 = {g["key"]: g for g in evaluate_goals(mixed)}
    assert in_bfloat16["resnet50_over_applications"]["value"] == pytest.approx(2.5)
    assert in_bfloat16["resnet50_percent_of_limit"]["met"]
    in_float32 = {g["key"]: g for g in evaluate_goals(mixed, "float32")}
    assert in_float32["resnet50_over_applications"]["value"] == pytest.approx(1.25)
    assert stats.steal_adjusted([90.0, 100.0, 80.0], [10.0, 0.0, 50.0]) == pytest.approx(100.0)
    assert math.isnan(stats.steal_adjusted([90.0, 100.0], [10.0]))
    assert stats.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert stats.percentile([1.0, 2.0, 3.0, 4.0], 99) == 4.0


@pytest.mark.parametrize("flag, message", [
    ("--nets=resnet20,resnet999", "--nets=resnet20,resnet999: unknown ['resnet999']"),
    ("--backends=mxnet", "--backends=mxnet: unknown ['mxnet']"),
    ("--precisions=float8", "allowed: float32, bfloat16, auto"),
    ("--threads_precisions=float16", "--threads_precisions=float16: unknown ['float16']"),
    ("--sections=", "--sections=: unknown empty"),
    ("--cifar_batch=0", "--cifar_batch"),
    ("--thread_settings=2x", "--thread_settings: '2x' is not INTERxINTRA"),
    ("--thread_settings=0x0:NOVALUE", "--thread_settings: '0x0:NOVALUE' is not INTERxINTRA"),
])
@pytest.mark.slow
def test_bad_flags_fail_with_a_clear_error(flag, message):
    result = run(sys.executable, str(BENCHMARK), flag, timeout=120)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr[-2000:]


@pytest.mark.slow
def test_performance_page_comes_from_the_json(quick, tmp_path):
    data, _, path = quick
    text = performance_page(tmp_path, path)
    assert text.startswith("# Performance")
    assert f"{data['machine']['cpu']}, {data['machine']['cpu_count']} cores" in text
    assert "python benchmarks/train_throughput.py --quick" in text
    for goal in data["goals"]:
        assert f"| {goal['goal']} | {goal['target']} | {goal['value']:.2f} |" in text
    for row in data["training"]:
        assert f"| {row['net']} | {row['implementation']} | {row['framework']} |" in text
    # the defaults decided on this run's figures cite it, with their ratios
    rows = {(r["impl"], r["precision"]): r["images_per_s"] for r in data["training"]}
    bn = [rows["ours", p] / rows["ours_keras_bn", p] for p in data["settings"]["precisions"]]
    assert (f"- BN: `keras_resnet.layers.BatchNormalization` trains with TensorFlow's fused "
            f"kernel, {span(bn)} the speed of Keras's own layer over the nets (`{path}`).") in text
    assert "- Option A shortcut: `keras_resnet.layers.subsample` (reshape + slice), " in text

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"machine": {}}))
    result = run_python(str(REPO / "docs" / "make_performance.py"), f"--json={bad}",
                        f"--out={tmp_path / 'x.md'}")
    assert result.returncode == 2 and "not a train_throughput.py result" in result.stderr


@pytest.mark.slow
def test_readme_quotes_the_runs_goals(quick):
    data, _, path = quick
    result = run_python(str(REPO / "docs" / "make_performance.py"), f"--json={path}", "--readme")
    check(result)
    goals = {g["key"]: g["value"] for g in data["goals"]}
    assert result.stdout.startswith("## Speed\n")
    if "resnet20_over_torch" in goals:
        assert f"CIFAR ResNet-20: {goals['resnet20_over_torch']:.2f}x PyTorch's" in result.stdout
    assert f"Goals met: {sum(g['met'] for g in data['goals'])} of {len(goals)}." in result.stdout


@pytest.mark.slow
def test_op_profile_sums_op_time_by_type(quick, tmp_path):
    data, _, path = quick
    profile_path, logdir = tmp_path / "op.json", tmp_path / "trace"
    result = run(
        sys.executable,
        str(REPO / "benchmarks" / "op_profile.py"),
        "--quick",
        "--net=resnet20",
        "--precision=bfloat16",
        "--top=100",
        f"--logdir={logdir}",
        f"--json={profile_path}",
    )
    check(result)
    profile = json.loads(profile_path.read_text())
    assert profile["precision"] == "bfloat16" and profile["cpu"]
    assert list(logdir.glob("**/*.xplane.pb")), "the trace TensorBoard opens is left in --logdir"
    types = {r["op_type"]: r for r in profile["ops"]}
    assert any("Conv2D" in name for name in types), types  # the convolutions were traced
    assert "Cast" in types, (
        types
    )  # mixed bfloat16: float32 weights cast to bfloat16 for the convolutions
    assert sum(r["seconds"] for r in profile["ops"]) == pytest.approx(profile["op_seconds_total"])
    assert sum(r["percent"] for r in profile["ops"]) == pytest.approx(100)
    for row in profile["ops"]:
        assert_positive(row["seconds"], row["op_type"])
    assert (
        f"| {profile['ops'][0]['op_type']} | {profile['ops'][0]['seconds']:.3f} |" in result.stdout
    )
    text = performance_page(tmp_path, path, **{"op-profile-quick.json": profile_path})
    top = profile["ops"][0]
    assert (f"- Op time of resnet20 (bfloat16) on {profile['cpu']}: {top['op_type']} "
            f"{top['percent']:.0f}%") in text
    bad = run(
        sys.executable, str(REPO / "benchmarks" / "op_profile.py"), "--net=resnet7", timeout=120
    )
    assert bad.returncode == 2 and "--net=resnet7: unknown" in bad.stderr


@pytest.mark.slow
def test_onednn_kernels_times_primitives(
    quick, tmp_path
):
    data, _, path = quick
    kernels_path = tmp_path / "kernels.json"
    result = run(sys.executable, str(REPO / "benchmarks" / "onednn_kernels.py"), "--quick",
                 "--precision=float32", f"--json={kernels_path}")
    check(result)
    kernels = json.loads(kernels_path.read_text())
    assert kernels["net"] == "resnet20" and kernels["precision"] == "float32" and kernels["cpu"]
    assert (kernels["tf_inter_op_threads"], kernels["tf_intra_op_threads"]) == (1, 0)
    assert (
        kernels["command"]
        == f"python benchmarks/onednn_kernels.py --quick --precision=float32 --json={kernels_path}"
    )
    frameworks = kernels["frameworks"]
    ours = frameworks["tensorflow"]
    assert ours["onednn"]["version"].startswith("v"), ours["onednn"]
    passes = {(r["kind"], r["pass"]) for r in ours["kinds"]}
    assert {("convolution", "forward"), ("convolution", "backward data"),
            ("convolution", "backward weights"), ("batch_normalization", "forward"),
            ("batch_normalization", "backward")} <= passes, passes
    assert sum(r["ms_per_step"] for r in ours["kinds"]) == pytest.approx(ours["onednn_ms_per_step"])
    # ResNet-20: 19 convolutions, each run once per step in each of its three passes
    # (the first's input gradient is not computed: the images are not trained)
    runs = {p: sum(c["per_step"] for c in ours["convolutions"] if c["pass"] == p)
            for p in ("forward", "backward weights", "backward data")}
    assert runs == {"forward": 19, "backward weights": 19, "backward data": 18}, runs
    # TensorFlow's element-wise ops, and ReLU and its gradient on the integer view (checked
    # against TensorFlow's own inside the benchmark), in both precisions
    for dtype in ("float32", "bfloat16"):
        assert set(ours["elementwise"][dtype]) == {
            "relu", "add", "relu gradient", "relu, integer view", "relu gradient, integer view"}
    for name, framework in frameworks.items():
        if "skipped" in framework:
            continue
        assert_positive(framework["step_ms"], f"{name} step")
        for dtype, ops in framework["elementwise"].items():
            for op, ms in ops.items():
                assert_positive(ms, f"{name} {dtype} {op}")
        for row in framework["convolutions"]:
            assert_positive(row["median_ms"], f"{name} {row['pass']} {row['shape']}")
            assert row["impl"], row
        # reorders by shape (at least the weights' layout for the convolutions), and every execution
        assert framework["reorders"], name
        for row in framework["reorders"]:
            assert_positive(row["median_ms"], f"{name} reorder {row['shape']}")
        assert framework["executions_per_step"] > sum(
            c["per_step"] for c in framework["convolutions"]
        )
    if torch_available():
        torch = frameworks["torch"]
        assert torch["onednn"]["version"].startswith("v"), torch["onednn"]
        # the same convolutions in both frameworks: every shape and pass has both figures
        compared = kernels["compared_convolutions"]
        assert compared and all(row["tensorflow"] and row["torch"] for row in compared), compared
    else:
        assert "PyTorch absent" in frameworks["torch"]["skipped"]
    stdout = result.stdout
    assert f"oneDNN: TensorFlow (ours) {ours['onednn']['version']}" in stdout
    integer_view = ours["elementwise"]["float32"]["relu gradient, integer view"]
    assert f"| relu gradient, integer view | {integer_view:.3f} |" in stdout
    if torch_available():  # reorders side by side, and what running a primitive costs
        executions = f"{ours['executions_per_step']:.0f}"
        assert f"oneDNN primitive executions per step: TensorFlow (ours) {executions}, " in stdout
        assert "Median reorder: TensorFlow (ours) " in stdout
    text = performance_page(tmp_path, path, **{"onednn-kernels-quick.json": kernels_path})
    assert (f"- oneDNN kernels of resnet20 (float32): tensorflow {ours['step_ms']:.0f} ms a step, "
            f"{ours['onednn_ms_per_step']:.0f} in {ours['executions_per_step']:.0f} oneDNN "
            "primitives") in text
    bad = run(
        sys.executable, str(REPO / "benchmarks" / "onednn_kernels.py"), "--net=resnet7", timeout=120
    )
    assert bad.returncode == 2 and "--net=resnet7: unknown" in bad.stderr


@pytest.mark.slow
def test_settings_record_gives_default_line(quick, tmp_path):
    """The data-format line is computed from its record: here the quick run in its place."""
    data, _, path = quick
    text = performance_page(tmp_path, path, **{"speed-data-format_amx-xeon-2core.json": path})
    rows = {(r["impl"], r["precision"]): r["images_per_s"] for r in data["training"]}
    ratios = [rows["reference", p] / rows["reference_channels_first", p]
              for p in data["settings"]["precisions"]]
    assert (f"- Data format: channels_last only; the keras.io-style net trained {span(ratios)} as "
            "fast in channels_last as in channels_first") in text
    assert "## Settings run" not in text  # the record's own tables stay in the record


@pytest.mark.slow
def test_gpu_suite_quick_runs_jax_on_cpu(tmp_path):
    """The GPU suite's --quick mode on the CPU: Keras on JAX, bf16, and the trainer's JAX path."""
    if not FASHION_MNIST.exists():
        pytest.fail(
            f"{FASHION_MNIST} missing: install Debian's dataset-fashion-mnist (.ci/run does)"
        )
    result = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_suite.sh"), "--quick", str(tmp_path)],
        check=False,
        cwd=REPO,
        env=dict(env(), PYTHON=sys.executable),
        capture_output=True,
        text=True,
        timeout=900,
    )
    check(result)
    data = json.loads((tmp_path / "train_batch8.json").read_text())
    assert set(data["versions"]) >= {"jax"} and data["settings"]["precisions"] == ["bfloat16"]
    for row in data["training"]:
        assert row["precision"] == "bfloat16"
        assert_positive(row["images_per_s"], row["id"])
    assert {r["impl"] for r in data["training"] if r["framework"] == "jax"} == {"ours"}
    schedule = json.loads((tmp_path / "resnet20_schedule.json").read_text())
    assert schedule["steps"] == 4 and schedule["hardware"]["backend"] == "jax"
    assert_positive(schedule["train_wall_s"], "schedule wall")


@pytest.mark.slow
def test_bfloat16_accuracy_trains_both_alike(
    quick, tmp_path
):
    """--quick: one seed, a tiny run per precision through training/cifar10.py; the JSON pairs
    them, and docs/make_performance.py puts its line on the page."""
    data, _, path = quick
    script = REPO / "benchmarks" / "bfloat16_accuracy.py"
    accuracy_path = tmp_path / "bf16.json"
    result = run(sys.executable, str(script), "--quick", f"--json={accuracy_path}",
                 f"--model_dir_root={tmp_path / 'runs'}", timeout=600)
    check(result)
    accuracy = json.loads(accuracy_path.read_text())
    runs = {r["precision"]: r for r in accuracy["runs"]}
    assert set(runs) == {"none", "bfloat16"}
    for precision, row in runs.items():
        assert row["resolved_precision"] == precision  # the trainer ran in what it was told
        assert 0.0 <= row["test_error"] <= 1.0 and row["steps"] == 4
        assert_positive(row["images_per_s"], f"{precision} images/s")
    summary = accuracy["summary"]
    assert summary["bfloat16_minus_float32"] == pytest.approx(
        runs["bfloat16"]["test_error"] - runs["none"]["test_error"])
    assert f"| mixed bfloat16 | 0 | {100 * runs['bfloat16']['test_error']:.2f}% |" in result.stdout
    text = performance_page(tmp_path, path, **{"bfloat16-accuracy_amx-xeon.json": accuracy_path})
    assert (f"against float32: {100 * summary['bfloat16']['mean_test_error']:.2f}% against "
            f"{100 * summary['none']['mean_test_error']:.2f}%, ") in text
    bad = run(
        sys.executable, str(script), "--seeds=one", f"--json={tmp_path / 'x.json'}", timeout=120
    )
    assert (
        bad.returncode == 2 and "--seeds=one: need a comma-separated list of integers" in bad.stderr
    )
