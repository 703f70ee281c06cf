#!/usr/bin/env bash
# test.sh: the whole test suite (Swift unit tests, Tests/lua/*.lua through the host, CLI and REPL tests).
# Installs missing Debian packages first. Usage: bash Scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/deps.sh
swift test "$@"
