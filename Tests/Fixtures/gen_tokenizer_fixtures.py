#!/usr/bin/env python3
"""gen_tokenizer_fixtures.py: the reference tokenizers and encodings that TychoText and tokenizer.lua check.

Trains two small byte-level BPE tokenizers with Hugging Face `tokenizers` on the committed local corpus
tokenizer/corpus.txt and writes, under tokenizer/:
  gpt2.json         GPT-2 style: ByteLevel pre-tokenizer (GPT-2 regex), specials <|endoftext|> and <|pad|>, one
                    non-special added token <tool>, ByteLevel post-processor and decoder.
  llama3.json       Llama-3/SmolLM style: Split(Llama-3 regex, Isolated) + ByteLevel(use_regex=false),
                    ignore_merges=true, TemplateProcessing that adds <|begin_of_text|>.
  cases.json        For every case string: the ids with and without special tokens, decode results with and
  cases.lua         without skip_special_tokens. cases.json (read by the Swift tests) also holds fuzzed strings with
                    the byte-level pre-token pieces of both pre-tokenizers; cases.lua (tokenizer.lua) the cases only.
Tests never need Python: rerun only after changing the corpus, the cases or the `tokenizers` version:
    pip install tokenizers && python3 Tests/Fixtures/gen_tokenizer_fixtures.py
"""

import json
import os
import random

import tokenizers
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "tokenizer")
CORPUS = os.path.join(OUT, "corpus.txt")
SEED = 20261127

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")

CASES = [
    "",
    "Hello world",
    "Hello, world! How's it going? I'm fine; they'll see, we've won, you'd know, she's 'quoted'.",
    "IT'S LOUD AND THEY'LL HEAR, WE'VE SEEN, I'M SURE, YOU'D BE, HE'S GONE, DON'T.",
    "   leading spaces and trailing spaces   ",
    "a  b   c    d\t\te\n\nf \n g\r\nh\r\n\r\n",
    "    ",
    "\n",
    " \n \n\n  \t ",
    "tabs\tand\ttabs\t\t\tend\t",
    "0 1 12 123 1234 12345 123456 3.14159 -42 1e-5 0xFF 1,000,000 2024-06-11",
    "Punctuation!!! ... ?!? --- ((nested)) [[x]] {{y}} <<z>> \"q\" 'r' `s` ~~ ## @@ $$ %% ^^ && ** __ ++ == || \\\\ //",
    "def f(x):\n    return x ** 2 + 1  # comment\n\nprint(f(3))\n",
    "local t = {1, 2, 3}; for i, v in ipairs(t) do print(i, v) end",
    "café naïve résumé façade jalapeño Zürich Øresund Ångström São Kraków İstanbul Straße",
    "Привет, мир! Γειά σου Κόσμε. مرحبا بالعالم. שלום עולם. नमस्ते दुनिया.",
    "你好，世界！今天天气很好。こんにちは、世界。안녕하세요.",
    "Emoji 😀😂🤖 🚀 🎉 👍🏽 👨‍👩‍👧‍👦 🇫🇷🇯🇵 ❤️ ✨ 🔥🔥🔥 text😀between",
    "Full-width ＡＢＣ１２３！ Arabic digits ١٢٣٤٥ Roman Ⅻ fractions ½ ¾ superscripts x² y³",
    "<|endoftext|>",
    "before<|endoftext|>after",
    "text <|endoftext|> more text<|endoftext|><|endoftext|>end",
    "<|pad|><|endoftext|> mixed <|pad|>",
    "use <tool> here and<tool>there",
    "<|begin_of_text|>Hello<|eot_id|><|end_of_text|>",
    "almost special <|endoftext| and <|endoftext|x> and <|ENDOFTEXT|>",
    "unseen words: xylophone quizzical zephyr juxtapose",
    "rare chars: \u0000 \u0001 \u007f \u00ad \u200b \ufeff \U0001F9EC end",
    "nbsp\u00a0here, ideographic\u3000space, thin\u2009space, line\u2028sep",
    "The quick brown fox jumps over the lazy dog. The dog didn't care; it's been lazy since '98.",
    "Mixed: naïve café ☕ costs €3.50; 東京 2024 🗼; x² + y² = z²; α+β=γ; ∑ᵢ xᵢ ≤ ∞.",
    "CRLF line one\r\nCRLF line two\r\n\r\nafter blank\r\n",
    "x" * 200,
    "ab" * 64 + " " + "🔥" * 20,
    "ſ 'ſ 'S 'T 'Re 'vE 'LL 'D 'M",
]

FUZZ_ALPHABET = list("aZeé中😀1٣½ \t\n\r'stSLlmd.!-_") + [
    "\u00a0", "\u3000", "\u2009", "\u200d", "\ufe0f", "\u017f", "\u000b", "\u000c", "\u0085", "\u001c",
    "\u2028", "\u0301", "Ⅻ", "²", "ᵢ", "\U0001F1EB", "€", "«", "　", "゛", "ー", "々",
]


def make_gpt2():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=["<|endoftext|>", "<|pad|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train([CORPUS], trainer)
    tok.add_tokens(["<tool>"])
    return tok


def make_llama3():
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
    trainer = trainers.BpeTrainer(vocab_size=800, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train([CORPUS], trainer)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A $B",
                                      special_tokens=[("<|begin_of_text|>", bos)]),
    ])
    return tok


def fuzz_strings(n):
    rng = random.Random(SEED)
    out = []
    for _ in range(n):
        k = rng.randint(0, 24)
        out.append("".join(rng.choice(FUZZ_ALPHABET) for _ in range(k)))
    return out


def case_record(tok, s):
    with_special = tok.encode(s, add_special_tokens=True).ids
    plain = tok.encode(s, add_special_tokens=False).ids
    return {
        "ids": plain,
        "ids_special": with_special,
        "decode": tok.decode(with_special, skip_special_tokens=False),
        "decode_skip": tok.decode(with_special, skip_special_tokens=True),
    }


def lua_string(s):
    out = []
    for b in s.encode("utf-8"):
        if 0x20 <= b < 0x7F and b not in (0x22, 0x5C):
            out.append(chr(b))
        else:
            out.append("\\%03d" % b)
    return '"' + "".join(out) + '"'


def lua_value(v):
    if isinstance(v, str):
        return lua_string(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "{" + ",".join(lua_value(x) for x in v) + "}"
    if isinstance(v, dict):
        return "{" + ",".join("%s=%s" % (k, lua_value(x)) for k, x in v.items()) + "}"
    raise TypeError(type(v))


def main():
    gpt2 = make_gpt2()
    llama3 = make_llama3()
    gpt2.save(os.path.join(OUT, "gpt2.json"))
    llama3.save(os.path.join(OUT, "llama3.json"))
    toks = {"gpt2": gpt2, "llama3": llama3}
    cases = []
    for s in CASES:
        rec = {"text": s}
        for name, tok in toks.items():
            rec[name] = case_record(tok, s)
        cases.append(rec)
    fuzz = []
    for s in fuzz_strings(200):
        rec = {"text": s}
        for name, tok in toks.items():
            rec[name] = [p for p, _ in tok.pre_tokenizer.pre_tokenize_str(s)]
        fuzz.append(rec)
    info = {
        "tokenizers": tokenizers.__version__,
        "vocab_size": {name: tok.get_vocab_size(with_added_tokens=True) for name, tok in toks.items()},
    }
    data = {"info": info, "cases": cases, "fuzz": fuzz}
    with open(os.path.join(OUT, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=True, indent=None, separators=(",", ":"))
        f.write("\n")
    with open(os.path.join(OUT, "cases.lua"), "w", encoding="utf-8") as f:
        f.write("-- cases.lua: generated by gen_tokenizer_fixtures.py (tokenizers %s). Do not edit.\n"
                % tokenizers.__version__)
        f.write("-- ids are Hugging Face ids (0-based values); fuzz pieces are byte-level pre-tokens.\n")
        f.write("return {\ninfo=%s,\ncases={\n" % lua_value(info))
        for rec in cases:
            f.write(lua_value(rec) + ",\n")
        f.write("},\n}\n")


if __name__ == "__main__":
    main()
