#!/usr/bin/env bash
# The speed benchmark on the GPU machine, in one command; docs/performance.md shows its tables
# (python docs/make_performance.py --gpu_dir=OUT_DIR).
#
# Keras runs on JAX there (no TensorFlow: see ../shared/gpu/README.md): bf16, batches 128/256/512,
# synthetic data on the device (jitted stateless train steps), PyTorch alongside; then ResNet-20
# for the paper's full CIFAR schedule (64k steps, batch 128) through training/cifar10.py's JAX path,
# timed. Goals when it runs: ResNet-50 >= 7,000 images/s, ResNet-20 at batch 128 >= 35,000,
# ResNet-56 >= 12,000, the full ResNet-20 schedule in under 5 minutes.
#
#   bash benchmarks/gpu_suite.sh [--quick] [OUT_DIR]      (OUT_DIR default: $OUT, else runs/gpu)
#
# On the GPU machine: run ../shared/gpu/fetch_wheels.sh here first and send .whl/ along (it is
# installed into /tmp/site when Keras is missing); bring CIFAR-10 as data/cifar10-jpeg.tar.gz (the
# JPEG copy in ../shared/datasets). --quick runs everything tiny on the CPU (a test does).
# Environment: PYTHON (default python3), TORCH_COMPILE=1 to torch.compile the PyTorch nets,
# STEPS_PER_EXECUTION for the schedule run (default 32).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
if [[ "${1:-}" == "--quick" ]]; then quick=1; shift; fi
if [[ $# -gt 1 || "${1:-}" == -* ]]; then
  echo "usage: bash benchmarks/gpu_suite.sh [--quick] [OUT_DIR]" >&2
  exit 2
fi
out=${1:-${OUT:-runs/gpu}}
mkdir -p "$out"
out=$(cd "$out" && pwd)
python=${PYTHON:-python3}
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if ! "$python" -c "import keras" 2>/dev/null; then
  if ! ls .whl/*.whl >/dev/null 2>&1; then
    echo "error: $python has no Keras and .whl/ has no wheels: run ../shared/gpu/fetch_wheels.sh" >&2
    exit 2
  fi
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi
"$python" -c "import jax; print('JAX devices:', jax.devices())"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader

torch_flags=()
[[ "${TORCH_COMPILE:-0}" == 1 ]] && torch_flags+=(--torch_compile)

# 1. Training throughput, Keras (JAX) against PyTorch, per batch size.
if [[ $quick == 1 ]]; then
  batches=(8)
  bench_flags=(--quick --nets=resnet20 --impls=ours,torch)
else
  batches=(128 256 512)
  bench_flags=(--nets=resnet20,resnet56,resnet50 --rounds=3 --seconds_per_round=3 --warmup_steps=3
               --matmul_size=8192 --matmul_seconds=1)
fi
for batch in "${batches[@]}"; do
  "$python" benchmarks/train_throughput.py --backends=jax --precisions=bfloat16 --sections=training \
    --cifar_batch="$batch" --imagenet_batch="$batch" "${bench_flags[@]}" "${torch_flags[@]}" \
    --json="$out/train_batch$batch.json"
done

# 2. ResNet-20, the paper's full CIFAR schedule, through the trainer's JAX path, timed.
if [[ $quick == 1 ]]; then
  data_flags=(--dataset=fashion_mnist --data_source=files --max_train_examples=96
              --validation_size=32 --max_test_examples=32 --batch_size=16 --train_steps=4
              --steps_per_execution=2 --jit_compile)
else
  tarball=""
  for candidate in data/cifar10-jpeg.tar.gz ../shared/datasets/cifar10-jpeg.tar.gz; do
    [[ -f $candidate ]] && tarball=$candidate && break
  done
  if [[ -z $tarball ]]; then
    echo "error: no CIFAR-10: put the JPEG copy at data/cifar10-jpeg.tar.gz" >&2
    exit 2
  fi
  data_root=$(mktemp -d)
  tar xzf "$tarball" -C "$data_root"
  data_flags=(--dataset=cifar10 --data_source=folder --data_dir="$data_root/cifar10-jpeg"
              --steps_per_execution="${STEPS_PER_EXECUTION:-32}" --jit_compile)
fi
rm -rf "$out/resnet20_schedule"
start=$(date +%s.%N)
"$python" training/cifar10.py --model=resnet20 --mixed_precision=bfloat16 --verbose=2 \
  --model_dir="$out/resnet20_schedule" "${data_flags[@]}"
end=$(date +%s.%N)
"$python" - "$out" "$start" "$end" <<'PY'
import json, sys
out, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
results = json.load(open(f"{out}/resnet20_schedule/results.json"))
summary = {"command_wall_s": end - start, "train_wall_s": results["train_wall_s"],
           "steps": results["steps"], "images_per_s": results["images_per_s"],
           "test_error": results["test_error"], "hardware": results["hardware"],
           "flags": results["flags"]}
json.dump(summary, open(f"{out}/resnet20_schedule.json", "w"), indent=1)
print(f"ResNet-20 schedule: {summary['steps']} steps, {summary['train_wall_s']:.0f} s training, "
      f"{summary['command_wall_s']:.0f} s in all, test error {summary['test_error']}")
PY
echo "results in $out"
