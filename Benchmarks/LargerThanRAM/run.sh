#!/usr/bin/env bash
# Larger than RAM: a synthetic Llama fp32 folder bigger than the machine's memory, quantized to
# Q4_K_M and calibrated on a few short samples, with peak RSS and time from /usr/bin/time -v.
# Not in CI. Usage: bash Benchmarks/LargerThanRAM/run.sh [SIZE_GB (default: RAM + 4)] [WORK_DIR (default: /tmp/quanta-larger-than-ram)]
# Needs the oracle venv (numpy) from Scripts/setup.sh --oracles and about SIZE_GB x 1.2 of free disk.
set -euo pipefail
cd "$(dirname "$0")/../.."
ram_gb=$(awk '/MemTotal/ { printf "%d", $2 / 1e6 }' /proc/meminfo)
size=${1:-$((ram_gb + 4))}
work=${2:-/tmp/quanta-larger-than-ram}
python="${QUANTA_PYTHON:-$HOME/.cache/quanta/venv/bin/python}"
swift build -c release --product quanta >&2
mkdir -p "$work"
trap 'rm -rf "$work/model" "$work/model-Q4_K_M.gguf" "$work/stats.h5"' EXIT
echo "RAM ${ram_gb} GB; writing a ${size} GB synthetic folder to $work/model" >&2
"$python" Benchmarks/LargerThanRAM/synthetic_llama.py "$work/model" "$size" Models/austen-llama
du -sh "$work/model" >&2
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
measure() {
  /usr/bin/time -v "$@" 2> "$work/time.txt" >&2
  grep -E "Elapsed \(wall|Maximum resident" "$work/time.txt" | sed 's/^\s*/  /'
}
echo "quantize to Q4_K_M:"
measure .build/release/quanta quantize "$work/model" "$work/model-Q4_K_M.gguf" Q4_K_M
ls -l "$work/model-Q4_K_M.gguf" | awk '{ printf "  output %.2f GB\n", $5 / 1e9 }'
echo "calibrate, 4 samples of 64 tokens, diagonal statistics:"
measure .build/release/quanta calibrate "$work/model" --data Calibration/calib-wiki.txt --samples 4 --seq-len 64 --hessian diag --out "$work/stats.h5"
