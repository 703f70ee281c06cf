// GraderTemplate.swift: OpenAI's grader templates: text with `{{ namespace.path }}` variables, where the namespace
// is `item` (the data row) or `sample` (`sample.output_text`, `sample.output_json[.path]`). Paths are dotted keys,
// JSON-path style: `{{item.meta.answer}}`, `{{item.choices.0}}` or `{{item.choices[0]}}` (array indices 0-based,
// as in JSON paths and OpenAI's templates). Strings render as they are, other values as compact JSON.
//
// A template is parsed once, when the grader is made: an unclosed `{{`, an unknown namespace or an unknown sample
// variable is an error then. A variable the row lacks is an invalid_variable_error when rendering, and
// `sample.output_json` of an answer that is not JSON a sample_parse_error.

import Foundation
import TychoText

/// One `{{ ... }}` variable.
public struct GraderVariable: Hashable, CustomStringConvertible {
    public enum Namespace: String { case item, sample }
    public enum Segment: Hashable {
        case key(String)
        case index(Int)
    }

    public let namespace: Namespace
    /// For `sample`, the first segment is `output_text` or `output_json`.
    public let path: [Segment]

    public init(namespace: Namespace, path: [Segment]) {
        self.namespace = namespace
        self.path = path
    }

    /// `item.meta.answer`, `item.choices[0]`.
    public var description: String {
        var s = namespace.rawValue
        for p in path {
            switch p {
            case .key(let k): s += ".\(k)"
            case .index(let i): s += "[\(i)]"
            }
        }
        return s
    }

    /// Parses `namespace.path` (the text between the braces, trimmed).
    public init(parsing text: String) throws {
        var segments: [Segment] = []
        var current = ""
        let chars = Array(text)
        var i = 0
        func flush() throws {
            guard !current.isEmpty else { throw GraderSpecError("'{{\(text)}}': an empty name in the path") }
            segments.append(.key(current))
            current = ""
        }
        var afterBracket = false
        while i < chars.count {
            let c = chars[i]
            if c == "." {
                if afterBracket { afterBracket = false } else { try flush() }
                i += 1
                if i == chars.count { throw GraderSpecError("'{{\(text)}}': the path ends with '.'") }
            } else if c == "[" {
                if !afterBracket { try flush() }
                guard let close = chars[i...].firstIndex(of: "]"), let n = Int(String(chars[(i + 1)..<close])), n >= 0 else {
                    throw GraderSpecError("'{{\(text)}}': '[' must hold a non-negative index and close with ']'")
                }
                segments.append(.index(n))
                i = close + 1
                afterBracket = true
                if i < chars.count && chars[i] != "." && chars[i] != "[" {
                    throw GraderSpecError("'{{\(text)}}': expected '.' or '[' after ']'")
                }
            } else if c.isWhitespace || c == "{" || c == "}" || c == "]" {
                throw GraderSpecError("'{{\(text)}}': unexpected '\(c)' in a variable")
            } else {
                current.append(c)
                i += 1
            }
        }
        if !afterBracket { try flush() }
        guard case .key(let ns) = segments[0], let namespace = Namespace(rawValue: ns) else {
            throw GraderSpecError("'{{\(text)}}': the namespace must be item or sample")
        }
        let rest = Array(segments.dropFirst())
        guard !rest.isEmpty else {
            throw GraderSpecError("'{{\(text)}}': name a variable, as in {{\(namespace == .item ? "item.answer" : "sample.output_text")}}")
        }
        if namespace == .sample {
            switch rest[0] {
            case .key("output_text"):
                guard rest.count == 1 else { throw GraderSpecError("'{{\(text)}}': sample.output_text is a string without fields") }
            case .key("output_json"): break
            default:
                throw GraderSpecError("'{{\(text)}}': the sample variables are sample.output_text and sample.output_json")
            }
        }
        self.namespace = namespace
        self.path = rest
    }

    /// The value at this variable's path in `root`, or nil when absent. Keys index objects; indices and keys made of
    /// digits index arrays (0-based).
    public static func lookup(_ path: ArraySlice<Segment>, in root: JSONValue) -> JSONValue? {
        var v = root
        for seg in path {
            switch (seg, v) {
            case (.key(let k), .object(let kv)):
                guard let next = kv.first(where: { $0.0 == k })?.1 else { return nil }
                v = next
            case (.index(let n), .array(let xs)):
                guard n < xs.count else { return nil }
                v = xs[n]
            case (.key(let k), .array(let xs)):
                guard let n = Int(k), n >= 0, n < xs.count, k.allSatisfy(\.isASCII) else { return nil }
                v = xs[n]
            default:
                return nil
            }
        }
        return v
    }

    /// True when `item` has this variable (sample variables are not the data's business: always true).
    public func isProvided(by item: JSONValue) -> Bool {
        namespace == .sample || GraderVariable.lookup(path[...], in: item) != nil
    }

    /// The variable's value for one sample and row.
    public func value(sample: GraderSample, item: JSONValue) throws -> JSONValue {
        switch namespace {
        case .item:
            guard let v = GraderVariable.lookup(path[...], in: item) else {
                throw GraderError(.invalidVariableError, "{{\(self)}}: the item has no such field")
            }
            return v
        case .sample:
            if case .key("output_text") = path[0] { return .string(sample.outputText) }
            let json = try sample.json()
            guard let v = GraderVariable.lookup(path.dropFirst(), in: json) else {
                throw GraderError(.invalidVariableError, "{{\(self)}}: the sample's JSON output has no such field")
            }
            return v
        }
    }
}

/// Text with `{{ namespace.path }}` variables.
public struct GraderTemplate: CustomStringConvertible {
    enum Part {
        case text(String)
        case variable(GraderVariable)
    }

    public let source: String
    let parts: [Part]

    /// - Throws: `GraderSpecError` for an unclosed `{{` or a bad variable.
    public init(_ source: String) throws {
        self.source = source
        var parts: [Part] = []
        var rest = Substring(source)
        while let open = rest.range(of: "{{") {
            if open.lowerBound > rest.startIndex { parts.append(.text(String(rest[..<open.lowerBound]))) }
            let inside = rest[open.upperBound...]
            guard let close = inside.range(of: "}}") else {
                throw GraderSpecError("'\(source.prefix(60))': '{{' without a closing '}}'")
            }
            let name = inside[..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            parts.append(.variable(try GraderVariable(parsing: name)))
            rest = inside[close.upperBound...]
        }
        if !rest.isEmpty { parts.append(.text(String(rest))) }
        self.parts = parts
    }

    public var description: String { source }

    public var variables: [GraderVariable] {
        parts.compactMap { if case .variable(let v) = $0 { return v } else { return nil } }
    }

    /// The text with every variable substituted.
    /// - Throws: `GraderError` (invalid_variable_error, sample_parse_error).
    public func render(sample: GraderSample, item: JSONValue) throws -> String {
        var out = ""
        for p in parts {
            switch p {
            case .text(let s): out += s
            case .variable(let v): out += GraderTemplate.text(of: try v.value(sample: sample, item: item))
            }
        }
        return out
    }

    /// A value as template text: a string as it is, anything else as compact JSON.
    static func text(of v: JSONValue) -> String {
        if case .string(let s) = v { return s }
        return v.line
    }
}
