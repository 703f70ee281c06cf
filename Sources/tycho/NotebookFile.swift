// NotebookFile.swift: nbformat 4 notebooks read and written the way nbformat 5.11 writes them (`nbjson.writes`):
// one-space indent, sorted keys, non-ASCII kept, multi-line strings split into lists of lines (source, stream
// text, text/* and SVG data) and a final newline; so a notebook Tycho writes re-saves in Jupyter without diff
// noise. Cells without ids (nbformat < 4.5) get deterministic ones.
// What it refuses: anything that is not an nbformat 4 notebook (no cells list, another major version).

import Foundation
import TychoText
import TychoTrain

struct NotebookError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A notebook as JSON values; cells are kept whole so unknown keys survive a rewrite.
struct Notebook {
    var metadata: JSONValue
    var cells: [JSONValue]
    var nbformatMinor: Int

    static let kernelspec: JSONValue = .object([("display_name", .string("Tycho (Lua 5.4)")), ("language", .string("lua")), ("name", .string("tycho"))])
    static let languageInfo: JSONValue = .object([
        ("codemirror_mode", .string("lua")), ("file_extension", .string(".lua")), ("mimetype", .string("text/x-lua")),
        ("name", .string("lua")), ("pygments_lexer", .string("lua")), ("version", .string("5.4")),
    ])

    // MARK: reading

    static func read(_ path: String) throws -> Notebook {
        guard let data = FileManager.default.contents(atPath: path) else { throw NotebookError("cannot read \(path)") }
        let v: JSONValue
        do { v = try JSONParser.parse(String(decoding: data, as: UTF8.self)) } catch {
            throw NotebookError("\(path): not JSON: \(error)")
        }
        return try Notebook(v, path: path)
    }

    init(_ v: JSONValue, path: String) throws {
        guard v.objectValue != nil else { throw NotebookError("\(path): not a notebook (the top level is not an object)") }
        guard v["nbformat"]?.intValue == 4 else { throw NotebookError("\(path): nbformat \(v["nbformat"].map { $0.line } ?? "missing"); Tycho reads nbformat 4") }
        guard let cells = v["cells"]?.arrayValue else { throw NotebookError("\(path): no cells list") }
        metadata = v["metadata"].flatMap { $0.objectValue != nil ? $0 : nil } ?? .object([])
        nbformatMinor = max(v["nbformat_minor"]?.intValue ?? 0, 5)
        self.cells = []
        var ids = Set<String>()
        for (i, c) in cells.enumerated() {
            guard c.objectValue != nil, let type = c["cell_type"]?.stringValue else { throw NotebookError("\(path): cell \(i + 1) is not a cell") }
            var cell = c
            // Sources as one string in memory (joined when the file has a list of lines).
            cell = cell.setting("source", .string(Notebook.joined(c["source"]) ?? ""))
            if cell["metadata"]?.objectValue == nil { cell = cell.setting("metadata", .object([])) }
            if type == "code" {
                if cell["outputs"]?.arrayValue == nil { cell = cell.setting("outputs", .array([])) }
                if cell["execution_count"] == nil { cell = cell.setting("execution_count", .null) }
            }
            var id = c["id"]?.stringValue ?? ""
            if !Notebook.isValidID(id) || ids.contains(id) { id = Notebook.makeID(index: i, source: Notebook.joined(c["source"]) ?? "", taken: ids) }
            ids.insert(id)
            cell = cell.setting("id", .string(id))
            self.cells.append(cell)
        }
    }

    init(metadata: JSONValue, cells: [JSONValue]) {
        self.metadata = metadata
        self.cells = cells
        nbformatMinor = 5
    }

    /// A string, or a list of strings joined (nbformat's `rejoin_lines`).
    static func joined(_ v: JSONValue?) -> String? {
        if let s = v?.stringValue { return s }
        if let xs = v?.arrayValue { return xs.compactMap(\.stringValue).joined() }
        return nil
    }

    static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.count <= 64 && id.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_") }
    }

    /// Eight hex digits from the cell's position and source (FNV-1a), unique in the notebook.
    static func makeID(index: Int, source: String, taken: Set<String>) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in Array("\(index)\u{0}\(source)".utf8) { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        var id = String(format: "%08x", UInt32(truncatingIfNeeded: h ^ (h >> 32)))
        var k = 1
        while taken.contains(id) { id = String(format: "%08x", UInt32(truncatingIfNeeded: h &+ UInt64(k))); k += 1 }
        return id
    }

    static func newCell(type: String, source: String, id: String, tags: [String] = []) -> JSONValue {
        var kv: [(String, JSONValue)] = [("cell_type", .string(type)), ("id", .string(id)), ("source", .string(source))]
        kv.append(("metadata", tags.isEmpty ? .object([]) : .object([("tags", .array(tags.map { .string($0) }))])))
        if type == "code" { kv += [("execution_count", .null), ("outputs", .array([]))] }
        return .object(kv)
    }

    // MARK: writing (nbformat's layout)

    var json: JSONValue {
        .object([("cells", .array(cells.map(Notebook.splitLines))), ("metadata", metadata), ("nbformat", .int(4)), ("nbformat_minor", .int(nbformatMinor))])
    }

    /// The file's text, byte for byte as `nbformat.writes` would give it.
    var text: String {
        var out = ""
        NotebookJSON.write(json, level: 0, into: &out)
        return out + "\n"
    }

    func write(to path: String) throws {
        let tmp = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: tmp, contents: Data(text.utf8)) else { throw NotebookError("cannot write \(path)") }
        guard rename(tmp, path) == 0 else {
            unlink(tmp)
            throw NotebookError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// nbformat's `split_lines`: sources, stream text, and text/* and SVG data as lists of lines.
    static func splitLines(_ cell: JSONValue) -> JSONValue {
        var c = cell
        if let s = c["source"]?.stringValue { c = c.setting("source", lines(s)) }
        if let att = c["attachments"]?.objectValue {
            c = c.setting("attachments", .object(att.map { ($0.0, splitBundle($0.1)) }))
        }
        if c["cell_type"]?.stringValue == "code", let outs = c["outputs"]?.arrayValue {
            c = c.setting("outputs", .array(outs.map { o in
                switch o["output_type"]?.stringValue {
                case "execute_result", "display_data":
                    return o["data"].map { o.setting("data", splitBundle($0)) } ?? o
                case "stream":
                    return o["text"]?.stringValue.map { o.setting("text", lines($0)) } ?? o
                default: return o
                }
            }))
        }
        return c
    }

    static func splitBundle(_ data: JSONValue) -> JSONValue {
        guard let kv = data.objectValue else { return data }
        return .object(kv.map { k, v in
            if let s = v.stringValue, k.hasPrefix("text/") || k == "application/javascript" || k == "image/svg+xml" { return (k, lines(s)) }
            return (k, v)
        })
    }

    /// Python's `str.splitlines(True)`: every line keeps its ending; the line breaks are Python's set.
    static func lines(_ s: String) -> JSONValue {
        var out: [JSONValue] = []
        var cur = String.UnicodeScalarView()
        var it = Array(s.unicodeScalars)[...]
        while let u = it.popFirst() {
            cur.append(u)
            switch u.value {
            case 0x0D:
                if it.first == "\n" { cur.append(it.removeFirst()) }
                fallthrough
            case 0x0A, 0x0B, 0x0C, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029:
                out.append(.string(String(cur)))
                cur = String.UnicodeScalarView()
            default: break
            }
        }
        if !cur.isEmpty { out.append(.string(String(cur))) }
        return .array(out)
    }
}

/// Python's `json.dumps(v, indent=1, sort_keys=True, ensure_ascii=False, separators=(",", ": "))`.
enum NotebookJSON {
    static func write(_ v: JSONValue, level: Int, into out: inout String) {
        switch v {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += pythonFloat(d)
        case .string(let s): quote(s, into: &out)
        case .array(let xs):
            if xs.isEmpty { out += "[]"; return }
            out += "["
            for (k, x) in xs.enumerated() {
                out += k == 0 ? "\n" : ",\n"
                out += String(repeating: " ", count: level + 1)
                write(x, level: level + 1, into: &out)
            }
            out += "\n" + String(repeating: " ", count: level) + "]"
        case .object(let kv):
            if kv.isEmpty { out += "{}"; return }
            // Sorted by code point (UTF-8 byte order is the same); the last of duplicate keys wins.
            var seen: [String: JSONValue] = [:]
            for (k, x) in kv { seen[k] = x }
            out += "{"
            for (k, entry) in seen.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }).enumerated() {
                out += k == 0 ? "\n" : ",\n"
                out += String(repeating: " ", count: level + 1)
                quote(entry.key, into: &out)
                out += ": "
                write(entry.value, level: level + 1, into: &out)
            }
            out += "\n" + String(repeating: " ", count: level) + "}"
        }
    }

    /// Python's float repr for finite values (JSON has no others: they are written as null).
    static func pythonFloat(_ d: Double) -> String {
        guard d.isFinite else { return "null" }
        var s = d.description  // shortest round-trip, like repr
        if s.contains("e") {
            // Swift: 1e-05, 1e+16; Python the same, but Swift may drop ".0" differences only in the mantissa.
            if let e = s.firstIndex(of: "e"), s[s.index(after: e)] != "-" && s[s.index(after: e)] != "+" {
                s.insert("+", at: s.index(after: e))
            }
        }
        return s
    }

    static func quote(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        out += "\""
    }
}
