// JSONLines.swift: JSON Lines data files (OpenAI fine-tuning files, TRL / Hugging Face datasets): one JSON
// object per line, read line by line with line numbers.
//
// Each non-blank line is one row, and a row is a JSON object (rows have named fields: `text`, `prompt`,
// `messages`, ...), so a line holding an array, a string or a number is an error, as is invalid JSON. Lines
// of only whitespace are skipped, a UTF-8 byte order mark at the start is skipped, CRLF endings are accepted.
// Every problem names the file and its 1-based line: `data/train.jsonl:17: invalid JSON at column 9: ...`.
// `JSONLinesReader` holds one line at a time, so a file larger than memory can be walked. Writing is left
// to the caller: `JSONValue.line` renders a row, and the file is replaced atomically by whoever owns files.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `close(2)`, named apart from `JSONLinesReader.close()`.
private func posixClose(_ fd: Int32) -> Int32 { close(fd) }

/// A problem with a JSONL file: `path:line: message`, or `path: message` for the file as a whole.
public struct JSONLinesError: Error, Equatable, CustomStringConvertible {
    public let path: String
    /// The 1-based line, or nil when the problem is the file itself (missing, unreadable).
    public let line: Int?
    public let message: String

    public init(path: String, line: Int?, message: String) {
        self.path = path; self.line = line; self.message = message
    }

    public var description: String { line.map { "\(path):\($0): \(message)" } ?? "\(path): \(message)" }
}

/// Reads the rows of a JSONL file one at a time. Owns one open file, closed by `close()` or `deinit`.
public final class JSONLinesReader {
    public let path: String
    /// The number of the last line read (blank ones included).
    public private(set) var lineNumber = 0
    /// The number of rows returned so far.
    public private(set) var rowCount = 0

    private var fd: Int32
    private var buffer: UnsafeMutablePointer<UInt8>
    private var capacity = 1 << 16
    private var start = 0, end = 0, scanned = 0
    private var atEOF = false

    /// Opens `path` for reading.
    /// - Throws: `JSONLinesError` when the file cannot be opened or is a directory.
    public init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw JSONLinesError(path: path, line: nil, message: "cannot open: \(JSONLinesReader.errnoText())") }
        var st = stat()
        if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
            _ = posixClose(fd)
            throw JSONLinesError(path: path, line: nil, message: "is a directory")
        }
        buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
    }

    deinit {
        close()
        buffer.deallocate()
    }

    /// Closes the file; `next()` then returns nil. Closing twice is harmless.
    public func close() {
        if fd >= 0 { _ = posixClose(fd); fd = -1 }
        atEOF = true
        start = end
        scanned = end
    }

    public var isClosed: Bool { fd < 0 }

    /// The next row and its line number, or nil at the end of the file. Blank lines are skipped.
    /// - Throws: `JSONLinesError` naming the line for invalid JSON or a row that is not an object, or the
    ///   file for a read error.
    public func next() throws -> (line: Int, row: JSONValue)? {
        while let line = try nextLine() {
            var bytes = line
            if lineNumber == 1, bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF {
                bytes = UnsafeBufferPointer(rebasing: bytes[3...])  // UTF-8 byte order mark
            }
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            let value: JSONValue
            do {
                value = try JSONParser.parse(bytes)
            } catch let e as JSONSyntaxError {
                throw JSONLinesError(path: path, line: lineNumber, message: e.description)
            }
            guard case .object = value else {
                throw JSONLinesError(path: path, line: lineNumber,
                                     message: "expected a JSON object (a row with named fields), got \(JSONLines.kindName(value))")
            }
            rowCount += 1
            return (lineNumber, value)
        }
        return nil
    }

    /// The bytes of the next line without its `\n`, valid until the next call; nil at the end.
    private func nextLine() throws -> UnsafeBufferPointer<UInt8>? {
        while true {
            if scanned < end, let nl = memchr(buffer + scanned, 0x0A, end - scanned) {
                let at = buffer.distance(to: nl.assumingMemoryBound(to: UInt8.self))
                let line = UnsafeBufferPointer(start: buffer + start, count: at - start)
                start = at + 1
                scanned = start
                lineNumber += 1
                return line
            }
            scanned = end
            if atEOF {
                guard start < end else { return nil }
                let line = UnsafeBufferPointer(start: buffer + start, count: end - start)
                start = end
                lineNumber += 1
                return line
            }
            try fill()
        }
    }

    /// Reads more bytes after `end`, first moving the unread part to the front or growing the buffer.
    private func fill() throws {
        if start > 0 {
            if end > start { memmove(buffer, buffer + start, end - start) }
            end -= start
            scanned -= start
            start = 0
        }
        if end == capacity {
            let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity * 2)
            bigger.update(from: buffer, count: end)
            buffer.deallocate()
            buffer = bigger
            capacity *= 2
        }
        while true {
            let n = read(fd, buffer + end, capacity - end)
            if n < 0 {
                if errno == EINTR { continue }
                throw JSONLinesError(path: path, line: nil, message: "cannot read: \(JSONLinesReader.errnoText())")
            }
            if n == 0 { atEOF = true } else { end += n }
            return
        }
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}

public enum JSONLines {
    /// Every row of a JSONL file.
    /// - Throws: `JSONLinesError` (see `JSONLinesReader.next()`).
    public static func read(path: String) throws -> [JSONValue] {
        let reader = try JSONLinesReader(path: path)
        var rows: [JSONValue] = []
        while let (_, row) = try reader.next() { rows.append(row) }
        return rows
    }

    /// The JSONL text of `rows`: each row's `line` and a newline.
    public static func text(_ rows: [JSONValue]) -> String {
        var s = ""
        for r in rows {
            r.renderLine(into: &s)
            s += "\n"
        }
        return s
    }

    /// What a value is, for messages: `an array`, `a string`, `the number 3`, `null`.
    static func kindName(_ v: JSONValue) -> String {
        switch v {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .int(let i): return "the number \(i)"
        case .double(let d): return "the number \(JSONValue.format(d))"
        case .bool(let b): return "\(b)"
        case .null: return "null"
        }
    }
}
