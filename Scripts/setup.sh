#!/usr/bin/env bash
# setup.sh: from a fresh clone to the main job. Installs missing Debian packages, builds Tycho in release
# mode and runs the main job: Scripts/quickstart.lua (two-digit addition: SFT of a small GPT-2 from scratch,
# preference pairs from its own graded samples, DPO with checkpoints and a rollback, an eval table before/after).
# Usage: bash Scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/deps.sh
swift build -c release
echo "Built .build/release/tycho"
.build/release/tycho run Scripts/quickstart.lua
