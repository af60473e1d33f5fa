#!/usr/bin/env bash
# The main job on the bundled model: installs what is needed, builds Quanta (release), then
# calibrates Models/austen-llama, quantizes it (llama.cpp's Q4_K_M with the importance matrix, and
# a mixed-precision file of the same size), and compares schemes in a report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/setup.sh
swift build -c release --static-swift-stdlib --product quanta
Q=.build/release/quanta
$Q inspect Models/austen-llama
mkdir -p out
$Q calibrate Models/austen-llama --data Calibration/calib-wiki.txt --samples 64 --seq-len 256 --out out/stats.h5
$Q quantize Models/austen-llama out/austen-llama-Q4_K_M.gguf Q4_K_M --stats out/stats.h5
size=$(stat -c %s out/austen-llama-Q4_K_M.gguf)
$Q quantize Models/austen-llama out/austen-llama-mixed.gguf --target-size "$size" --stats out/stats.h5
# Drift against the fp32 original on the held-out novel, with llama-perplexity's protocol.
$Q eval out/austen-llama-mixed.gguf --text Calibration/austen-persuasion-eval.txt \
    --ctx 256 --chunks 40 --add-bos yes --baseline Models/austen-llama
$Q compare Models/austen-llama --schemes rtn:Q4_K_M,Q4_K_M,gptq:Q4_K_M,rtn:w4g128,gptq:w4g128,mixed:Q4_K_M-size \
    --calib Calibration/calib-wiki.txt --samples 64 --seq-len 256 \
    --eval Calibration/austen-persuasion-eval.txt --ctx 256 --chunks 40 --add-bos yes --out out/report
echo "report: out/report/report.md and out/report/report.html"
