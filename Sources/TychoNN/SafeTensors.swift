// SafeTensors.swift: reading and writing Hugging Face safetensors files (../shared/docs/formats.md, 2.1).
//
// Layout: 8 bytes little-endian header length N, then N bytes of JSON header, then the packed tensor data.
// The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end)} (offsets relative to the
// first data byte) and may hold "__metadata__", a string -> string map.
//
// Reading maps the file and converts each tensor to float32 on request: F32, F16 and BF16, and also F64 and
// the integer and bool types (exactly, up to float32's 24-bit mantissa). The header is validated as strictly
// as the reference reader does (header at most 100 MB, no duplicate names, offsets that tile the data exactly,
// sizes that match shapes) and every problem is a thrown `TensorError` that names the file; nothing here traps
// on file contents. Writing produces F32 only, byte-for-byte what safetensors 0.8.0 writes for the same
// float32 tensors and metadata given in sorted order, and replaces the target atomically.
//
// It refuses: writing any dtype but F32, converting F8, complex or packed sub-byte types, and guessing
// (a file whose data has holes or trailing bytes is an error, as in the reference reader).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TychoTensor

#if _endian(big)
#error("SafeTensors.swift copies little-endian file data directly; big-endian hosts are not supported")
#endif

/// The element types a safetensors header may name.
public enum SafeTensorsDType: String, CaseIterable {
    case BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64
    case F8_E4M3, F8_E5M2, F8_E4M3FNUZ, F8_E5M2FNUZ, F8_E8M0, C64

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .BOOL, .U8, .I8, .F8_E4M3, .F8_E5M2, .F8_E4M3FNUZ, .F8_E5M2FNUZ, .F8_E8M0: return 1
        case .I16, .U16, .F16, .BF16: return 2
        case .I32, .U32, .F32: return 4
        case .F64, .I64, .U64, .C64: return 8
        }
    }

    /// True for the types Tycho converts to float32.
    public var isReadable: Bool {
        switch self {
        case .F8_E4M3, .F8_E5M2, .F8_E4M3FNUZ, .F8_E5M2FNUZ, .F8_E8M0, .C64: return false
        default: return true
        }
    }

    static let readableList = allCases.filter(\.isReadable).map(\.rawValue).joined(separator: ", ")
}

/// An open safetensors file: its validated header, and its data mapped in memory.
/// Tensors are converted to float32 (copied out of the map) when asked for.
public final class SafeTensorsFile {
    /// One tensor's header entry.
    public struct Entry {
        public let name: String
        public let dtype: SafeTensorsDType
        public let shape: [Int]
        /// Byte range within the data section (after the header).
        public let dataOffsets: Range<Int>
        public var count: Int { shape.reduce(1, *) }
    }

    public let path: String
    /// The tensors in the order of their data.
    public let entries: [Entry]
    /// `__metadata__`, or nil when the header has none.
    public let metadata: [String: String]?
    private let file: MappedFile
    /// File offset of the first data byte (8 + header length).
    private let dataStart: Int
    private let index: [String: Int]

    /// The largest header the reference reader accepts.
    public static let maximumHeaderBytes = 100_000_000

    /// Opens and validates `path`.
    /// - Throws: `TensorError` ("<path>: <problem>") for unreadable files and every malformed header or data
    ///   section: a header length beyond the file, a header that is not a JSON object, a missing or unknown
    ///   dtype, a shape that does not match its offsets, offsets out of bounds, overlapping or leaving holes,
    ///   truncated data, duplicate names.
    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        let bytes = file.bytes
        func fail(_ problem: String) -> TensorError { TensorError("\(path): \(problem)") }

        guard bytes.count >= 8 else {
            throw fail("file is \(bytes.count) bytes, too short for a safetensors file (8-byte header length, then the header)")
        }
        let n = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        guard n <= UInt64(bytes.count - 8) else { throw fail("header length \(n) exceeds file size \(bytes.count)") }
        let headerLength = Int(n)
        guard headerLength <= SafeTensorsFile.maximumHeaderBytes else {
            throw fail("header length \(n) exceeds the limit of \(SafeTensorsFile.maximumHeaderBytes) bytes")
        }
        let header = UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + headerLength)])
        guard headerLength > 0, header[0] == UInt8(ascii: "{") else {
            throw fail(headerLength == 0 ? "header is empty" : "header does not start with '{': not a safetensors file")
        }
        guard JSONReader.isValidUTF8(header) else { throw fail("header is not valid UTF-8") }
        let json: JSONValue
        do {
            json = try JSONReader.parse(header)
        } catch let e as JSONSyntaxError {
            throw fail("header is not valid JSON: \(e.message) at header byte \(e.offset)")
        }
        guard case .object(let pairs) = json else { throw fail("header is not a JSON object") }

        dataStart = 8 + headerLength
        let dataLength = bytes.count - dataStart
        var entries: [Entry] = []
        var metadata: [String: String]?
        var index: [String: Int] = [:]
        for (name, value) in pairs {
            if name == "__metadata__" {
                guard metadata == nil else { throw fail("\"__metadata__\" appears twice in the header") }
                metadata = try SafeTensorsFile.readMetadata(value, fail)
                continue
            }
            guard index[name] == nil else { throw fail("tensor name \"\(name)\" appears twice in the header") }
            let e = try SafeTensorsFile.readEntry(name, value, dataLength: dataLength, fail)
            index[name] = entries.count
            entries.append(e)
        }

        // The offsets must tile the data exactly: sorted by begin, each starts where the previous ended.
        let order = entries.indices.sorted {
            let a = entries[$0].dataOffsets, b = entries[$1].dataOffsets
            return (a.lowerBound, a.upperBound) < (b.lowerBound, b.upperBound)
        }
        var end = 0
        var previous: Entry?
        for i in order {
            let e = entries[i]
            if e.dataOffsets.lowerBound < end, let p = previous {
                throw fail("tensor \"\(e.name)\" (data_offsets \(SafeTensorsFile.describe(e.dataOffsets))) overlaps tensor \"\(p.name)\" (data_offsets \(SafeTensorsFile.describe(p.dataOffsets)))")
            }
            if e.dataOffsets.lowerBound > end {
                throw fail("data bytes \(end)..<\(e.dataOffsets.lowerBound) belong to no tensor (a hole before tensor \"\(e.name)\")")
            }
            end = e.dataOffsets.upperBound
            previous = e
        }
        if end != dataLength {
            let extra = dataLength - end
            throw fail("file has \(extra) byte\(extra == 1 ? "" : "s") after the last tensor's data (the data section is \(dataLength) bytes, the tensors use \(end))")
        }
        self.entries = order.map { entries[$0] }
        self.index = Dictionary(uniqueKeysWithValues: self.entries.enumerated().map { ($1.name, $0) })
        self.metadata = metadata
    }

    // MARK: header entries

    private static func describe(_ r: Range<Int>) -> String { "[\(r.lowerBound), \(r.upperBound)]" }

    private static func readMetadata(_ value: JSONValue, _ fail: (String) -> TensorError) throws -> [String: String] {
        guard case .object(let pairs) = value else {
            throw fail("\"__metadata__\" must be an object of strings, got \(value.kindName)")
        }
        var out: [String: String] = [:]
        for (k, v) in pairs {
            guard case .string(let s) = v else {
                throw fail("\"__metadata__\" value for \"\(k)\" must be a string, got \(v.kindName)")
            }
            guard out.updateValue(s, forKey: k) == nil else {
                throw fail("\"__metadata__\" key \"\(k)\" appears twice")
            }
        }
        return out
    }

    private static func readEntry(_ name: String, _ value: JSONValue, dataLength: Int,
                                  _ fail: (String) -> TensorError) throws -> Entry {
        let label = "tensor \"\(name)\""
        guard case .object(let pairs) = value else {
            throw fail("\(label): entry must be an object with dtype, shape and data_offsets, got \(value.kindName)")
        }
        var fields: [String: JSONValue] = [:]
        for (k, v) in pairs where fields.updateValue(v, forKey: k) != nil {
            throw fail("\(label): key \"\(k)\" appears twice")
        }
        // dtype
        guard let dtypeValue = fields["dtype"] else { throw fail("\(label): missing \"dtype\"") }
        guard case .string(let dtypeName) = dtypeValue else {
            throw fail("\(label): dtype must be a string, got \(dtypeValue.kindName)")
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw fail("\(label): unknown dtype \"\(dtypeName.prefix(40))\" (Tycho reads \(SafeTensorsDType.readableList))")
        }
        // shape
        guard let shapeValue = fields["shape"] else { throw fail("\(label): missing \"shape\"") }
        guard case .array(let dims) = shapeValue else {
            throw fail("\(label): shape must be an array of sizes, got \(shapeValue.kindName)")
        }
        var shape: [Int] = []
        var count = 1
        var countOverflow = false
        for d in dims {
            guard let s = d.nonNegativeInteger else {
                throw fail("\(label): shape must hold non-negative integers, got \(d.kindName)")
            }
            shape.append(s)
            let (p, o) = count.multipliedReportingOverflow(by: s)
            count = p
            countOverflow = countOverflow || o
        }
        let (byteCount, bytesOverflow) = count.multipliedReportingOverflow(by: dtype.size)
        let shapeText = "[" + shape.map(String.init).joined(separator: ", ") + "]"
        guard !countOverflow, !bytesOverflow else { throw fail("\(label): shape \(shapeText) is too large") }
        // data_offsets
        guard let offsetsValue = fields["data_offsets"] else { throw fail("\(label): missing \"data_offsets\"") }
        guard case .array(let offs) = offsetsValue, offs.count == 2 else {
            throw fail("\(label): data_offsets must be an array [begin, end], got \(offsetsValue.kindName)")
        }
        guard let begin = offs[0].nonNegativeInteger, let end = offs[1].nonNegativeInteger else {
            throw fail("\(label): data_offsets must be non-negative integers, got \(offs[0].kindName) and \(offs[1].kindName)")
        }
        let offsetsText = "[\(begin), \(end)]"
        guard begin <= end else { throw fail("\(label): data_offsets \(offsetsText) end before they begin") }
        guard end - begin == byteCount else {
            throw fail("\(label): shape \(shapeText) of \(dtype.rawValue) needs \(byteCount) bytes, but data_offsets \(offsetsText) span \(end - begin)")
        }
        guard end <= dataLength else {
            throw fail("\(label): data_offsets \(offsetsText) reach past the end of the data (\(dataLength) bytes after the header): the file is truncated")
        }
        return Entry(name: name, dtype: dtype, shape: shape, dataOffsets: begin..<end)
    }

    // MARK: reading tensors

    public var names: [String] { entries.map(\.name) }

    public func entry(_ name: String) -> Entry? { index[name].map { entries[$0] } }

    /// The tensor `name` converted to float32, in its own storage.
    /// - Throws: `TensorError` when there is no such tensor or its dtype is one Tycho does not convert.
    public func tensor(_ name: String) throws -> Tensor {
        guard let e = entry(name) else { throw TensorError("\(path): no tensor named \"\(name)\"") }
        return try tensor(e)
    }

    /// All tensors, by name.
    public func tensors() throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for e in entries { out[e.name] = try tensor(e) }
        return out
    }

    private func tensor(_ e: Entry) throws -> Tensor {
        guard e.dtype.isReadable else {
            throw TensorError("\(path): tensor \"\(e.name)\" has dtype \(e.dtype.rawValue), which Tycho does not convert (it reads \(SafeTensorsDType.readableList))")
        }
        let out: Tensor
        do {
            out = try Tensor(uninitializedShape: e.shape)
        } catch let err as TensorError {
            throw TensorError("\(path): tensor \"\(e.name)\": \(err.message)")
        }
        let n = e.count
        guard n > 0, let base = file.bytes.baseAddress else { return out }
        let range = (dataStart + e.dataOffsets.lowerBound)..<(dataStart + e.dataOffsets.upperBound)
        file.willRead(range)
        SafeTensorsFile.convert(e.dtype, from: base + range.lowerBound, to: out.storage.pointer, count: n)
        return out
    }

    /// Converts `count` little-endian elements of `dtype` at `src` (any alignment) to float32.
    static func convert(_ dtype: SafeTensorsDType, from src: UnsafeRawPointer, to dst: UnsafeMutablePointer<Float>, count n: Int) {
        func each<T>(_: T.Type, _ f: (T) -> Float) {
            let size = MemoryLayout<T>.size
            for i in 0..<n { dst[i] = f(src.loadUnaligned(fromByteOffset: i * size, as: T.self)) }
        }
        switch dtype {
        case .F32: memcpy(dst, src, n * 4)
        case .F16: each(UInt16.self, halfToFloat)
        case .BF16: each(UInt16.self) { Float(bitPattern: UInt32($0) << 16) }
        case .F64: each(Double.self) { Float($0) }
        case .I64: each(Int64.self) { Float($0) }
        case .U64: each(UInt64.self) { Float($0) }
        case .I32: each(Int32.self) { Float($0) }
        case .U32: each(UInt32.self) { Float($0) }
        case .I16: each(Int16.self) { Float($0) }
        case .U16: each(UInt16.self) { Float($0) }
        case .I8: each(Int8.self) { Float($0) }
        case .U8: each(UInt8.self) { Float($0) }
        case .BOOL: each(UInt8.self) { $0 != 0 ? 1 : 0 }
        case .F8_E4M3, .F8_E5M2, .F8_E4M3FNUZ, .F8_E5M2FNUZ, .F8_E8M0, .C64: break  // refused by the caller
        }
    }

    /// IEEE binary16 bits to float32, exactly (subnormals, infinities and NaN payloads included).
    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = UInt32(h >> 10) & 0x1f
        let mantissa = UInt32(h & 0x3ff)
        if exponent == 0 {
            let v = Float(mantissa) * 0x1p-24
            return sign != 0 ? -v : v
        }
        if exponent == 31 { return Float(bitPattern: sign | 0x7f80_0000 | mantissa << 13) }
        return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
    }
}

/// Loading and saving whole safetensors files.
public enum SafeTensors {
    /// Every tensor of `path` as float32, and its metadata (empty when the file has none).
    public static func load(path: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        let f = try SafeTensorsFile(path: path)
        return (try f.tensors(), f.metadata ?? [:])
    }

    /// Writes `tensors` as F32 to `path`, replacing it atomically. Non-contiguous tensors are written as their
    /// contiguous copies. `metadata`, when non-empty, becomes `__metadata__`.
    /// - Throws: `TensorError` for duplicate or reserved names, or when the file cannot be written.
    public static func save(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String]? = nil,
                            to path: String) throws {
        var seen = Set<String>()
        for (name, _) in tensors {
            guard name != "__metadata__" else { throw TensorError("\(path): \"__metadata__\" cannot be a tensor name") }
            guard seen.insert(name).inserted else { throw TensorError("\(path): tensor name \"\(name)\" given twice") }
        }
        let sorted = tensors.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        let header = encodeHeader(sorted.map { ($0.name, $0.tensor.shape) }, metadata: metadata ?? [:])
        try AtomicFile.write(to: path) { sink in
            try sink.write(header)
            for (_, t) in sorted {
                let c = try t.contiguous()
                try sink.write(UnsafeRawBufferPointer(start: c.basePointer, count: c.count * MemoryLayout<Float>.size))
            }
        }
    }

    /// Saves a dictionary of tensors (names are sorted in the file in any case).
    public static func save(_ tensors: [String: Tensor], metadata: [String: String]? = nil, to path: String) throws {
        try save(tensors.map { (name: $0.key, tensor: $0.value) }, metadata: metadata, to: path)
    }

    /// The 8-byte length and the JSON header for F32 tensors laid out in the given order, padded with spaces
    /// so that the data starts at a multiple of 8 (as safetensors 0.8.0 writes it).
    static func encodeHeader(_ tensors: [(String, [Int])], metadata: [String: String]) -> [UInt8] {
        var json: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        func separator() {
            if !first { json.append(UInt8(ascii: ",")) }
            first = false
        }
        if !metadata.isEmpty {
            separator()
            json += Array("\"__metadata__\":{".utf8)
            var firstPair = true
            for (k, v) in metadata.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
                if !firstPair { json.append(UInt8(ascii: ",")) }
                firstPair = false
                JSONWriter.quoted(k, into: &json)
                json.append(UInt8(ascii: ":"))
                JSONWriter.quoted(v, into: &json)
            }
            json.append(UInt8(ascii: "}"))
        }
        var offset = 0
        for (name, shape) in tensors {
            separator()
            let bytes = shape.reduce(1, *) * MemoryLayout<Float>.size
            JSONWriter.quoted(name, into: &json)
            json += Array(":{\"dtype\":\"F32\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}".utf8)
            offset += bytes
        }
        json.append(UInt8(ascii: "}"))
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var out = [UInt8](repeating: 0, count: 8)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.replaceSubrange(0..<8, with: $0) }
        return out + json
    }
}
