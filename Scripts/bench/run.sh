#!/usr/bin/env bash
# Scripts/bench/run.sh: builds Tycho (release), runs the matmul and element-wise benchmarks together with
# their comparisons (OpenBLAS's own sgemm, PyTorch) in the same run, and prints the tables.
#   Scripts/bench/run.sh [quick] [threads=1,2] [rounds=N] [only=matmul|elementwise|dpo_step] [interleave] [scratch=DIR]
# quick: fewer sizes and repeats (about a minute); rounds=N: run every implementation N times, alternating,
# and report the median (the VM is noisy); only=: one of the benchmarks; interleave: element-wise
# operations alternate between Tycho and PyTorch one operation at a time, so that each pair is measured
# seconds apart (other load on the VM comes and goes within a program's run); scratch=DIR: SwiftPM's build
# directory (default .build). With the element-wise benchmark, kernels.c times the C kernels alone.
# only=dpo_step (not part of the default run: about 4 minutes a round) times the DPO step of dpo_step.lua and
# dpo_step_torch.py, one (config, threads) case at a time, Tycho and PyTorch back to back (PyTorch first in
# even rounds); it takes configs=A,B, threads=, steps=N, cpu (1-thread cases in CPU time) and parts.
# Raw result lines are kept in DIR/bench-results.txt.
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

if [ "$only" = all ] || [ "$only" = matmul ]; then
    echo "== compiling Scripts/bench/sgemm_openblas.c" >&2
    cc -O2 -o "$scratch/sgemm_openblas" Scripts/bench/sgemm_openblas.c $(pkg-config --cflags --libs openblas)
fi
if [ "$only" = all ] || [ "$only" = elementwise ]; then
    echo "== compiling Scripts/bench/kernels.c" >&2
    clang -O2 -I Sources/CTensorKernels/include -o "$scratch/kernels" Scripts/bench/kernels.c \
        Sources/CTensorKernels/*.c -lm
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

# The DPO step's options: its own configs= and threads= loops here; steps=, cpu and parts go to both scripts.
dpo_configs=A,B
dpo_threads=1,2
dpo_args=()
for a in "${args[@]}"; do
    case "$a" in
        configs=*) dpo_configs="${a#configs=}" ;;
        threads=*) dpo_threads="${a#threads=}" ;;
        steps=*|cpu|parts) dpo_args+=("$a") ;;
    esac
done

# The element-wise cases of elementwise.lua, for interleaving.
ewops="add mul exp log tanh sigmoid silu gelu gelu_tanh badd sum softmax log_softmax logsumexp"

out="$scratch/bench-results.txt"
: > "$out"
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" | tee -a "$out" >&2
for r in $(seq 1 "$rounds"); do
    echo "== round $r of $rounds" >&2
    if [ "$only" = all ] || [ "$only" = matmul ]; then
        "$tycho" run Scripts/bench/matmul.lua "${args[@]}" | tee -a "$out"
        "$scratch/sgemm_openblas" "${args[@]}" | tee -a "$out"
        "$scratch/sgemm_openblas" core=default "${args[@]}" | tee -a "$out"
        if [ "$torch" = yes ]; then python3 Scripts/bench/matmul_torch.py "${args[@]}" | tee -a "$out"; fi
    fi
    if [ "$only" = all ] || [ "$only" = elementwise ]; then
        if [ "$interleave" = yes ] && [ "$torch" = yes ]; then
            for op in $ewops; do
                "$tycho" run Scripts/bench/elementwise.lua "${args[@]}" ops="$op" | tee -a "$out"
                python3 Scripts/bench/elementwise_torch.py "${args[@]}" ops="$op" | tee -a "$out"
            done
        else
            "$tycho" run Scripts/bench/elementwise.lua "${args[@]}" | tee -a "$out"
            if [ "$torch" = yes ]; then python3 Scripts/bench/elementwise_torch.py "${args[@]}" | tee -a "$out"; fi
        fi
        "$scratch/kernels" | tee -a "$out"
    fi
    if [ "$only" = dpo_step ]; then
        # One (config, threads) case at a time, both implementations back to back, so each pair sees the same
        # load; the order flips every round.
        for c in ${dpo_configs//,/ }; do
            for t in ${dpo_threads//,/ }; do
                echo "== dpo_step config $c, $t thread(s), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
                runs=(tycho torch)
                if [ $((r % 2)) = 0 ]; then runs=(torch tycho); fi
                for impl in "${runs[@]}"; do
                    if [ "$impl" = tycho ]; then
                        "$tycho" run Scripts/bench/dpo_step.lua configs="$c" threads="$t" "${dpo_args[@]}" | tee -a "$out"
                    elif [ "$torch" = yes ]; then
                        python3 Scripts/bench/dpo_step_torch.py configs="$c" threads="$t" "${dpo_args[@]}" | tee -a "$out"
                    fi
                done
            done
        done
    fi
done
echo
python3 Scripts/bench/table.py "$out"
