#!/usr/bin/env bash
# The main job on the bundled model: installs what is needed, builds Quanta (release),
# inspects Models/austen-llama and quantizes it to Q4_K_M (printing the per-tensor plan and
# the size) into out/austen-llama-Q4_K_M.gguf, then evaluates it against the fp32 model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/setup.sh
swift build -c release --product quanta
.build/release/quanta inspect Models/austen-llama
mkdir -p out
.build/release/quanta quantize Models/austen-llama out/austen-llama-Q4_K_M.gguf Q4_K_M
# Drift of the Q4_K_M file against the fp32 original on the held-out novel, with
# llama-perplexity's protocol (BOS on, as in the golden reference run).
.build/release/quanta eval out/austen-llama-Q4_K_M.gguf --text Calibration/austen-persuasion-eval.txt \
    --ctx 256 --chunks 40 --add-bos yes --batch 8 --baseline Models/austen-llama
