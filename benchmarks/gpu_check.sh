#!/usr/bin/env bash
# The XLA backend on a GPU, in one short run: install, test, measure.
#
#   benchmarks/gpu_check.sh            # on a machine where JAX can see an NVIDIA GPU
#   PLATFORM=cpu benchmarks/gpu_check.sh   # the same steps on the host, to try the script
#
# 1. Installs ember with the xla and test extras and JAX's CUDA wheels, unless a python that
#    already sees the GPU through JAX is there (an offline machine: put wheels such as gguf's in
#    .whl/ and they are installed from there, with no index).
# 2. Runs the test suite: the seed's GPU examples execute on the GPU, the rest on XLA's CPU
#    devices and the native backend.
# 3. Reports each quantized format's largest difference from the reference on the device, and
#    benchmarks float32 and bfloat16 gathers on a 128256 x 4096 table against a device copy of
#    the same bytes (the bar: gather output bandwidth >= 80 % of the copy's).
set -euo pipefail
cd "$(dirname "$0")/.."
PLATFORM=${PLATFORM:-gpu}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

sees_platform() {
    "$1" -c "import jax, sys; sys.exit(jax.devices()[0].platform != '$PLATFORM')" 2>/dev/null
}

if [ -d .whl ]; then  # offline: wheels carried in, installed beside the image's packages
    "$PY" -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
if sees_platform "$PY"; then
    export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
else
    "$PY" -m venv .venv-gpu
    PY=.venv-gpu/bin/python
    "$PY" -m pip install -q --upgrade pip
    if [ "$PLATFORM" = gpu ]; then extra='jax[cuda13]'; else extra='jax'; fi
    "$PY" -m pip install -q -e '.[xla,test]' "$extra"
fi
if ! "$PY" -c "import gguf" 2>/dev/null; then  # the tests' reference decoder
    "$PY" -m pip install -q --target /tmp/site gguf \
        || echo "gguf is missing: carry its wheel in .whl/ (pip download --no-deps gguf -d .whl)"
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
"$PY" -c "import jax, ember; print('jax', jax.__version__, jax.devices(), 'ember', ember.__file__)"

echo "== tests"
"$PY" -m pytest -q -p no:cacheprovider tests src/ember

echo "== quantized lookups on $PLATFORM against the reference"
"$PY" benchmarks/xla_quant_diff.py --platform "$PLATFORM"

echo "== gather against a device copy of the same bytes"
"$PY" benchmarks/bench_xla.py --platform "$PLATFORM" --tokens 1 64 8192 32768 \
    --dtypes float32 bfloat16
