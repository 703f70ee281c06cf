// PreTokenizer.swift: splitting text into pre-tokens before BPE, as Hugging Face `tokenizers` does.
//
// The two regexes that byte-level BPE files use are scanned by hand over Unicode scalars (the regex engines
// work on code points, not grapheme clusters):
//   GPT-2    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   Llama-3  (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//            (Qwen2's is the same with \p{N} for \p{N}{1,3}).
// Any other Split pattern runs through Swift Regex with Unicode-scalar semantics: slower, same results.
// `Digits` (SmolLM) isolates runs of \p{N}, or each one. Not supported (a clear error at load): Split's inverted
// and merged behaviours, other pre-tokenizer types.

/// The character classes the regexes test: \p{L}, \p{N}, \s, and everything else.
enum ScalarClass: UInt8 {
    case letter, number, space, other

    init(_ s: Unicode.Scalar) {
        if s.value < 128 { self = ScalarClass.ascii[Int(s.value)]; return }
        self.init(slow: s)
    }

    /// The classes of the 128 ASCII scalars, looked up instead of computed.
    static let ascii: [ScalarClass] = (0..<128).map { ScalarClass(slow: Unicode.Scalar(UInt8($0))) }

    init(slow s: Unicode.Scalar) {
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: self = .letter
        case .decimalNumber, .letterNumber, .otherNumber: self = .number
        default: self = s.properties.isWhitespace ? .space : .other
        }
    }
}

/// A regex that splits text into pieces.
public enum SplitPattern {
    case gpt2
    /// Llama-3 (`maxDigits` 3) and Qwen2 (`maxDigits` 1).
    case llama3(maxDigits: Int)
    /// Any other regex, run by Swift Regex.
    case regex(String, Regex<AnyRegexOutput>)
    /// A literal string.
    case literal(String)
    /// The `Digits` pre-tokenizer: runs of \p{N} (or each one alone when `individual`).
    case digits(individual: Bool)

    public static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    public static let llama3Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    public static let qwen2Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The scanner for a regex source: a hand scanner for the known patterns, else Swift Regex.
    public static func fromRegex(_ pattern: String) throws -> SplitPattern {
        switch pattern {
        case gpt2Pattern: return .gpt2
        case llama3Pattern: return .llama3(maxDigits: 3)
        case qwen2Pattern: return .llama3(maxDigits: 1)
        default:
            do {
                return .regex(pattern, try Regex(pattern).matchingSemantics(.unicodeScalar))
            } catch {
                throw TokenizerError("unsupported pre-tokenizer regex \(pattern.debugDescription): \(error)")
            }
        }
    }

    /// The pattern's source text (as written in tokenizer.json).
    public var source: String {
        switch self {
        case .gpt2: return SplitPattern.gpt2Pattern
        case .llama3(let d): return d == 1 ? SplitPattern.qwen2Pattern : SplitPattern.llama3Pattern
        case .regex(let s, _): return s
        case .literal(let s): return s
        case .digits(let individual): return individual ? #"\p{N}"# : #"\p{N}+"#
        }
    }

    /// The matches of the pattern in `text` as half-open ranges of scalar offsets, in order, non-empty.
    public func matches(in scalars: [Unicode.Scalar]) -> [Range<Int>] {
        switch self {
        case .gpt2: return Scanner(scalars).all(Scanner.gpt2)
        case .llama3(let d): return Scanner(scalars, maxDigits: d).all(Scanner.llama3)
        case .digits(let individual):
            var out: [Range<Int>] = []
            var i = 0
            while i < scalars.count {
                guard ScalarClass(scalars[i]) == .number else { i += 1; continue }
                var j = i + 1
                if !individual { while j < scalars.count && ScalarClass(scalars[j]) == .number { j += 1 } }
                out.append(i..<j)
                i = j
            }
            return out
        case .literal(let lit):
            let l = Array(lit.unicodeScalars)
            guard !l.isEmpty, scalars.count >= l.count else { return [] }
            var out: [Range<Int>] = []
            var i = 0
            while i + l.count <= scalars.count {
                if scalars[i] == l[0], Array(scalars[i..<i + l.count]) == l {
                    out.append(i..<i + l.count); i += l.count
                } else { i += 1 }
            }
            return out
        case .regex(_, let re):
            var s = String.UnicodeScalarView(); s.append(contentsOf: scalars)
            let str = String(s)
            // Map String indices back to scalar offsets with one walk.
            var offsets: [String.Index: Int] = [:]
            var k = 0
            for i in str.unicodeScalars.indices { offsets[i] = k; k += 1 }
            offsets[str.endIndex] = k
            var out: [Range<Int>] = []
            for m in str.matches(of: re) {
                guard let a = offsets[m.range.lowerBound], let b = offsets[m.range.upperBound], b > a else { continue }
                out.append(a..<b)
            }
            return out
        }
    }
}

/// The hand scanner: one function per pattern returning the end of the match that starts at `i`. Both
/// patterns end in `\s+(?!\S)|\s+` and every scalar falls in some alternative, so each step advances.
struct Scanner {
    let c: [Unicode.Scalar]
    let k: [ScalarClass]
    let maxDigits: Int

    init(_ scalars: [Unicode.Scalar], maxDigits: Int = 3) {
        c = scalars
        k = scalars.map { ScalarClass($0) }
        self.maxDigits = maxDigits
    }

    var n: Int { c.count }

    func all(_ next: (Scanner, Int) -> Int) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var i = 0
        while i < n {
            let j = max(next(self, i), i + 1)
            out.append(i..<j)
            i = j
        }
        return out
    }

    /// The end of the run of class `cls` starting at i.
    func run(_ cls: ScalarClass, from i: Int, limit: Int = Int.max) -> Int {
        var j = i
        while j < n && k[j] == cls && j - i < limit { j += 1 }
        return j
    }

    func isNewline(_ j: Int) -> Bool { c[j] == "\r" || c[j] == "\n" }

    /// `\s+(?!\S)|\s+` at a whitespace scalar: the whole run at the end of the text, else all but its last
    /// scalar (which then joins what follows), else the single scalar.
    func spaces(_ i: Int) -> Int {
        let j = run(.space, from: i)
        if j == n { return j }
        return j - i >= 2 ? j - 1 : j
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d`, optionally case-insensitive (with Unicode simple case folding: `ſ` is `s`).
    func contraction(_ i: Int, ignoreCase: Bool) -> Int? {
        guard c[i] == "'", i + 1 < n else { return nil }
        func eq(_ j: Int, _ lower: Unicode.Scalar) -> Bool {
            guard j < n else { return false }
            if c[j] == lower { return true }
            guard ignoreCase else { return false }
            if c[j].value + 32 == lower.value { return true }
            return lower == "s" && c[j] == "\u{17F}"
        }
        for one in ["s", "t", "m", "d"] as [Unicode.Scalar] where eq(i + 1, one) { return i + 2 }
        for (a, b) in [("r", "e"), ("v", "e"), ("l", "l")] as [(Unicode.Scalar, Unicode.Scalar)]
        where eq(i + 1, a) && eq(i + 2, b) { return i + 3 }
        return nil
    }

    static func gpt2(_ s: Scanner, _ i: Int) -> Int {
        if let j = s.contraction(i, ignoreCase: false) { return j }
        // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional space then a run of one class.
        let start = (s.c[i] == " " && i + 1 < s.n && s.k[i + 1] != .space) ? i + 1 : i
        if s.k[start] != .space { return s.run(s.k[start], from: start) }
        return s.spaces(i)
    }

    static func llama3(_ s: Scanner, _ i: Int) -> Int {
        if let j = s.contraction(i, ignoreCase: true) { return j }
        // `[^\r\n\p{L}\p{N}]?\p{L}+`
        if s.k[i] == .letter { return s.run(.letter, from: i) }
        if s.k[i] != .number, !s.isNewline(i), i + 1 < s.n, s.k[i + 1] == .letter { return s.run(.letter, from: i + 1) }
        // `\p{N}{1,3}`
        if s.k[i] == .number { return s.run(.number, from: i, limit: s.maxDigits) }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        let start = (s.c[i] == " " && i + 1 < s.n && s.k[i + 1] == .other) ? i + 1 : i
        if s.k[start] == .other {
            var j = s.run(.other, from: start)
            while j < s.n && s.isNewline(j) { j += 1 }
            return j
        }
        // `\s*[\r\n]+`: up to the last newline of the whitespace run.
        let end = s.run(.space, from: i)
        if let last = (i..<end).last(where: s.isNewline) { return last + 1 }
        return s.spaces(i)
    }
}

/// How a Split keeps its matches.
public enum SplitBehavior: String {
    case isolated = "Isolated", removed = "Removed"
}

/// One step of a pre-tokenizer pipeline (a `Sequence` is a list of steps).
public enum PreTokenizerStep {
    /// ByteLevel: optional prefix space, optional GPT-2 split, then bytes -> characters.
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case split(SplitPattern, SplitBehavior)
}

extension PreTokenizerStep {
    func apply(_ piece: String) -> [String] {
        switch self {
        case .byteLevel(let prefix, let useRegex):
            var text = piece
            if prefix && !text.hasPrefix(" ") { text = " " + text }
            let parts = useRegex ? PreTokenizerStep.split(text, .gpt2, .isolated) : [text]
            return parts.map { ByteLevel.encode($0.utf8) }
        case .split(let pattern, let behavior):
            return PreTokenizerStep.split(piece, pattern, behavior)
        }
    }

    /// Splits `text` at the matches of `pattern`: matches and the text between them are pieces (Isolated),
    /// or only the text between them (Removed). Empty pieces are dropped.
    static func split(_ text: String, _ pattern: SplitPattern, _ behavior: SplitBehavior) -> [String] {
        let scalars = Array(text.unicodeScalars)
        let ms = pattern.matches(in: scalars)
        // Pieces are cut from the UTF-8 bytes (a copy, no re-encoding): offsets[i] is where scalar i starts.
        let bytes = Array(text.utf8)
        var offsets = [Int](repeating: 0, count: scalars.count + 1)
        for (i, sc) in scalars.enumerated() { offsets[i + 1] = offsets[i] + UTF8.width(sc) }
        var out: [String] = []
        func emit(_ r: Range<Int>) {
            guard !r.isEmpty else { return }
            out.append(String(decoding: bytes[offsets[r.lowerBound]..<offsets[r.upperBound]], as: UTF8.self))
        }
        var at = 0
        for m in ms {
            emit(at..<m.lowerBound)
            if behavior == .isolated { emit(m) }
            at = m.upperBound
        }
        emit(at..<scalars.count)
        return out
    }
}

/// Runs the pipeline over one segment of text (the text between added tokens).
public func preTokenize(_ text: String, steps: [PreTokenizerStep]) -> [String] {
    var pieces = text.isEmpty ? [] : [text]
    for step in steps { pieces = pieces.flatMap { step.apply($0) } }
    return pieces
}
