#!/usr/bin/env python3
"""check_saved_tokenizers.py: do the tokenizer.json files that Tycho writes load in Hugging Face `tokenizers`
with the same ids? (A manual check; the test suite never needs Python.)

Runs the built `tycho` to train a byte-level BPE (tok.train_bpe) on tokenizer/corpus.txt and to make a bytes
tokenizer (tok.bytes), saves both, and writes Tycho's ids for every case string of tokenizer/cases.lua; then
loads the saved files with `tokenizers` and compares the ids case by case.
    swift build && python3 Tests/Fixtures/check_saved_tokenizers.py [path/to/tycho]
"""

import os
import subprocess
import sys
import tempfile

from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "tokenizer")

LUA = r"""
local dir, fix = ...
local C = dofile(fix .. "/cases.lua")
local made = {
  trained = tok.train_bpe{files = {fix .. "/corpus.txt"}, vocab_size = 600, special_tokens = {"<|endoftext|>", "<|pad|>"}},
  bytes = tok.bytes{special_tokens = {"<|endoftext|>", "<|pad|>"}},
}
for name, t in pairs(made) do
  t:save(dir .. "/" .. name .. ".json")
  local f = io.open(dir .. "/" .. name .. ".ids", "w")
  for _, c in ipairs(C.cases) do f:write(table.concat(t:encode(c.text), ","), "\n") end
  f:close()
end
"""


def main():
    tycho = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", ".build", "debug", "tycho")
    with tempfile.TemporaryDirectory() as d:
        script = os.path.join(d, "make.lua")
        with open(script, "w") as f:
            f.write(LUA)
        subprocess.run([tycho, "-e", f"assert(loadfile({script!r}))({d!r}, {FIX!r})"], check=True)
        texts = [c for c in _case_texts()]
        bad = 0
        for name in ["trained", "bytes"]:
            tok = Tokenizer.from_file(os.path.join(d, name + ".json"))
            with open(os.path.join(d, name + ".ids")) as f:
                lines = f.read().split("\n")
            for text, line in zip(texts, lines):
                want = [int(x) for x in line.split(",")] if line else []
                got = tok.encode(text).ids
                if got != want:
                    bad += 1
                    print(f"NOT OK {name} {text[:40]!r}: tokenizers {got[:8]} tycho {want[:8]}")
            print(f"{name}: {len(texts)} cases, vocab {tok.get_vocab_size()}")
        print(f"{len(texts) * 2 - bad} passed, {bad} failed")
        sys.exit(1 if bad else 0)


def _case_texts():
    import json
    with open(os.path.join(FIX, "cases.json"), encoding="utf-8") as f:
        return [c["text"] for c in json.load(f)["cases"]]


if __name__ == "__main__":
    main()
