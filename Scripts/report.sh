#!/bin/bash
# The project's own comparison on the bundled model (Reports/austen-llama).
#   bash Scripts/report.sh             regenerate Reports/austen-llama (report.json, .md, .html)
#   bash Scripts/report.sh --check     regenerate into a scratch folder and gate it against the
#                                      committed report (fails when a row's mean KLD grows > 5%)
#   bash Scripts/report.sh --screenshot  also render report.html with headless Chromium (apt) to report.png
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
# --check runs the debug build the test suite made (QUANTA overrides); the committed report is made in release.
if [ "$mode" = "--check" ]; then
  Q=${QUANTA:-.build/debug/quanta}
else
  swift build -c release --static-swift-stdlib --product quanta >&2
  Q=.build/release/quanta
fi
presets=F16,Q8_0,Q6_K,Q5_K_M,Q5_K_S,Q5_1,Q5_0,Q4_K_M,Q4_K_S,Q4_1,Q4_0,IQ4_NL,IQ4_XS,Q3_K_L,Q3_K_M,Q3_K_S,Q2_K
schemes=$(echo "$presets" | sed 's/\([^,]*\)/rtn:\1/g'),Q2_K,Q3_K_M,Q4_K_M,IQ4_XS,gptq:Q4_K_M,gptq:w4g128,awq:w4g128,awq+gptq:w4g128,mixed:Q4_K_M-size@calib-wiki
args=(compare Models/austen-llama --schemes "$schemes"
      --calib Calibration/calib-wiki.txt,Calibration/calib-c4.txt,Calibration/austen-train.txt
      --samples 64 --seq-len 256 --seed 0
      --eval Calibration/austen-persuasion-eval.txt --ctx 256 --chunks 40 --add-bos yes)
case "$mode" in
  --check)
    out=$(mktemp -d /tmp/quanta-report-XXXXXX)
    trap 'rm -rf "$out"' EXIT
    # The committed sensitivity table is reused when the calibration gives the same importance
    # matrix (it is keyed by the weights', text's and importance's checksums); otherwise it is measured again.
    mkdir "$out/cache" && cp Reports/austen-llama/cache/*.h5 "$out/cache/" 2>/dev/null || true
    "$Q" "${args[@]}" --out "$out" --sensitivity-cache "$out/cache"
    "$Q" gate "$out/report.json" --baseline Reports/austen-llama/report.json --max-regression 5% \
      --junit "$out/junit.xml" --summary "$out/summary.md" > /dev/null || { cat "$out/summary.md"; exit 1; }
    echo "report gate: every row within 5% of Reports/austen-llama/report.json"
    ;;
  ""|--screenshot)
    mkdir -p Reports/austen-llama/cache
    "$Q" "${args[@]}" --out Reports/austen-llama --sensitivity-cache Reports/austen-llama/cache
    if [ "$mode" = "--screenshot" ]; then
      command -v chromium >/dev/null || sudo_apt=1
      if [ -n "${sudo_apt:-}" ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >&2; fi
      chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,2400 \
        --screenshot="$PWD/Reports/austen-llama/report.png" "file://$PWD/Reports/austen-llama/report.html" >/dev/null 2>&1
      test -s Reports/austen-llama/report.png
      echo "wrote Reports/austen-llama/report.png (report.html as headless Chromium renders it)"
    fi
    ;;
  *) echo "usage: $0 [--check|--screenshot]" >&2; exit 64 ;;
esac
