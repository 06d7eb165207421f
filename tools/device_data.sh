#!/usr/bin/env bash
# `make data` on a lent GPU machine, in one call of the device tool: computes or resumes the
# profile's datasets in data/ (the campaign's checkpoints travel with the tree) for at most SECONDS,
# then packs every dataset, checkpoint and evaluation shard it wrote into $OUT/data.tar; unpack
# that in the repository root here (`tar -xf .../data.tar`) and `make data` resumes from it.
#
# That machine runs its own python3 (3.12) with JAX and CUDA, not this project's pins, and reaches
# no network: evosax, dotmap, netCDF4 and cftime come as wheels carried in .device_wheels/ (`make
# device-wheels`, then carry ".device_wheels"). Its copy of .git may be stale or absent: set
# PLASTICITY_REPRO_COMMIT to the commit whose tree was sent, so that the datasets' provenance names
# it ("<commit>-declared").
#
#   PLASTICITY_REPRO_COMMIT=<sha> bash tools/device_data.sh repro 400
set -uo pipefail
profile=${1:?usage: device_data.sh PROFILE SECONDS}
seconds=${2:?usage: device_data.sh PROFILE SECONDS}
out=${OUT:?OUT must name the folder whose files come back}
mkdir -p "$out"
if [ -d .device_wheels ]; then
  python3 -m pip install -q --no-index --no-deps --target .device_site .device_wheels/*.whl || exit 1
fi
export PYTHONPATH="$PWD:$PWD/.device_site" PYTHONUNBUFFERED=1
unset JAX_PLATFORMS XLA_FLAGS
python3 -c 'import jax; print("jax", jax.__version__, jax.devices())' || exit 1
stamp=$(mktemp)
timeout --kill-after=20 "$seconds" \
  python3 -m plasticity_repro.cli data --profile "$profile" --data-dir data --force 2>&1 | tee "$out/data.log"
echo "make data: exit $? after at most $seconds s"
# what it wrote: finished datasets, checkpoints, evaluation shards (never an atomic write's temporary)
find data -type f -newer "$stamp" ! -name '*.tmp' ! -name '.*' | sort > "$out/written.txt"
tar -cf "$out/data.tar" -T "$out/written.txt"
echo "packed $(wc -l < "$out/written.txt") files into data.tar:"; cat "$out/written.txt"
