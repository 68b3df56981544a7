"""The speed goals a full run is checked against, and their measured values."""

from __future__ import annotations

# Goals on a 2-core CPU (TensorFlow backend): (description, value key, target); a negative target
# means "at most |target|".
GOALS = (
    ("ResNet-50 ours / keras.applications, training", "resnet50_over_applications", 1.00),
    ("ResNet-50 ours, % of matmul limit", "resnet50_percent_of_limit", 40.0),
    ("ResNet-20 ours / PyTorch, training", "resnet20_over_torch", 1.00),
    ("ResNet-56 ours / PyTorch, training", "resnet56_over_torch", 1.00),
    ("ResNet-110 ours / PyTorch, training", "resnet110_over_torch", 1.00),
    ("ResNet-20 ours, % of matmul limit", "resnet20_percent_of_limit", 45.0),
    ("ResNet-56 ours, % of matmul limit", "resnet56_percent_of_limit", 62.0),
    ("Trainer epoch over the bare fit + evaluate of the same images, overhead % (at most)",
     "trainer_overhead_percent", -5.0),
    ("Input pipeline / PIL loop, per core", "pipeline_over_pil", 2.0),
    ("Input pipeline / decode-only, per core", "pipeline_over_decode_only", 0.70),
    ("Serving batch-1 p50 latency, ours / keras.applications (at most)", "serving_p50_ratio", -1.0),
)


def _training_row(result: dict, net: str, impl: str, framework: str = "tensorflow",
                  precision: str = "float32") -> dict | None:
    """The XLA-off row of `net` / `impl` / `framework` / `precision` (the goals' configuration)."""
    rows = [r for r in result.get("training", []) if r["net"] == net and r["impl"] == impl
            and r["framework"] == framework and r["precision"] == precision and not r["xla"]]
    return rows[0] if rows else None


def goal_values(result: dict, precision: str | None = None) -> dict[str, float]:
    """The figures the goals are stated in (absent where not measured), in `precision`
    (default: the run's goal precision, the trainers' default on the machine: "fp32
    unless faster otherwise"). Every contender of a ratio trains in that precision (PyTorch under
    autocast); the limit stays the float32 matmul."""
    precision = precision or result.get("goal_precision", "float32")
    values = {}
    for net in ("resnet20", "resnet56", "resnet110", "resnet50"):
        ours = _training_row(result, net, "ours", precision=precision)
        if not ours:
            continue
        if "percent_of_limit" in ours:
            values[f"{net}_percent_of_limit"] = ours["percent_of_limit"]
        reference = _training_row(result, net, "reference", precision=precision)
        if reference and net == "resnet50":
            values["resnet50_over_applications"] = ours["images_per_s"] / reference["images_per_s"]
        torch = _training_row(result, net, "torch", framework="torch", precision=precision)
        if torch:
            values[f"{net}_over_torch"] = ours["images_per_s"] / torch["images_per_s"]
    trainer = result.get("trainer", {})
    if "overhead_percent" in trainer:
        values["trainer_overhead_percent"] = trainer["overhead_percent"]
    pipeline = result.get("pipeline", {}).get("images_per_s_per_core", {})
    if {"fused", "pil"} <= pipeline.keys():
        values["pipeline_over_pil"] = pipeline["fused"] / pipeline["pil"]
    if {"fused", "decode_only"} <= pipeline.keys():
        values["pipeline_over_decode_only"] = pipeline["fused"] / pipeline["decode_only"]
    serving = {r["impl"]: r for r in result.get("serving", {}).get("rows", [])}
    if {"ours", "reference"} <= serving.keys():
        values["serving_p50_ratio"] = serving["ours"]["p50_ms"] / serving["reference"]["p50_ms"]
    return values


def evaluate_goals(result: dict, precision: str | None = None) -> list[dict]:
    """Each goal with its measured value (training figures in `precision`, default the run's goal
    precision); a negative target means 'at most |target|'."""
    values = goal_values(result, precision)
    goals = []
    for text, key, target in GOALS:
        if key not in values:
            continue
        value = values[key]
        met = value <= -target if target < 0 else value >= target
        goals.append({"goal": text, "key": key, "value": value,
                      "target": f"<= {-target:g}" if target < 0 else f">= {target:g}", "met": met})
    return goals
