#!/usr/bin/env bash
# Scripts/bench/run.sh: builds Tycho (release), runs the matmul and element-wise benchmarks together with
# their comparisons (OpenBLAS's own sgemm, PyTorch) in the same run, and prints the tables.
#   Scripts/bench/run.sh [quick] [threads=1,2] [rounds=N]
# quick: fewer sizes and repeats (about a minute); rounds=N: run every implementation N times, alternating,
# and report the median (the VM is noisy). Raw result lines are kept in .build/bench-results.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."

rounds=1
args=()
for a in "$@"; do
    case "$a" in
        rounds=*) rounds="${a#rounds=}" ;;
        *) args+=("$a") ;;
    esac
done

echo "== building (release)" >&2
swift build -c release >&2
tycho=.build/release/tycho

echo "== compiling Scripts/bench/sgemm_openblas.c" >&2
cc -O2 -o .build/sgemm_openblas Scripts/bench/sgemm_openblas.c $(pkg-config --cflags --libs openblas)

torch=yes
if ! python3 -c 'import torch' 2>/dev/null; then
    if ls /opt/wheels/torch-2.13.0+cpu-*.whl >/dev/null 2>&1; then
        echo "== installing the CPU-only torch wheel from /opt/wheels" >&2
        python3 -m pip install --quiet --find-links /opt/wheels torch==2.13.0+cpu >&2
    else
        echo "== no torch and no wheel in /opt/wheels: skipping the PyTorch comparison" >&2
        torch=no
    fi
fi

out=.build/bench-results.txt
: > "$out"
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" | tee -a "$out" >&2
for r in $(seq 1 "$rounds"); do
    echo "== round $r of $rounds" >&2
    "$tycho" run Scripts/bench/matmul.lua "${args[@]}" | tee -a "$out"
    .build/sgemm_openblas "${args[@]}" | tee -a "$out"
    .build/sgemm_openblas core=default "${args[@]}" | tee -a "$out"
    if [ "$torch" = yes ]; then python3 Scripts/bench/matmul_torch.py "${args[@]}" | tee -a "$out"; fi
    "$tycho" run Scripts/bench/elementwise.lua "${args[@]}" | tee -a "$out"
    if [ "$torch" = yes ]; then python3 Scripts/bench/elementwise_torch.py "${args[@]}" | tee -a "$out"; fi
done
echo
python3 Scripts/bench/table.py "$out"
