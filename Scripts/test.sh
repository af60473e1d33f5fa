#!/usr/bin/env bash
# The whole test suite: installs the system libraries, the Python test oracles and the
# SmolLM2 test model, then runs `swift test`, the report gate and the fuzzers' smoke runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/setup.sh
# The Python oracles and the SmolLM2 test model download while the tests compile.
setup_log=$(mktemp)
bash Scripts/setup.sh --oracles --smollm2 --torch --mlx >"$setup_log" 2>&1 &
setup=$!
trap 'kill $setup 2>/dev/null || true; rm -f "$setup_log"' EXIT
swift build --build-tests
status=0
wait $setup || status=$?
cat "$setup_log"
[ $status -eq 0 ] || { echo "test.sh: Scripts/setup.sh failed ($status)" >&2; exit $status; }
cache="${QUANTA_CACHE:-$HOME/.cache/quanta}"
export QUANTA_PYTHON="$cache/venv/bin/python"
export QUANTA_SMOLLM2="$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
# The fuzz harnesses (a separate build with AddressSanitizer) compile while the tests run.
bash Scripts/fuzz.sh --build &
fuzz_build=$!
trap 'kill $fuzz_build 2>/dev/null || true; rm -f "$setup_log"' EXIT
# Two test processes at a time (one per core): much of a test is a single-threaded Python oracle.
swift test --skip-build --disable-swift-testing --parallel
# The project's own comparison, regenerated and gated against the committed Reports/austen-llama.
bash Scripts/report.sh --check
# Every parser's libFuzzer harness for 5 s (its committed seeds, then mutations): a crash, leak,
# hang or out-of-memory input fails the run.
wait $fuzz_build
bash Scripts/fuzz.sh --smoke 5 --no-build
