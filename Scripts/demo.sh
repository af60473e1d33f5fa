#!/usr/bin/env bash
# The main job on the bundled model: installs what is needed, builds Quanta (release) and
# inspects Models/austen-llama.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/setup.sh
swift build -c release --product quanta
.build/release/quanta inspect Models/austen-llama
