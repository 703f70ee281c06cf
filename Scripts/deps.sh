#!/usr/bin/env bash
# deps.sh: installs the Debian packages Tycho needs, when missing (sourced by setup.sh and test.sh).
#   liblua5.4-dev, libreadline-dev, libopenblas-dev: the system parts Tycho links
#   libzmq3-dev: ZeroMQ for the Jupyter kernel (tycho kernel)
#   pkg-config: how Package.swift finds them; tmux: drives the REPL test in a real terminal
#   python3-venv: the test-time Python packages (Scripts/test.sh) go into a venv
set -euo pipefail
packages=(liblua5.4-dev libreadline-dev libopenblas-dev libzmq3-dev pkg-config tmux python3-venv)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "swift is not on PATH (install Swift 6 first)" >&2; exit 1; }
