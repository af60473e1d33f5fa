#!/usr/bin/env bash
# The main job on the bundled model: installs what is needed, builds Quanta (release),
# inspects Models/austen-llama and quantizes it to Q4_K_M (printing the per-tensor plan and
# the size) into out/austen-llama-Q4_K_M.gguf.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/setup.sh
swift build -c release --product quanta
.build/release/quanta inspect Models/austen-llama
mkdir -p out
.build/release/quanta quantize Models/austen-llama out/austen-llama-Q4_K_M.gguf Q4_K_M
