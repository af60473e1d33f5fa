#!/usr/bin/env bash
# Coverage-guided fuzzing of Quanta's parsers with libFuzzer and AddressSanitizer.
#
#   Scripts/fuzz.sh NAME SECONDS      run harness NAME for SECONDS (0: until it finds something)
#   Scripts/fuzz.sh --smoke SECONDS [--no-build]   every harness for SECONDS each, one per core at a time
#                                     (QUANTA_FUZZ_JOBS overrides the count; the test command: 5 seconds)
#   Scripts/fuzz.sh --list            the harnesses
#   Scripts/fuzz.sh --no-build NAME SECONDS   as NAME SECONDS, with the harnesses already built
#   Scripts/fuzz.sh --build           only build the harnesses (--smoke --no-build runs them later)
#
# Harnesses live in Fuzz/Sources/fuzz-NAME, their committed seeds in Fuzz/Corpus/NAME (made by
# Scripts/fuzz_seeds.py from the repository's real files) and Fuzz/Regressions/NAME (inputs that
# once failed, each with a test), mutation dictionaries for JSON and YAML
# inputs in Fuzz/Dictionaries. What a run learns goes to
# .build-fuzz-work/corpus/NAME; a crash, leak, timeout or out-of-memory input to
# .build-fuzz-work/artifacts/NAME/ (rerun one with `.build-fuzz/release/fuzz-NAME FILE`); logs to
# .build-fuzz-work/logs. (SwiftPM's scratch folder .build-fuzz only holds the build.)
# Each run ends with a line: name, executions, seconds, coverage edges, features, corpus, peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."

harnesses=(json safetensors safetensors-index gguf gguf-model config quantized-folder tokenizer sentencepiece imatrix statistics logits recipe report)

usage() { echo "usage: Scripts/fuzz.sh NAME SECONDS | --smoke SECONDS [--no-build] | --build | --list" >&2; exit 64; }

build() {
    command -v pkg-config >/dev/null || bash Scripts/setup.sh
    mkdir -p .build-fuzz
    if ! swift build -c release --package-path Fuzz --scratch-path .build-fuzz \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld -Xswiftc -enable-testing >.build-fuzz/build.log 2>&1; then
        grep -v "warning: Cannot export local symbol" .build-fuzz/build.log | tail -40 >&2
        echo "fuzz.sh: the harnesses did not build" >&2
        exit 1
    fi
}

# run NAME SECONDS: one campaign; prints the summary line; returns non-zero when the harness failed.
run() {
    local name=$1 seconds=$2
    local bin=.build-fuzz/release/fuzz-$name work=.build-fuzz-work/corpus/$name artifacts=.build-fuzz-work/artifacts/$name
    local log=.build-fuzz-work/logs/$name.log scratch
    [[ -x $bin ]] || { echo "fuzz.sh: no harness '$name' (Scripts/fuzz.sh --list)" >&2; return 64; }
    mkdir -p "$work" "$artifacts" .build-fuzz-work/logs Fuzz/Corpus/"$name"
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/quanta-fuzz-run.XXXXXX")
    local extra=()
    case $name in
        json|safetensors|safetensors-index|config|quantized-folder|tokenizer|report) extra=(-dict=Fuzz/Dictionaries/json.dict) ;;
        recipe) extra=(-dict=Fuzz/Dictionaries/yaml.dict) ;;
    esac
    if [[ $name == imatrix ]]; then
        extra=(-seed_inputs=Tests/Fixtures/golden/austen-llama/austen-imatrix.gguf,Tests/Fixtures/golden/austen-llama/austen-imatrix.dat)
    fi
    # Inputs that once failed (kept outside the seeds Scripts/fuzz_seeds.py regenerates) run first too.
    local regressions=()
    [[ -d Fuzz/Regressions/$name ]] && regressions=(Fuzz/Regressions/"$name")
    local status=0 start=$SECONDS
    TMPDIR=$scratch SWIFT_BACKTRACE=enable=no QUANTA_FUZZ_FIXTURES=Fuzz/Fixtures ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
        "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "${extra[@]}" "$work" Fuzz/Corpus/"$name" "${regressions[@]}" >"$log" 2>&1 || status=$?
    rm -rf "$scratch"
    local execs edges features corpus rss
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
    edges=$(grep -ao 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    features=$(grep -ao 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    corpus=$(grep -ao 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -1 | cut -d' ' -f2)
    printf '%-18s %10s execs %6ss  cov %6s  ft %6s  corpus %-10s rss %5s MB  %s\n' "$name" "${execs:-?}" "$((SECONDS - start))" \
        "${edges:-?}" "${features:-?}" "${corpus:-?}" "${rss:-?}" "$([[ $status == 0 ]] && echo ok || echo "FAILED (see $log, $artifacts)")"
    if [[ $status != 0 ]]; then
        grep -aE "ERROR|Fatal error|SUMMARY|Test unit written" "$log" | head -8 >&2
    fi
    return $status
}

case "${1:-}" in
    --no-build)
        [[ $# == 3 ]] || usage
        run "$2" "$3"
        ;;
    --list) printf '%s\n' "${harnesses[@]}" ;;
    --build) build ;;
    --smoke)
        [[ $# == 2 || ( $# == 3 && $3 == --no-build ) ]] || usage
        [[ $# == 3 ]] || build
        # One harness per core at a time (each is single-threaded); lines printed in the list's order.
        jobs=${QUANTA_FUZZ_JOBS:-$(nproc)}
        outputs=$(mktemp -d "${TMPDIR:-/tmp}/quanta-fuzz-smoke.XXXXXX")
        trap 'rm -rf "$outputs"' EXIT
        running=0
        for name in "${harnesses[@]}"; do
            if (( running >= jobs )); then wait -n || true; running=$((running - 1)); fi
            ( run "$name" "$2" >"$outputs/$name.out" 2>&1; echo $? >"$outputs/$name.status" ) &
            running=$((running + 1))
        done
        wait
        failed=0
        for name in "${harnesses[@]}"; do
            cat "$outputs/$name.out"
            [[ $(cat "$outputs/$name.status" 2>/dev/null) == 0 ]] || failed=1
        done
        exit $failed
        ;;
    ""|-*) usage ;;
    *)
        [[ $# == 2 ]] || usage
        build
        run "$1" "$2"
        ;;
esac
