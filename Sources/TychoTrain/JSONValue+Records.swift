// JSONValue+Records.swift: what checkpoints and run records need on top of TychoText's JSONValue: reading
// fields, numbers that may be non-finite, and an indented rendering with sorted keys for the small JSON files
// people open (manifest.json, checkpoints.json, trainer_state.json).
//
// JSON has no NaN or infinity, yet a NaN loss is exactly what a run record must show. Non-finite numbers are
// written as the strings "NaN", "Infinity" and "-Infinity" (the spellings of Python's json module, as strings so
// that every JSON reader accepts the file), and read back as numbers.

import Foundation
import TychoText

extension JSONValue {
    /// A number as JSON: finite values as numbers, NaN and infinities as strings.
    public static func number(_ d: Double) -> JSONValue {
        if d.isNaN { return .string("NaN") }
        if d.isInfinite { return .string(d > 0 ? "Infinity" : "-Infinity") }
        return .double(d)
    }

    /// An object's field (nil for other values and absent keys; the last pair wins).
    public subscript(key: String) -> JSONValue? {
        guard case .object(let kv) = self else { return nil }
        return kv.last { $0.0 == key }?.1
    }

    /// A number, or one of the strings "NaN", "Infinity", "-Infinity".
    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        case .string("NaN"): return .nan
        case .string("Infinity"): return .infinity
        case .string("-Infinity"): return -.infinity
        default: return nil
        }
    }

    public var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d == d.rounded() && Swift.abs(d) < 9e15: return Int(d)
        default: return nil
        }
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let xs) = self { return xs }
        return nil
    }

    public var objectValue: [(String, JSONValue)]? {
        if case .object(let kv) = self { return kv }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// An object with `key` set to `value` (replacing it, or appended).
    public func setting(_ key: String, _ value: JSONValue) -> JSONValue {
        guard case .object(var kv) = self else { return .object([(key, value)]) }
        if let i = kv.firstIndex(where: { $0.0 == key }) { kv[i].1 = value } else { kv.append((key, value)) }
        return .object(kv)
    }

    /// Two-space indented, keys sorted, lists of scalars on one line, a final newline.
    public var prettyText: String {
        var out = ""
        renderPretty(into: &out, indent: 0)
        return out + "\n"
    }

    private var isScalar: Bool {
        switch self {
        case .array, .object: return false
        default: return true
        }
    }

    private func renderPretty(into out: inout String, indent: Int) {
        let pad = String(repeating: " ", count: indent + 2)
        switch self {
        case .array(let xs):
            if xs.isEmpty { out += "[]"; return }
            if xs.allSatisfy(\.isScalar) { out += JSONValue.array(xs).line; return }
            out += "[\n"
            for (k, x) in xs.enumerated() {
                out += pad
                x.renderPretty(into: &out, indent: indent + 2)
                out += k + 1 < xs.count ? ",\n" : "\n"
            }
            out += String(repeating: " ", count: indent) + "]"
        case .object(let kv):
            if kv.isEmpty { out += "{}"; return }
            let sorted = kv.sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
            out += "{\n"
            for (k, (key, v)) in sorted.enumerated() {
                out += pad + JSONValue.string(key).line + ": "
                v.renderPretty(into: &out, indent: indent + 2)
                out += k + 1 < sorted.count ? ",\n" : "\n"
            }
            out += String(repeating: " ", count: indent) + "}"
        default:
            out += line
        }
    }

    /// Parses a whole file.
    static func read(_ path: String) throws -> JSONValue {
        let text = try DurableFiles.readText(path)
        do { return try JSONParser.parse(text) } catch let e as JSONSyntaxError {
            throw RecordError("\(path): \(e.description)")
        }
    }
}

/// Times as people and tools read them: ISO 8601 in UTC with milliseconds (`2026-05-01T12:00:00.000Z`).
enum Timestamp {
    static func iso(_ date: Date = Date()) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: date)
    }

    static func parse(_ s: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: s) ?? ISO8601DateFormatter().date(from: s)
    }
}
