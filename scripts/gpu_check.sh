#!/usr/bin/env bash
# Issue 18's checks on a machine with an NVIDIA GPU, in one go: builds, runs the GPU tests and
# prints the GPU benchmarks beside the CPU ones and beside Python xgboost and PyTorch on the same
# GPU.
#
#   scripts/gpu_check.sh            (from the repository; needs Swift 6, the Debian packages
#                                    `make deps` installs, and pip)
#
# The CUDA libraries come from pip wheels (CUDA 12: nvidia-cuda-runtime-cu12, nvidia-cublas-cu12,
# nvidia-cuda-nvrtc-cu12; CUDA 13's nvidia-* wheels work too) or VANE_CUDA_LIBRARY_PATH (a CUDA
# toolkit's lib64); XGBoost's CUDA build is the pip xgboost wheel's. `vane version` prints what
# was found. Exit status: 0 when every check passed, 1 when one failed, 2 without a GPU.
set -uo pipefail
cd "$(dirname "$0")/.."

if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L; then
  echo "gpu_check: no NVIDIA GPU here (nvidia-smi lists none)" >&2
  exit 2
fi
# The wheels' libraries are looked for in the active Python's site-packages.
export VIRTUAL_ENV="${VIRTUAL_ENV:-$(python3 -c 'import sys; print(sys.prefix)')}"
python3 -c "import nvidia.cublas, nvidia.cuda_nvrtc, nvidia.cuda_runtime, xgboost" 2>/dev/null ||
  python3 -m pip install -q nvidia-cuda-runtime-cu12 nvidia-cublas-cu12 nvidia-cuda-nvrtc-cu12 xgboost ||
  { echo "gpu_check: cannot install the CUDA and xgboost wheels" >&2; exit 1; }

failed=0
make deps >/dev/null || exit 1
swift build --build-tests || exit 1
bin=$(swift build --show-bin-path)
"$bin/vane" version

export OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE="$("$bin/vane" version --blas-core)"
# The GPU tests: the training kernels on the device beside their host build (bit for bit
# where no transcendental is involved, run to run), SGEMM against OpenBLAS, and XGBoost with
# device=cuda against its CPU fit, the MLP trained on the GPU against the CPU (loss per epoch,
# predictions, run to run, cancellation), and the LSTM likewise; then the CPU-side CUDA, XGBoost,
# MLP and LSTM suites.
swift test --skip-build --filter 'CUDA|onGPU|XGBoost|MLPTests|LSTMTests' || failed=1

swift build -c release -Xswiftc -cross-module-optimization --product vane || exit 1
release=$(swift build -c release --show-bin-path)/vane
# The toolchain bug that made a release LSTM catch an error nobody threw (see the script).
python3 scripts/check_error_register.py "$release" || exit 1
market=${VANE_MARKET:-../shared/data/market}
# XGBoost's fit and the MLP's and LSTM's epochs, on 2 CPU cores and on the GPU, each beside
# Python xgboost and PyTorch on the same device.
for device in cpu cuda; do
  echo "== vane bench models --only xgboost,mlp,lstm --device $device"
  "$release" bench models --market "$market" --only xgboost,mlp,lstm --device "$device" || failed=1
done
# The walk-forward job (vane bench train defaults) on 2 CPU cores and on the GPU (target: 5x);
# compare the two "total" lines.
for device in cpu cuda; do
  echo "== vane bench train --device $device"
  "$release" bench train --market "$market" --device "$device" || failed=1
done
exit $failed
