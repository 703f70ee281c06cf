#!/usr/bin/env bash
# test.sh: the whole test suite (Swift unit tests, Tests/lua/*.lua through the host, CLI, REPL, notebook and kernel tests).
# Installs missing Debian packages first. Usage: bash Scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/deps.sh
# Test-time Python oracles for the notebook and kernel tests (nbformat's validator, jupyter_client, nbclient,
# jupyter_kernel_test), pinned, from PyPI, in .venv (the tests use .venv/bin/python3 when it exists).
if command -v python3 >/dev/null; then
  if ! .venv/bin/python3 -c "import nbformat, jupyter_client, nbclient, jupyter_kernel_test" 2>/dev/null; then
    echo "Installing the Python test packages into .venv"
    { python3 -m venv .venv && .venv/bin/python3 -m pip install --quiet --disable-pip-version-check \
        nbformat==5.11.1 jupyter_client==8.10.0 nbclient==0.11.0 jupyter_kernel_test==0.7.0; } \
      || echo "warning: could not install the Python test packages: the notebook tests will fail" >&2
  fi
fi
swift test "$@"
