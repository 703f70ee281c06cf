#!/usr/bin/env python3
"""gen_grader_fixtures.py: writes grader_fixtures.lua, the reference values Tests/lua/rft_graders.lua checks for
rft.grader.text_similarity's metrics (and the Swift tests for TextSimilarity).

Every value comes from the Python package that defines the metric, called on (candidate, reference) pairs:

- fuzzy_match: rapidfuzz.fuzz.ratio(candidate, reference) / 100 (OpenAI documents fuzzy_match as rapidfuzz).
- bleu: sacrebleu.sentence_bleu(candidate, [reference]).score / 100, with sacrebleu's defaults (13a tokenizer,
  exp smoothing, effective order).
- gleu: nltk.translate.gleu_score.sentence_gleu([ref_tokens], cand_tokens) with the tokens of sacrebleu's 13a
  tokenizer, as Hugging Face evaluate's google_bleu metric does.
- rouge_1..rouge_5, rouge_l: rouge_score.rouge_scorer.RougeScorer([...], use_stemmer=False).score(reference,
  candidate)[type].fmeasure (Google's rouge-score, its default tokenizer).

The tokens of both tokenizers are written too (tok13a, tokrouge), so a mismatch can be traced to tokenization.
Pairs are hand-picked edge cases (punctuation rules of 13a, Unicode, whitespace, empty strings, repeats, long
texts) plus 40 random ones from a fixed seed. Strings are written with every non-ASCII or control byte escaped,
so the file is ASCII.

Versions used for the committed file: sacrebleu 2.6.0, rouge-score 0.1.2, rapidfuzz 3.14.6, nltk 3.10.4,
Python 3.11.7.
    pip install sacrebleu==2.6.0 rouge-score==0.1.2 rapidfuzz==3.14.6 nltk==3.10.4
    python3 Tests/Fixtures/gen_grader_fixtures.py
"""

import os
import random
import sys
from importlib.metadata import version

import nltk
import rapidfuzz
import sacrebleu
from nltk.translate.gleu_score import sentence_gleu
from rapidfuzz import fuzz
from rouge_score import rouge_scorer
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "grader_fixtures.lua")

PAIRS = [
    ("the cat sat on the mat", "the cat sat on the mat"),
    ("the cat sat", "the cat sat on the mat"),
    ("the cat sat on the mat", "the cat sat"),
    ("", ""),
    ("", "something"),
    ("something", ""),
    ("a", "a"),
    ("a", "b"),
    ("The Cat", "the cat"),
    ("the the the the the the the", "the cat is on the mat"),
    ("It is a guide to action which ensures that the military always obeys the commands of the party.",
     "It is a guide to action that ensures that the military will forever heed Party commands."),
    ("he read the book because he was interested in world history",
     "he was interested in world history because he read the book"),
    ("Hello, world. It costs $3.50, or 3,000.25 in total!", "Hello world, it costs 3.50 dollars."),
    ("U.S.A. vs. U.K.: e-mail 1-2 pm, 10-20 items", "USA vs UK: email 1 - 2 pm, 10 - 20 items"),
    ("don't stop; won't (ever) [really] {maybe} <b>bold</b> a/b c|d ~e ^f _g `h @i #j %k &l *m +n =o ?p",
     "do not stop; will not ever really maybe bold a b c d e f g h i j k l m n o p"),
    ("x &amp; y &lt; z &gt; w &quot;q&quot; &amp;lt;", "x & y < z > w \"q\" &lt;"),
    ("line one-\ncontinued\nline two <skipped> end", "line onecontinued line two end"),
    ("trailing spaces   \t ", "trailing spaces"),
    ("tabs\tand\u00a0nbsp\u3000ideographic\u2028sep", "tabs and nbsp ideographic sep"),
    ("caf\u00e9 na\u00efve \u00dcn\u00efc\u00f6d\u00e9 r\u00e9sum\u00e9", "cafe naive unicode resume"),
    ("\u4f60\u597d\u4e16\u754c hello", "\u4f60\u597d hello world"),
    ("emoji \U0001F600 party \U0001F389!", "emoji party!"),
    ("\u0130stanbul \u212a kelvin", "istanbul k kelvin"),
    ("e\u0301t\u00e9", "\u00e9t\u00e9"),
    ("Numbers: 1,2,3 and 4.5.6 end.", "numbers 1 2 3 and 4 5 6 end"),
    ("word,word.word", "word , word . word"),
    ("a.,b", "a . , b"),
    ("..,,..", ".,."),
    ("9.a 9,b a.9 b,9 9-9 a-9", "9 . a"),
    ("ROUGE is a set of metrics; ROUGE-L uses the LCS.", "rouge l uses the longest common subsequence"),
    ("police killed the gunman", "the gunman killed the police"),
    ("the quick brown fox jumps over the lazy dog " * 6,
     "a quick brown dog jumps over the lazy fox " * 5),
    ("abcdefghijklmnopqrstuvwxyz" * 5 + "0123456789", "zyxwvutsrqponmlkjihgfedcba" * 4 + "0123456789" * 3),
    ("The answer is 42.", "42"),
    ("42", "The answer is 42."),
]

VOCAB = ["the", "a", "cat", "dog", "sat", "on", "mat", "The", "CAT", ",", ".", "!", "?", "3.5", "1,000", "e-mail",
         "don't", "(", ")", "&amp;", "caf\u00e9", "na\u00efve", "\u4e16\u754c", "-", "x", "y", "z", "and", "or",
         "is", "was", "42", "\t", "\n"]


def random_pairs(n, seed=20261206):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a = [rng.choice(VOCAB) for _ in range(rng.randint(0, 14))]
        b = list(a) if rng.random() < 0.5 else [rng.choice(VOCAB) for _ in range(rng.randint(0, 14))]
        for _ in range(rng.randint(0, 4)):  # perturb
            if b and rng.random() < 0.5:
                b.pop(rng.randrange(len(b)))
            else:
                b.insert(rng.randint(0, len(b)), rng.choice(VOCAB))
        sep_a = rng.choice([" ", " ", "  ", ""])
        out.append((sep_a.join(a), " ".join(b)))
    return out


def quote(s):
    """A Lua string literal in ASCII: printable ASCII kept, everything else as decimal byte escapes."""
    out = []
    for b in s.encode("utf-8"):
        if b in (0x22, 0x5C):
            out.append("\\" + chr(b))
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append("\\%03d" % b)
    return '"' + "".join(out) + '"'


def strings(xs):
    return "{" + ", ".join(quote(x) for x in xs) + "}"


def main():
    rouge_types = ["rouge1", "rouge2", "rouge3", "rouge4", "rouge5", "rougeL"]
    scorer = rouge_scorer.RougeScorer(rouge_types, use_stemmer=False)
    tok13a = Tokenizer13a()
    rows = []
    for cand, ref in PAIRS + random_pairs(40):
        ct = tok13a(cand.rstrip()).split()
        rt = tok13a(ref.rstrip()).split()
        rs = scorer.score(ref, cand)
        rows.append({
            "candidate": cand,
            "reference": ref,
            "fuzzy_match": fuzz.ratio(cand, ref) / 100,
            "bleu": sacrebleu.sentence_bleu(cand, [ref]).score / 100,
            "gleu": sentence_gleu([rt], ct),
            **{("rouge_" + t[5:].lower()): rs[t].fmeasure for t in rouge_types},
            "tok13a": ct,
            "tokrouge": scorer._tokenizer.tokenize(cand),
        })
    lines = [
        "-- grader_fixtures.lua: generated by gen_grader_fixtures.py (sacrebleu %s, rouge-score %s, rapidfuzz %s, nltk %s)."
        % (sacrebleu.__version__, version("rouge-score"), rapidfuzz.__version__, nltk.__version__),
        "-- Do not edit. Each row: candidate, reference, the metric values (0..1) and the candidate's tokens.",
        "return {",
        "  sacrebleu=%s, rapidfuzz=%s, nltk=%s," % (quote(sacrebleu.__version__), quote(rapidfuzz.__version__), quote(nltk.__version__)),
        "  rows={",
    ]
    metrics = ["fuzzy_match", "bleu", "gleu", "rouge_1", "rouge_2", "rouge_3", "rouge_4", "rouge_5", "rouge_l"]
    for r in rows:
        vals = ", ".join("%s=%s" % (m, repr(float(r[m]))) for m in metrics)
        lines.append("    {candidate=%s, reference=%s, %s," % (quote(r["candidate"]), quote(r["reference"]), vals))
        lines.append("     tok13a=%s, tokrouge=%s}," % (strings(r["tok13a"]), strings(r["tokrouge"])))
    lines += ["  },", "}", ""]
    with open(OUT, "w", encoding="ascii") as f:
        f.write("\n".join(lines))
    print("wrote %s (%d rows)" % (OUT, len(rows)), file=sys.stderr)


if __name__ == "__main__":
    main()
