#!/usr/bin/env bash
# setup.sh: from a fresh clone to the main job. Installs missing Debian packages, builds Tycho in release
# mode and runs the main job: Scripts/sft.lua trains a small GPT-2 from scratch on the licence texts in
# Scripts/data, checks it against the unigram baseline, saves it (runs/sft/model), reloads it and continues.
# Usage: bash Scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/deps.sh
swift build -c release
echo "Built .build/release/tycho"
.build/release/tycho run Scripts/sft.lua
