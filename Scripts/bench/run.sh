#!/usr/bin/env bash
# Scripts/bench/run.sh: builds Tycho (release), runs the matmul and element-wise benchmarks together with
# their comparisons (OpenBLAS's own sgemm, PyTorch) in the same run, and prints the tables.
#   Scripts/bench/run.sh [quick] [threads=1,2] [rounds=N] [only=matmul|elementwise] [interleave] [scratch=DIR]
# quick: fewer sizes and repeats (about a minute); rounds=N: run every implementation N times, alternating,
# and report the median (the VM is noisy); only=: one of the two benchmarks; interleave: element-wise
# operations alternate between Tycho and PyTorch one operation at a time, so that each pair is measured
# seconds apart (other load on the VM comes and goes within a program's run); scratch=DIR: SwiftPM's build
# directory (default .build). Raw result lines are kept in DIR/bench-results.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."

rounds=1
only=all
interleave=no
scratch=.build
args=()
for a in "$@"; do
    case "$a" in
        rounds=*) rounds="${a#rounds=}" ;;
        only=*) only="${a#only=}" ;;
        interleave) interleave=yes ;;
        scratch=*) scratch="${a#scratch=}" ;;
        *) args+=("$a") ;;
    esac
done

echo "== building (release)" >&2
swift build -c release --scratch-path "$scratch" >&2
tycho="$scratch/release/tycho"

if [ "$only" != elementwise ]; then
    echo "== compiling Scripts/bench/sgemm_openblas.c" >&2
    cc -O2 -o "$scratch/sgemm_openblas" Scripts/bench/sgemm_openblas.c $(pkg-config --cflags --libs openblas)
fi

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

# The element-wise cases of elementwise.lua, for interleaving.
ewops="add mul exp log tanh sigmoid silu gelu gelu_tanh badd sum softmax log_softmax logsumexp"

out="$scratch/bench-results.txt"
: > "$out"
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" | tee -a "$out" >&2
for r in $(seq 1 "$rounds"); do
    echo "== round $r of $rounds" >&2
    if [ "$only" != elementwise ]; then
        "$tycho" run Scripts/bench/matmul.lua "${args[@]}" | tee -a "$out"
        "$scratch/sgemm_openblas" "${args[@]}" | tee -a "$out"
        "$scratch/sgemm_openblas" core=default "${args[@]}" | tee -a "$out"
        if [ "$torch" = yes ]; then python3 Scripts/bench/matmul_torch.py "${args[@]}" | tee -a "$out"; fi
    fi
    if [ "$only" != matmul ]; then
        if [ "$interleave" = yes ] && [ "$torch" = yes ]; then
            for op in $ewops; do
                "$tycho" run Scripts/bench/elementwise.lua "${args[@]}" ops="$op" | tee -a "$out"
                python3 Scripts/bench/elementwise_torch.py "${args[@]}" ops="$op" | tee -a "$out"
            done
        else
            "$tycho" run Scripts/bench/elementwise.lua "${args[@]}" | tee -a "$out"
            if [ "$torch" = yes ]; then python3 Scripts/bench/elementwise_torch.py "${args[@]}" | tee -a "$out"; fi
        fi
    fi
done
echo
python3 Scripts/bench/table.py "$out"
