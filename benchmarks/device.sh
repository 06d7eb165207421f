#!/usr/bin/env bash
# The benchmark on a lent GPU machine, in one call of the device tool (README: "Speed on a GPU").
#
# That machine runs its own python3 with JAX and CUDA (not this project's pins) and reaches no
# network: the packages it lacks come as wheels carried in .device_wheels/ (`make device-wheels`
# here, then carry ".device_wheels"). Every measurement is printed as soon as it is done, so a
# call stopped at its time limit keeps what it measured.
#
#   bash benchmarks/device.sh                       # the GPU sweep below
#   bash benchmarks/device.sh --batches 170 --no-extras
set -euo pipefail
out=${OUT:-benchmarks/results}
mkdir -p "$out"
if [ -d .device_wheels ]; then
  python3 -m pip install -q --no-index --no-deps --target .device_site .device_wheels/*.whl
fi
export PYTHONPATH="$PWD:$PWD/.device_site" PYTHONUNBUFFERED=1
unset JAX_PLATFORMS XLA_FLAGS
python3 -c 'import jax; print("jax", jax.__version__, jax.devices())'
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
if [ $# -eq 0 ]; then
  # a paper generation is 17 candidates x 10 networks = 170 network runs in one batch; 1700 and
  # 17000: 10 and 100 search runs batched
  set -- --batches 1 170 1700 17000 --activations 4 --sizes 25 50 100 --generations quick paper \
         --runs 1 8 --profile 0
fi
python3 -m benchmarks.bench --out "$out" "$@" 2>&1 | tee "$out/bench.log"
