#!/usr/bin/env bash
# setup.sh: from a fresh clone to the main job. Installs missing Debian packages, builds Tycho in release
# mode and runs the demo. Usage: bash Scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/deps.sh
swift build -c release
echo "Built .build/release/tycho"
.build/release/tycho run Scripts/demo.lua
