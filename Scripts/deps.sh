#!/usr/bin/env bash
# deps.sh: installs the Debian packages Tycho needs, when missing (sourced by setup.sh and test.sh).
#   liblua5.4-dev, libreadline-dev, libopenblas-dev: the system parts Tycho links
#   pkg-config: how Package.swift finds them; tmux: drives the REPL test in a real terminal
set -euo pipefail
packages=(liblua5.4-dev libreadline-dev libopenblas-dev pkg-config tmux)
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
