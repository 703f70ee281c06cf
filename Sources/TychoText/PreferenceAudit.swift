// PreferenceAudit.swift: what in a preference data set can mislead optimisation, found before any training.
//
// - Length bias: how often the chosen completion is longer than the rejected one, and the mean lengths. DPO's
//   summed log-probs reward whatever separates chosen from rejected; when that is mostly length, the policy learns
//   to write longer (or shorter) answers (Park et al. 2024, "Disentangling length from quality in DPO").
// - Identical pairs (chosen == rejected): their DPO gradient is zero, they only dilute the batch mean.
// - Duplicate pairs (the same prompt, chosen and rejected as an earlier pair): they weigh an example double.
// - Contradictions (the same pair with chosen and rejected swapped): they pull in opposite directions.
// - Prompts shared between the training and the evaluation split, and evaluation pairs identical to a training
//   pair: held-out accuracy then overstates generalisation.
// Lengths are completion tokens as TRL counts them (chosen_ids, EOS included, before max_length). Comparisons
// use token ids, prompts their rendered text (so a prompt that tokenizes differently next to different
// completions is still one prompt). Rows are reported 0-based here and 1-based by the Lua binding.

import Foundation

public struct PreferenceAudit {
    public var pairs = 0
    public var chosenLonger = 0
    public var rejectedLonger = 0
    public var sameLength = 0
    public var meanChosenTokens = 0.0
    public var meanRejectedTokens = 0.0
    /// Source rows whose chosen and rejected completions are the same tokens.
    public var identicalRows: [Int] = []
    /// (row, the earlier row it repeats).
    public var duplicateRows: [(row: Int, first: Int)] = []
    /// (row, the earlier row that has chosen and rejected swapped).
    public var contradictoryRows: [(row: Int, other: Int)] = []
    public var truncatedRows: [Int] = []
    public var dropped: [PreferenceDrop] = []
    public var sourceRows = 0

    /// Set when an evaluation split was given.
    public var evalPairs: Int?
    /// Evaluation rows whose prompt also appears in the training data.
    public var evalSharedPromptRows: [Int] = []
    /// Distinct prompts found in both splits.
    public var sharedPrompts = 0
    /// Evaluation rows identical to a training pair (prompt, chosen and rejected).
    public var evalLeakedRows: [Int] = []

    /// Plain-language warnings, one per problem found.
    public var warnings: [String] = []

    public var chosenLongerFraction: Double { pairs == 0 ? 0 : Double(chosenLonger) / Double(pairs) }
    public var rejectedLongerFraction: Double { pairs == 0 ? 0 : Double(rejectedLonger) / Double(pairs) }
    public var sameLengthFraction: Double { pairs == 0 ? 0 : Double(sameLength) / Double(pairs) }

    /// The fraction of pairs on one side above which length bias is reported.
    public static let lengthBiasThreshold = 0.6

    struct PairKey: Hashable {
        let prompt: UInt64
        let chosen: [Int32]
        let rejected: [Int32]
    }

    public init(train: PreferenceData, eval: PreferenceData? = nil) {
        pairs = train.count
        sourceRows = train.sourceRows
        dropped = train.dropped
        var sumC = 0, sumR = 0
        var firstOf: [PairKey: Int] = [:]
        for p in train.pairs {
            sumC += p.chosen.count
            sumR += p.rejected.count
            if p.chosen.count > p.rejected.count { chosenLonger += 1 }
            else if p.chosen.count < p.rejected.count { rejectedLonger += 1 }
            else { sameLength += 1 }
            if p.chosen == p.rejected { identicalRows.append(p.row) }
            if p.truncated { truncatedRows.append(p.row) }
            let key = PairKey(prompt: p.promptKey, chosen: p.chosen, rejected: p.rejected)
            if let first = firstOf[key] {
                duplicateRows.append((p.row, first))
            } else {
                firstOf[key] = p.row
                if p.chosen != p.rejected,
                   let other = firstOf[PairKey(prompt: p.promptKey, chosen: p.rejected, rejected: p.chosen)] {
                    contradictoryRows.append((p.row, other))
                }
            }
        }
        if pairs > 0 {
            meanChosenTokens = Double(sumC) / Double(pairs)
            meanRejectedTokens = Double(sumR) / Double(pairs)
        }
        if let eval {
            evalPairs = eval.count
            let trainPrompts = Set(train.pairs.map(\.promptKey))
            var shared = Set<UInt64>()
            for p in eval.pairs {
                if trainPrompts.contains(p.promptKey) {
                    evalSharedPromptRows.append(p.row)
                    shared.insert(p.promptKey)
                }
                if firstOf[PairKey(prompt: p.promptKey, chosen: p.chosen, rejected: p.rejected)] != nil {
                    evalLeakedRows.append(p.row)
                }
            }
            sharedPrompts = shared.count
        }
        warnings = makeWarnings()
    }

    static func percent(_ x: Double) -> String {
        let v = (x * 1000).rounded() / 10
        return v == v.rounded() ? "\(Int(v))%" : "\(v)%"
    }

    static func decimal(_ x: Double) -> String { "\((x * 10).rounded() / 10)" }

    static func rows(_ rs: [Int], limit: Int = 8) -> String {
        PreferenceData.list(rs.map { String($0 + 1) }, limit: limit)
    }

    func makeWarnings() -> [String] {
        var w: [String] = []
        if pairs > 0 && chosenLongerFraction > PreferenceAudit.lengthBiasThreshold {
            w.append("chosen is longer than rejected in \(PreferenceAudit.percent(chosenLongerFraction)) of pairs (mean \(PreferenceAudit.decimal(meanChosenTokens)) vs \(PreferenceAudit.decimal(meanRejectedTokens)) completion tokens): the loss can fall by making answers longer; compare with a length-normalised loss (ipo, sigmoid_norm) or balance the data")
        } else if pairs > 0 && rejectedLongerFraction > PreferenceAudit.lengthBiasThreshold {
            w.append("rejected is longer than chosen in \(PreferenceAudit.percent(rejectedLongerFraction)) of pairs (mean \(PreferenceAudit.decimal(meanChosenTokens)) vs \(PreferenceAudit.decimal(meanRejectedTokens)) completion tokens): the loss can fall by making answers shorter; compare with a length-normalised loss (ipo, sigmoid_norm) or balance the data")
        }
        if !identicalRows.isEmpty {
            w.append("\(identicalRows.count) pair\(identicalRows.count == 1 ? " has" : "s have") identical chosen and rejected (rows \(PreferenceAudit.rows(identicalRows))): no preference signal, they only dilute the batch")
        }
        if !duplicateRows.isEmpty {
            w.append("\(duplicateRows.count) pair\(duplicateRows.count == 1 ? " repeats" : "s repeat") an earlier pair (rows \(PreferenceAudit.rows(duplicateRows.map(\.row)))): those examples weigh double")
        }
        if !contradictoryRows.isEmpty {
            w.append("\(contradictoryRows.count) pair\(contradictoryRows.count == 1 ? " also appears" : "s also appear") with chosen and rejected swapped (rows \(PreferenceAudit.rows(contradictoryRows.map(\.row)))): they pull in opposite directions")
        }
        if let e = evalPairs, !evalSharedPromptRows.isEmpty {
            w.append("\(evalSharedPromptRows.count) of \(e) eval pairs share a prompt with the training data (eval rows \(PreferenceAudit.rows(evalSharedPromptRows))): held-out accuracy overstates generalisation")
        }
        if !evalLeakedRows.isEmpty {
            w.append("\(evalLeakedRows.count) eval pair\(evalLeakedRows.count == 1 ? " is" : "s are") identical to a training pair (eval rows \(PreferenceAudit.rows(evalLeakedRows)))")
        }
        if !truncatedRows.isEmpty {
            w.append("\(truncatedRows.count) pair\(truncatedRows.count == 1 ? " was" : "s were") truncated (rows \(PreferenceAudit.rows(truncatedRows))): a cut chosen or rejected loses its end, EOS included")
        }
        if !dropped.isEmpty {
            w.append("\(dropped.count) row\(dropped.count == 1 ? " was" : "s were") dropped because the prompt alone fills max_length (rows \(PreferenceAudit.rows(dropped.map(\.row))))")
        }
        return w
    }

    /// The audit as readable text.
    public func report() -> String {
        var s = "Preference data audit: \(pairs) pair\(pairs == 1 ? "" : "s") from \(sourceRows) row\(sourceRows == 1 ? "" : "s") (\(truncatedRows.count) truncated, \(dropped.count) dropped)\n"
        func line(_ label: String, _ text: String) { s += "  " + label.padding(toLength: 17, withPad: " ", startingAt: 0) + text + "\n" }
        line("length bias", "chosen longer in \(PreferenceAudit.percent(chosenLongerFraction)) of pairs, rejected longer in \(PreferenceAudit.percent(rejectedLongerFraction)), same length \(PreferenceAudit.percent(sameLengthFraction))")
        line("", "mean completion tokens: chosen \(PreferenceAudit.decimal(meanChosenTokens)), rejected \(PreferenceAudit.decimal(meanRejectedTokens))")
        line("identical pairs", identicalRows.isEmpty ? "none" : "\(identicalRows.count) (rows \(PreferenceAudit.rows(identicalRows)))")
        line("duplicate pairs", duplicateRows.isEmpty ? "none" : "\(duplicateRows.count) (" + duplicateRows.prefix(5).map { "row \($0.row + 1) repeats row \($0.first + 1)" }.joined(separator: ", ") + (duplicateRows.count > 5 ? ", ..." : "") + ")")
        line("contradictions", contradictoryRows.isEmpty ? "none" : "\(contradictoryRows.count) (" + contradictoryRows.prefix(5).map { "row \($0.row + 1) swaps row \($0.other + 1)" }.joined(separator: ", ") + (contradictoryRows.count > 5 ? ", ..." : "") + ")")
        if let e = evalPairs {
            line("eval overlap", evalSharedPromptRows.isEmpty ? "no eval prompt is in the training data (\(e) eval pairs)"
                 : "\(evalSharedPromptRows.count) of \(e) eval pairs share a prompt with training (\(sharedPrompts) distinct prompt\(sharedPrompts == 1 ? "" : "s")); \(evalLeakedRows.count) identical to a training pair")
        }
        if warnings.isEmpty {
            s += "No problems found.\n"
        } else {
            s += "Warnings:\n"
            for w in warnings { s += "  - \(w)\n" }
        }
        return s
    }
}
