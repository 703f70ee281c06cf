// LineReader.swift: GNU readline with Tycho's history file and completion.
//
// Readline's callbacks cannot capture context, so the state they need lives in `nonisolated(unsafe)`
// globals, set by the single REPL of the process. History: multi-line entries with timestamps in
// ~/.tycho_history (or $TYCHO_HISTORY), appended after every entry, as trepl does.

@preconcurrency import CReadline
import CLuaShim
import Foundation
import TychoLua

nonisolated(unsafe) private var completionState: LuaState?
nonisolated(unsafe) private var completionMatches: [String] = []

/// readline's generator: called with state 0 first, then until it returns nil.
private func completionGenerator(_ text: UnsafePointer<CChar>?, _ state: Int32) -> UnsafeMutablePointer<CChar>? {
    if state == 0 {
        let line = rl_line_buffer.map { String(cString: $0) } ?? ""
        let end = Int(rl_point)
        let before = String(line.utf8.prefix(end)) ?? line
        let start = LuaState.completionStart(before)
        let word = String(Array(before)[start...])
        completionMatches = completionState?.completions(for: word) ?? []
        completionMatches.reverse()
    }
    guard let next = completionMatches.popLast() else { return nil }
    return strdup(next)
}

private func attemptedCompletion(_ text: UnsafePointer<CChar>?, _ start: Int32, _ end: Int32) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
    // Inside an unclosed string literal, complete file names (readline's own completer).
    if cursorInString() { rl_attempted_completion_over = 0; return nil }
    rl_attempted_completion_over = 1  // never fall back to file names outside strings
    rl_completion_append_character = 0  // readline resets it before every attempt
    return rl_completion_matches(text, completionGenerator)
}

/// True when the text before the cursor has an unclosed string literal.
private func cursorInString() -> Bool {
    let line = rl_line_buffer.map { String(cString: $0) } ?? ""
    let before = String(line.utf8.prefix(Int(rl_point))) ?? line
    var quote: Character? = nil
    for c in before {
        if let q = quote { if c == q { quote = nil } } else if c == "\"" || c == "'" { quote = c }
    }
    return quote != nil
}

private let codeBreaks = UnsafeMutablePointer<CChar>(strdup(" \t\n\"\\'><=;+-*/%^~#{}()[],&|"))
private let pathBreaks = UnsafeMutablePointer<CChar>(strdup(" \t\n\"'"))

/// Word boundaries: Lua punctuation in code, only quotes and blanks inside a string (so paths stay whole).
private func wordBreaks() -> UnsafeMutablePointer<CChar>? { cursorInString() ? pathBreaks : codeBreaks }

final class LineReader {
    let historyPath: String
    let historyLimit: Int32 = 1000

    init(state: LuaState) {
        completionState = state
        historyPath = ProcessInfo.processInfo.environment["TYCHO_HISTORY"]
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".tycho_history")
        rl_readline_name = UnsafePointer(strdup("tycho"))
        rl_attempted_completion_function = attemptedCompletion
        rl_completer_word_break_characters = UnsafePointer(codeBreaks)
        rl_completion_word_break_hook = wordBreaks
        rl_completion_append_character = 0
        rl_variable_bind("show-all-if-ambiguous", "on")  // one TAB completes the common prefix and lists
        history_comment_char = CChar(UInt8(ascii: "#"))
        history_write_timestamps = 1
        history_multiline_entries = 1
        read_history(historyPath)
    }

    /// One line, or nil at end of input (Ctrl-D). Ctrl-C at the prompt clears the line.
    func readLine(prompt: String) -> String? {
        tycho_readline_prompt_sigint_install()
        guard let p = readline(prompt) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    func addHistory(_ entry: String) {
        guard !entry.trimmingCharacters(in: .whitespaces).isEmpty else { return }
        add_history(entry)
        if !FileManager.default.fileExists(atPath: historyPath) {
            FileManager.default.createFile(atPath: historyPath, contents: nil)
        }
        append_history(1, historyPath)
        history_truncate_file(historyPath, historyLimit)
    }
}
