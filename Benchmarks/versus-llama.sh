#!/usr/bin/env bash
# Quanta against llama.cpp's own tools on one machine, one table per job:
#   quantize: `quanta quantize` vs `llama-quantize` for every preset (and, with an importance
#             matrix, the types that need or take one), with the outputs' tensors compared
#             (names, types, bytes) when the oracle venv of Scripts/setup.sh --oracles exists;
#   eval:     `quanta eval` vs `llama-perplexity` (ctx 512, 8 chunks) on the F32 model and on
#             Quanta's Q4_K_M of it under --runtime fp32 and --runtime llamacpp.
# Each pair runs through `quanta-bench versus` (alternating runs, medians, peak memory, the
# sgemm peak of the same run). llama.cpp is not part of Quanta: build its CPU tools yourself,
# outside this repository, and pass the folder holding llama-quantize and llama-perplexity.
#
# usage: bash Benchmarks/versus-llama.sh LLAMA_BIN_DIR MODEL_F32.gguf TEXT [RUNS] [IMATRIX.gguf]
#   RUNS defaults to 3; IMATRIX (GGUF importance matrix, e.g. from `quanta calibrate
#   --export-imatrix`) adds the types llama-quantize refuses without one (Q2_K_S, IQ1_S ...
#   IQ2_M), IQ3_XXS, IQ3_XS and Q4_K_M with it.
#   Set JOBS=quantize or JOBS=eval for one table only; THREADS (default: the online cores);
#   TYPES="F32 Q8_0" to time only those presets (without IMATRIX, no importance-matrix rows).
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }
bin=$(cd "$1" && pwd); model=$(realpath "$2"); text=$(realpath "$3"); runs=${4:-3}
imatrix=${5:+$(realpath "$5")}
jobs=${JOBS:-quantize eval}; threads=${THREADS:-$(nproc)}
for tool in llama-quantize llama-perplexity; do
    [ -x "$bin/$tool" ] || { echo "versus-llama.sh: $bin/$tool: not found or not executable" >&2; exit 66; }
done
[ -f "$model" ] || { echo "versus-llama.sh: $model: no such file" >&2; exit 66; }
[ -f "$text" ] || { echo "versus-llama.sh: $text: no such file" >&2; exit 66; }
cd "$(dirname "$0")/.."
swift build -c release --static-swift-stdlib --product quanta >/dev/null
swift build -c release --static-swift-stdlib --product quanta-bench >/dev/null
quanta=$PWD/.build/release/quanta; bench=$PWD/.build/release/quanta-bench
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

# Medians of the two commands (quanta first) from quanta-bench versus: "QUANTA_S LLAMA_S QUANTA_MB LLAMA_MB".
versus() {
    "$bench" versus --runs "$runs" --warmup 1 --command "$1" --command "$2" >"$work/versus.txt" 2>&1 || { cat "$work/versus.txt" >&2; exit 1; }
    awk '$1 == "1" || $1 == "2" { wall[$1] = $2; mb[$1] = $4 } END { print wall[1], wall[2], mb[1], mb[2] }' "$work/versus.txt"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
# Tensor names, types and data of two GGUF files compared by the oracle venv's gguf reader
# (Quanta's files also carry its version and recipe in the metadata, so whole files differ).
python=${QUANTA_PYTHON:-${QUANTA_CACHE:-$HOME/.cache/quanta}/venv/bin/python}
same_tensors() {
    [ -x "$python" ] || { echo "not checked (no $python)"; return; }
    "$python" - "$1" "$2" <<'PY'
import sys, gguf
a, b = (gguf.GGUFReader(p) for p in sys.argv[1:3])
ta, tb = {t.name: t for t in a.tensors}, {t.name: t for t in b.tensors}
bad = [n for n in tb if n not in ta or ta[n].tensor_type != tb[n].tensor_type or ta[n].data.tobytes() != tb[n].data.tobytes()]
bad += [n for n in ta if n not in tb]
print(f"identical ({len(tb)} tensors)" if not bad else f"{len(bad)} tensors differ, first {bad[0]}")
PY
}

if [[ " $jobs " == *" quantize "* ]]; then
    types=${TYPES:-F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K IQ4_NL IQ4_XS IQ3_S IQ3_M TQ1_0 TQ2_0}
    echo "quantize $model ($threads threads, medians of $runs)"
    echo "| type | quanta s | llama-quantize s | quanta / llama | bytes |"
    echo "|---|---|---|---|---|"
    run_type() {  # type, extra args for both tools, label
        local type=$1 extra=$2 label=$3
        read -r q l _ _ < <(versus "$quanta quantize $extra --threads $threads $model $work/q.gguf $type" \
                                   "$bin/llama-quantize $extra $model $work/l.gguf $type $threads")
        echo "| $label | $q | $l | $(ratio "$q" "$l") | $(same_tensors "$work/q.gguf" "$work/l.gguf") |"
        rm -f "$work/q.gguf" "$work/l.gguf"
    }
    for type in $types; do run_type "$type" "" "$type"; done
    if [ -n "$imatrix" ]; then
        for type in Q2_K_S IQ1_S IQ1_M IQ2_XXS IQ2_XS IQ2_S IQ2_M IQ3_XXS IQ3_XS Q4_K_M; do
            run_type "$type" "--imatrix $imatrix" "$type + imatrix"
        done
    fi
    echo
fi

if [[ " $jobs " == *" eval "* ]]; then
    "$quanta" quantize "$model" "$work/q4km.gguf" Q4_K_M >/dev/null
    echo "eval on $text: ctx 512, 8 chunks, $threads threads (medians of $runs)"
    echo "| model | runtime | quanta s | llama-perplexity s | llama / quanta | quanta MB | llama MB |"
    echo "|---|---|---|---|---|---|---|"
    for job in "F32 $model fp32" "Q4_K_M $work/q4km.gguf fp32" "Q4_K_M $work/q4km.gguf llamacpp"; do
        set -- $job
        read -r q l qm lm < <(versus "$quanta eval $2 --text $text --ctx 512 --chunks 8 --threads $threads --runtime $3" \
                                       "$bin/llama-perplexity -m $2 -f $text -c 512 --chunks 8 -t $threads -tb $threads")
        echo "| $1 | $3 | $q | $l | $(ratio "$l" "$q") | $qm | $lm |"
    done
    echo
fi
grep -m1 'sgemm peak' "$work/versus.txt" || true
