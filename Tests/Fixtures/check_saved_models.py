#!/usr/bin/env python3
"""check_saved_models.py: manual check that model folders Tycho writes (m:save) load in transformers and give
the logits Tycho computed.

    tycho run Tests/Fixtures/save_models_for_check.lua /tmp/tycho-saved   # writes folders + Tycho's logits
    python3 Tests/Fixtures/check_saved_models.py /tmp/tycho-saved

For every folder under the given directory (gpt2, llama, qwen2, sharded variants and randomly initialised
nn.gpt2/nn.llama models), loads it with AutoModelForCausalLM (eager attention, float32), runs the ids saved
beside it and compares with the logits Tycho wrote. Needs torch and transformers; the tests do not run it.
"""

import os
import sys

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM


def main():
    root = sys.argv[1]
    worst_all = 0.0
    for name in sorted(os.listdir(root)):
        folder = os.path.join(root, name)
        check = os.path.join(root, name + ".check.safetensors")
        if not os.path.isdir(folder) or not os.path.exists(check):
            continue
        ref = load_file(check)
        model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32)
        model.eval()
        with torch.no_grad():
            logits = model(ref["ids"].long()).logits
        worst = (logits - ref["logits"]).abs().max().item()
        worst_all = max(worst_all, worst)
        print(f"{name:12s} {type(model).__name__:22s} max |logits - Tycho's| = {worst:.3g}")
    print("worst", worst_all)
    sys.exit(0 if worst_all < 1e-4 else 1)


if __name__ == "__main__":
    main()
