// PreferenceData.swift: preference pairs tokenized as TRL's DPOTrainer (1.16) tokenizes them, and their batches.
//
// Per row (TRL's `_prepare_dataset` and `DataCollatorForPreference`, read from trl 1.16.0):
// 1. Implicit prompts are extracted (`extract_prompt`, PreferenceRow.swift).
// 2. Plain rows: the EOS text is appended to chosen and rejected unless they already end with it. Conversational
//    rows get none (the chat template ends the assistant turn).
// 3. The prompt is tokenized alone, and prompt + chosen and prompt + rejected as whole texts: plain text with the
//    tokenizer's special tokens (`tokenizer(text)`, a BOS for Llama 3 files, nothing for GPT-2), conversations
//    rendered by the chat template (prompt with the generation prompt, prompt + completion without) and encoded
//    without special tokens (`apply_chat_template(tokenize=True)`).
// 4. The completion starts where the tokenized prompt and prompt + completion stop agreeing (the shorter common
//    prefix of the two pairs), which is before the prompt's end when a BPE merge crosses the boundary (a prompt
//    ending in a space) or a template renders the prompt differently alone: prompt_ids = prompt[:n],
//    chosen_ids = (prompt + chosen)[n:], rejected_ids likewise.
// 5. With max_length and keep_start, rows whose prompt alone has max_length tokens or more are dropped.
// 6. Each sequence prompt_ids + completion_ids is cut to max_length: keep_start keeps the first tokens, keep_end
//    the last. The completion mask is 1 on completion tokens (including an EOS), 0 on the prompt.
// Tycho additions, off by default: max_prompt_length keeps the prompt's last tokens and max_completion_length
// each completion's first tokens (TRL 0.x's rules, applied after step 4 and before 5). TRL's default max_length
// is 1024, and so is Tycho's (nil: no limit). Every cut row is counted and every dropped row is listed with its
// reason: nothing is cut or dropped silently.
//
// A data set can be cut without tokenizing again: `subset` keeps chosen pairs, `split` cuts it in two (whole
// prompts to one side, so a held-out part shares no prompt with the training part). The parts keep the pairs'
// source rows (numbered in the original file), the options and the attached reference log-probs of their pairs;
// their rows and tokens hashes are recomputed, so reference caches tell the parts apart.
//
// Batches are TRL's concatenated layout: B pairs give ids and mask of shape (2B, T), the B chosen sequences first
// and then the B rejected ones, right-padded to the longest of all 2B. Token ids are stored as Int32 (the pairs of
// a large data set stay small) and come out of batches as Float values, exact below 2^24.

/// Which end of a too-long sequence `max_length` keeps.
public enum PreferenceTruncation: String, CaseIterable, Sendable {
    case keepStart = "keep_start"
    case keepEnd = "keep_end"
}

public struct PreferenceOptions {
    /// Longest sequence (prompt + completion) in tokens; nil for no limit. TRL's default: 1024.
    public var maxLength: Int? = 1024
    /// Keeps the last tokens of longer prompts (TRL <= 0.28's max_prompt_length); nil: no limit.
    public var maxPromptLength: Int? = nil
    /// Keeps the first tokens of longer completions (TRL <= 0.28's max_completion_length); nil: no limit.
    public var maxCompletionLength: Int? = nil
    public var truncation: PreferenceTruncation = .keepStart
    /// The EOS text appended to plain completions (TRL: `tokenizer.eos_token`). Needed for plain rows only.
    public var eosToken: String? = nil
    /// Renders conversational rows.
    public var chatTemplate = ChatRenderer(.chatml)
    /// The id batches pad with; nil: the tokenizer's pad token, else the EOS token, else 0 (TRL's rule). Padding
    /// is masked out, so it changes no log-prob; it is not part of the settings.
    public var padID: Int? = nil

    public init() {}

    /// The settings that change the tokens, as one line (part of cache keys, shown in printouts).
    public var settingsDescription: String {
        func n(_ v: Int?) -> String { v.map(String.init) ?? "none" }
        return "max_length=\(n(maxLength)) max_prompt_length=\(n(maxPromptLength)) max_completion_length=\(n(maxCompletionLength)) truncation=\(truncation.rawValue) eos_token=\(eosToken.map { "\"\($0)\"" } ?? "none") chat_template=\(chatTemplate.name)"
    }
}

/// One tokenized pair, as TRL's dataset holds it (before the collator's truncation to max_length).
public struct PreferencePair: Sendable {
    /// The 0-based index of the source row.
    public let row: Int
    /// TRL's prompt_ids: the prompt's tokens up to where prompt and prompt + completion diverge
    /// (after max_prompt_length).
    public let prompt: [Int32]
    /// TRL's chosen_ids: the chosen completion's tokens (after max_completion_length).
    public let chosen: [Int32]
    /// TRL's rejected_ids.
    public let rejected: [Int32]
    /// A hash of the rendered prompt text, to find prompts shared between splits.
    public let promptKey: UInt64
    /// True when max_prompt_length, max_completion_length or max_length cut tokens from either sequence.
    public let truncated: Bool
}

/// A dropped row and why.
public struct PreferenceDrop: Equatable, Sendable {
    /// The 0-based index of the source row.
    public let row: Int
    public let reason: String
}

/// B pairs in TRL's concatenated layout.
public struct PreferenceBatch {
    /// B, the number of pairs.
    public let size: Int
    /// T, the longest of the 2B sequences.
    public let length: Int
    /// (2B, T) row-major: the chosen sequences, then the rejected ones, right-padded with the pad id.
    public let ids: [Float]
    /// (2B, T) row-major: 1 on completion tokens, 0 on prompt tokens and padding (TRL's completion_mask).
    public let mask: [Float]
    /// (2B, T) row-major: 1 on every real token, 0 on padding (TRL's attention_mask).
    public let attention: [Float]
    /// The 0-based indices of the pairs in the data set.
    public let pairs: [Int]
    /// The 0-based source rows of the pairs.
    public let rows: [Int]
    /// Completion tokens per sequence (2B: chosen then rejected), after truncation: the mask's row sums.
    public let completionTokens: [Int]
}

public final class PreferenceData {
    public let options: PreferenceOptions
    public let format: PreferenceFormat
    public let pairs: [PreferencePair]
    public let dropped: [PreferenceDrop]
    /// How many rows were read.
    public let sourceRows: Int
    /// SHA-256 of the rows as canonical JSON lines (keys sorted): the data file's content, independent of its
    /// layout on disk.
    public let rowsHash: String
    /// SHA-256 of the tokenizer's tokenizer.json.
    public let tokenizerHash: String
    /// SHA-256 of every pair's tokens and the settings: exactly what a model is shown.
    public let tokensHash: String
    /// The pad id batches use by default: the tokenizer's pad token, else the EOS token's id, else 0 (TRL pads
    /// with the EOS token when the tokenizer has no pad token).
    public let defaultPadID: Int
    public let vocabSize: Int
    /// Where the rows came from, for messages (a path, or "rows").
    public let source: String
    /// How this data set was cut from another (`subset`, `split`), for summaries; nil for data read from rows.
    public let derivation: String?

    /// Reference log-probs attached by the reference pass (one per pair), or nil.
    public var referenceChosen: [Float]?
    public var referenceRejected: [Float]?

    /// Tokenizes `rows` (row `k` is named `places[k]` in errors: `data.jsonl:3`, `row 3`).
    /// - Throws: `PreferenceDataError` naming the row and field.
    public init(rows: [JSONValue], places: [String], tokenizer: Tokenizer, options: PreferenceOptions,
                source: String) throws {
        precondition(places.count == rows.count, "PreferenceData: one place per row")  // caller's contract
        self.options = options
        self.source = source
        sourceRows = rows.count
        vocabSize = tokenizer.vocabSize
        if let m = options.maxLength, m < 1 { throw PreferenceDataError("max_length must be at least 1, got \(m)") }
        if let m = options.maxPromptLength, m < 0 { throw PreferenceDataError("max_prompt_length must be >= 0, got \(m)") }
        if let m = options.maxCompletionLength, m < 1 { throw PreferenceDataError("max_completion_length must be at least 1, got \(m)") }

        var rowsHasher = ContentHasher()
        var parsed: [PreferenceRow] = []
        parsed.reserveCapacity(rows.count)
        var firstFormat: (PreferenceFormat, Int)? = nil
        for (k, value) in rows.enumerated() {
            let line = value.line
            rowsHasher.update(int: line.utf8.count)
            rowsHasher.update(line)
            let row: PreferenceRow
            do { row = try PreferenceRow.parse(value) } catch let e as PreferenceDataError {
                throw PreferenceDataError("\(places[k]): \(e.message)")
            }
            // TRL decides plain or conversational once, from the first row: mixing them is an error here.
            if let (f, at) = firstFormat, f.isConversational != row.format.isConversational {
                throw PreferenceDataError("\(places[k]) is \(row.format.isConversational ? "conversational" : "plain text") but \(places[at]) is \(f.isConversational ? "conversational" : "plain text"); a data set must be one or the other (TRL decides from the first row)")
            }
            if firstFormat == nil { firstFormat = (row.format, k) }
            parsed.append(row)
        }
        rowsHash = rowsHasher.hexDigest()
        format = firstFormat?.0 ?? .plain
        tokenizerHash = { var h = ContentHasher(); tokenizer.jsonData().withUnsafeBytes { h.update($0) }; return h.hexDigest() }()
        let eosID = options.eosToken.flatMap { tokenizer.id(for: $0) }
        defaultPadID = options.padID ?? tokenizer.padTokenID ?? eosID ?? 0
        if !format.isConversational && !parsed.isEmpty && options.eosToken == nil {
            throw PreferenceDataError("plain-text rows need the tokenizer's EOS text (TRL appends tokenizer.eos_token to chosen and rejected); give eos_token")
        }

        var out: [PreferencePair] = []
        out.reserveCapacity(parsed.count)
        var drops: [PreferenceDrop] = []
        for (k, row) in parsed.enumerated() {
            let t: (prompt: [Int], chosen: [Int], rejected: [Int], key: UInt64)
            do { t = try PreferenceData.tokenize(row, tokenizer: tokenizer, options: options) } catch let e as PreferenceDataError {
                throw PreferenceDataError("\(places[k]): \(e.message)")
            } catch {
                throw PreferenceDataError("\(places[k]): \(error)")
            }
            var prompt = t.prompt, chosen = t.chosen, rejected = t.rejected
            var cut = false
            if let m = options.maxPromptLength, prompt.count > m { prompt = Array(prompt.suffix(m)); cut = true }
            if let m = options.maxCompletionLength {
                if chosen.count > m { chosen = Array(chosen.prefix(m)); cut = true }
                if rejected.count > m { rejected = Array(rejected.prefix(m)); cut = true }
            }
            if let m = options.maxLength {
                if options.truncation == .keepStart && prompt.count >= m {
                    drops.append(PreferenceDrop(row: k, reason: "its prompt has \(prompt.count) tokens, at least max_length \(m), so keep_start truncation would leave no completion token"))
                    continue
                }
                if prompt.count + chosen.count > m || prompt.count + rejected.count > m { cut = true }
            }
            out.append(PreferencePair(row: k, prompt: prompt.map(Int32.init), chosen: chosen.map(Int32.init),
                                      rejected: rejected.map(Int32.init), promptKey: t.key, truncated: cut))
        }
        pairs = out
        dropped = drops
        derivation = nil
        tokensHash = PreferenceData.tokensHash(out, options: options)
    }

    /// SHA-256 of the settings and every pair's source row and tokens, in order.
    static func tokensHash(_ pairs: [PreferencePair], options: PreferenceOptions) -> String {
        var h = ContentHasher()
        h.update(options.settingsDescription)
        h.update(int: pairs.count)
        for p in pairs {
            h.update(int: p.row)
            for part in [p.prompt, p.chosen, p.rejected] {
                h.update(int: part.count)
                part.withUnsafeBytes { h.update($0) }
            }
        }
        return h.hexDigest()
    }

    /// The pairs of `parent` at `indices` (0-based, distinct, in 0..<parent.count; checked by the callers).
    private init(parent: PreferenceData, indices: [Int], derivation: String) {
        options = parent.options
        format = parent.format
        pairs = indices.map { parent.pairs[$0] }
        dropped = []
        sourceRows = parent.sourceRows
        tokenizerHash = parent.tokenizerHash
        defaultPadID = parent.defaultPadID
        vocabSize = parent.vocabSize
        source = parent.source
        self.derivation = derivation
        if indices == Array(0..<parent.count) {
            rowsHash = parent.rowsHash  // the same pairs in the same order: the same data
        } else {
            var h = ContentHasher()
            h.update("subset of rows ")
            h.update(parent.rowsHash)
            h.update(int: indices.count)
            for i in indices { h.update(int: parent.pairs[i].row) }
            rowsHash = h.hexDigest()
        }
        tokensHash = PreferenceData.tokensHash(pairs, options: options)
        if let c = parent.referenceChosen, let r = parent.referenceRejected, c.count == parent.count, r.count == parent.count {
            referenceChosen = indices.map { c[$0] }
            referenceRejected = indices.map { r[$0] }
        }
    }

    // MARK: subsets and splits

    /// The pairs at `indices` (0-based pair numbers, in the order given) as a new data set: the same options, source
    /// rows and attached reference log-probs; no dropped rows (those stay the original's).
    /// - Throws: `PreferenceDataError` for an index out of range or given twice.
    public func subset(_ indices: [Int]) throws -> PreferenceData {
        var seen = Set<Int>()
        for (k, i) in indices.enumerated() {
            guard i >= 0 && i < count else {
                throw PreferenceDataError("pair number \(i + 1) at position \(k + 1) is not in 1..\(count)")
            }
            guard seen.insert(i).inserted else {
                throw PreferenceDataError("pair number \(i + 1) is given twice (at position \(k + 1))")
            }
        }
        return PreferenceData(parent: self, indices: indices, derivation: "a subset of \(indices.count) of \(count) pairs")
    }

    /// Which pairs go to each part of a split (0-based, ascending). The pairs (or, with `byPrompt`, the groups of
    /// pairs sharing a prompt, by PreferencePair.promptKey, which data.audit compares) are put in data-set order
    /// (groups by first appearance), or in the order of a Fisher-Yates shuffle drawing from `draw`
    /// (BatchPlan.shuffled) when it is given, and that sequence is cut once, between two groups, where the first
    /// part's size is closest to `first` (on a tie, the smaller first part). Pair by pair the first part has exactly
    /// `first` pairs; by prompt it is off by at most half the group the cut falls in.
    /// - Throws: `PreferenceDataError` when `first` is not in 1..<count, or by prompt when every pair has the
    ///   same prompt.
    public func splitIndices(first: Int, byPrompt: Bool, draw: ((Int) -> Int)?) throws -> (first: [Int], second: [Int]) {
        guard count >= 2 else { throw PreferenceDataError("cannot split \(count) pair\(count == 1 ? "" : "s") into two non-empty parts") }
        guard first >= 1 && first < count else {
            throw PreferenceDataError("the first part must have 1..\(count - 1) of the \(count) pairs, got \(first)")
        }
        var groups: [[Int]] = []
        if byPrompt {
            var at: [UInt64: Int] = [:]
            for (i, p) in pairs.enumerated() {
                if let g = at[p.promptKey] { groups[g].append(i) } else { at[p.promptKey] = groups.count; groups.append([i]) }
            }
        } else {
            groups = pairs.indices.map { [$0] }
        }
        guard groups.count >= 2 else {
            throw PreferenceDataError("all \(count) pairs have the same prompt, so keeping each prompt's pairs on one side (by_prompt) leaves one part empty; set by_prompt = false")
        }
        let order = draw.map { BatchPlan.shuffled(groups.count, draw: $0) } ?? Array(groups.indices)
        var cut = 1, best = Int.max, size = 0
        for k in 1..<order.count {  // the cut after k groups
            size += groups[order[k - 1]].count
            let miss = Swift.abs(size - first)
            if miss < best { best = miss; cut = k }
        }
        let a = order[..<cut].flatMap { groups[$0] }, b = order[cut...].flatMap { groups[$0] }
        return (a.sorted(), b.sorted())
    }

    /// The data set cut in two by `splitIndices`: each part keeps its pairs in data-set order.
    /// - Parameter label: how the parts describe their origin (e.g. "0.9, seed 1, by prompt").
    public func split(first: Int, byPrompt: Bool, draw: ((Int) -> Int)?, label: String) throws -> (PreferenceData, PreferenceData) {
        let (a, b) = try splitIndices(first: first, byPrompt: byPrompt, draw: draw)
        return (PreferenceData(parent: self, indices: a, derivation: "part 1 of a split of \(count) pairs (\(label))"),
                PreferenceData(parent: self, indices: b, derivation: "part 2 of a split of \(count) pairs (\(label))"))
    }

    /// Steps 2-4 of the file comment for one row: TRL's prompt_ids, chosen_ids, rejected_ids (0-based ids), and a
    /// hash of the rendered prompt.
    static func tokenize(_ row: PreferenceRow, tokenizer: Tokenizer, options: PreferenceOptions) throws
        -> (prompt: [Int], chosen: [Int], rejected: [Int], key: UInt64) {
        let promptText: String, chosenText: String, rejectedText: String, special: Bool
        switch (row.prompt, row.chosen, row.rejected) {
        case let (.text(p), .text(c), .text(r)):
            let eos = options.eosToken ?? ""
            func withEOS(_ s: String) -> String {
                s.unicodeScalars.reversed().starts(with: eos.unicodeScalars.reversed()) ? s : s + eos  // str.endswith
            }
            promptText = p
            chosenText = p + withEOS(c)
            rejectedText = p + withEOS(r)
            special = true
        case let (.messages(p), .messages(c), .messages(r)):
            let template = options.chatTemplate
            promptText = try template.render(p, addGenerationPrompt: true)
            chosenText = try template.render(p + c, addGenerationPrompt: false)
            rejectedText = try template.render(p + r, addGenerationPrompt: false)
            special = false
        default:
            throw PreferenceDataError("prompt, chosen and rejected must all be strings or all be message lists")
        }
        let promptIDs = tokenizer.encode(promptText, addSpecial: special)
        let chosenIDs = tokenizer.encode(chosenText, addSpecial: special)
        let rejectedIDs = tokenizer.encode(rejectedText, addSpecial: special)
        let n = Swift.min(commonPrefixLength(promptIDs, chosenIDs), commonPrefixLength(promptIDs, rejectedIDs))
        return (Array(promptIDs[..<n]), Array(chosenIDs[n...]), Array(rejectedIDs[n...]), fnv1a(promptText))
    }

    static func commonPrefixLength(_ a: [Int], _ b: [Int]) -> Int {
        var n = 0
        while n < a.count && n < b.count && a[n] == b[n] { n += 1 }
        return n
    }

    static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }

    // MARK: sequences and batches

    public var count: Int { pairs.count }

    /// How many pairs were cut by a length limit.
    public var truncatedCount: Int { pairs.reduce(0) { $0 + ($1.truncated ? 1 : 0) } }

    /// The chosen (or rejected) sequence of pair `i` after max_length truncation: ids and completion mask.
    public func sequence(_ i: Int, chosen: Bool) -> TokenizedExample {
        let p = pairs[i]
        let completion = chosen ? p.chosen : p.rejected
        var ids = p.prompt.map(Int.init) + completion.map(Int.init)
        var mask = [Bool](repeating: false, count: p.prompt.count) + [Bool](repeating: true, count: completion.count)
        if let m = options.maxLength, ids.count > m {
            switch options.truncation {
            case .keepStart:
                ids.removeSubrange(m...)
                mask.removeSubrange(m...)
            case .keepEnd:
                ids.removeFirst(ids.count - m)
                mask.removeFirst(mask.count - m)
            }
        }
        return TokenizedExample(ids: ids, mask: mask)
    }

    /// The pairs at `indices` (0-based, each in 0..<count) in TRL's concatenated layout.
    /// - Precondition: indices are valid (the binding checks user input first).
    public func batch(_ indices: [Int], padID: Int? = nil) -> PreferenceBatch {
        let chosen = indices.map { sequence($0, chosen: true) }
        let rejected = indices.map { sequence($0, chosen: false) }
        let all = chosen + rejected
        let tb = TokenBatch(all, padID: padID ?? defaultPadID)
        var attention = [Float](repeating: 0, count: tb.ids.count)
        for (r, e) in all.enumerated() {
            for k in 0..<e.count { attention[r * tb.length + k] = 1 }
        }
        return PreferenceBatch(size: indices.count, length: tb.length, ids: tb.ids, mask: tb.mask,
                               attention: attention, pairs: indices, rows: indices.map { pairs[$0].row },
                               completionTokens: all.map { $0.mask.reduce(0) { $0 + ($1 ? 1 : 0) } })
    }

    /// A one-line summary: pairs, rows, cut and dropped.
    public var summary: String {
        var s = "\(pairs.count) pair\(pairs.count == 1 ? "" : "s") from \(sourceRows) row\(sourceRows == 1 ? "" : "s") (\(format.rawValue))"
        s += ", \(truncatedCount) truncated, \(dropped.count) dropped"
        if let d = derivation { s += "; \(d)" }
        return s
    }

    /// The warning a caller should show when rows were cut or dropped (nil when none were).
    public var lossNote: String? {
        guard truncatedCount > 0 || !dropped.isEmpty else { return nil }
        var parts: [String] = []
        if truncatedCount > 0 {
            let rows = pairs.filter(\.truncated).map { String($0.row + 1) }
            parts.append("\(truncatedCount) of \(sourceRows) rows truncated (\(options.settingsDescription.split(separator: " ").prefix(4).joined(separator: " "))): rows \(PreferenceData.list(rows))")
        }
        if !dropped.isEmpty {
            parts.append("\(dropped.count) dropped because the prompt alone fills max_length: rows \(PreferenceData.list(dropped.map { String($0.row + 1) }))")
        }
        return parts.joined(separator: "; ")
    }

    static func list(_ items: [String], limit: Int = 10) -> String {
        items.count <= limit ? items.joined(separator: ", ") : items.prefix(limit).joined(separator: ", ") + ", ... (\(items.count) in all)"
    }
}
