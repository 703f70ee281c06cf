// SafeTensorsTests.swift: the safetensors reader and writer against files from the reference library, and
// against every kind of damage.
//
// Fixtures in Tests/Fixtures/safetensors come from gen_safetensors_fixtures.py (safetensors 0.8.0); their
// expected float32 values are in expected.json as bit patterns, so comparisons are exact. Damaged files are
// made by mutating the bytes of a valid one; each must give a thrown TensorError naming the file and the
// problem. A trap would kill this test process, so "never crashes" is checked simply by running.

import Foundation
import Testing
@testable import TychoNN
import TychoTensor

// MARK: helpers

private let fixtures = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/safetensors")

/// A fresh temporary directory, removed by the caller's `defer`.
private func scratch() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tycho-st-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

private func tensor(_ shape: [Int], seed: UInt64) throws -> Tensor {
    var g = RandomGenerator(seed: seed)
    let n = shape.reduce(1, *)
    return try Tensor(shape: shape, values: (0..<n).map { _ in g.nextUniform() * 2 - 1 })
}

private func bits(_ t: Tensor) -> [UInt32] { t.toArray().map(\.bitPattern) }

/// Exact equality of shapes and values (bit patterns, except that any NaN equals any NaN).
private func expectSame(_ got: Tensor, _ shape: [Int], _ want: [UInt32], _ label: String,
                        sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(got.shape == shape, "\(label): shape \(got.shape) != \(shape)", sourceLocation: sourceLocation)
    let g = bits(got)
    guard g.count == want.count else {
        Issue.record("\(label): \(g.count) values, expected \(want.count)", sourceLocation: sourceLocation)
        return
    }
    for (i, (a, b)) in zip(g, want).enumerated() {
        let fa = Float(bitPattern: a), fb = Float(bitPattern: b)
        if fa.isNaN && fb.isNaN { continue }
        if a != b {
            Issue.record("\(label): element \(i) is \(fa) (0x\(String(a, radix: 16))), expected \(fb) (0x\(String(b, radix: 16)))",
                         sourceLocation: sourceLocation)
            return
        }
    }
}

/// The error message thrown by opening and reading all of `path`, or nil when it loads.
private func loadError(_ path: String) -> String? {
    do {
        _ = try SafeTensors.load(path: path)
        return nil
    } catch let e as TensorError {
        return e.message
    } catch {
        return "unexpected error type: \(error)"
    }
}

/// A small valid file's bytes: a = 2x3, b = [4], c = scalar; header `{"a":...,"b":...,"c":...}` padded.
private func validFile(in dir: URL) throws -> [UInt8] {
    let path = dir.appendingPathComponent("valid.safetensors").path
    try SafeTensors.save([("a", try tensor([2, 3], seed: 1)), ("b", try tensor([4], seed: 2)),
                          ("c", Tensor(scalar: 7))], to: path)
    return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// The header text of a file's bytes (padding included).
private func headerText(_ bytes: [UInt8]) -> String {
    let n = Int(bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
    return String(decoding: bytes[8..<(8 + n)], as: UTF8.self)
}

/// A file with `header` (length rewritten to match) and the data of `bytes`.
private func withHeader(_ bytes: [UInt8], _ header: String) -> [UInt8] {
    let old = headerText(bytes).utf8.count
    let h = Array(header.utf8)
    return littleEndian(UInt64(h.count)) + h + bytes[(8 + old)...]
}

private func littleEndian(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }

/// Replaces the one occurrence of `old` in the header.
private func replacing(_ bytes: [UInt8], _ old: String, _ new: String,
                       sourceLocation: SourceLocation = #_sourceLocation) -> [UInt8] {
    let h = headerText(bytes)
    #expect(h.components(separatedBy: old).count == 2, "'\(old)' is not in the header once: \(h)", sourceLocation: sourceLocation)
    return withHeader(bytes, h.replacingOccurrences(of: old, with: new))
}

private func write(_ bytes: [UInt8], _ path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

@Suite struct SafeTensorsTests {
    // MARK: round trip

    @Test func roundTripKeepsShapesValuesNamesAndMetadata() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("rt.safetensors").path
        let m = try tensor([3, 4, 5], seed: 3)
        let tensors: [(name: String, tensor: Tensor)] = [
            ("h.0.attn.c_attn.weight", try tensor([4, 12], seed: 4)),
            ("transposed", try m.transpose(0, 2)),
            ("narrowed", try m.narrow(1, start: 1, length: 2)),
            ("expanded", try Tensor(shape: [3, 1], values: [1, 2, 3]).expand([3, 4])),
            ("scalar", Tensor(scalar: -0.0)),
            ("empty", try Tensor.zeros([0, 3])),
            ("empty middle", try Tensor.zeros([2, 0, 5])),
            ("special", try Tensor(shape: [5], values: [.infinity, -.infinity, .nan, .leastNonzeroMagnitude, .greatestFiniteMagnitude])),
            ("quote \" backslash \\ newline \n tab \t bell \u{7} é ✓", try tensor([2], seed: 5)),
        ]
        let metadata = ["format": "pt", "odd \"key\"\n": "value \\ with \u{1} control", "ünïcode": "✓ 🙂", "empty": ""]
        try SafeTensors.save(tensors, metadata: metadata, to: path)
        let (loaded, meta) = try SafeTensors.load(path: path)
        #expect(meta == metadata)
        #expect(Set(loaded.keys) == Set(tensors.map(\.name)))
        for (name, t) in tensors {
            let got = try #require(loaded[name])
            expectSame(got, t.shape, bits(t), name)
            #expect(got.isContiguous)
        }

        // Layout: header padded to 8, names sorted by bytes, offsets contiguous from 0.
        let file = try SafeTensorsFile(path: path)
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect((8 + headerText(bytes).utf8.count) % 8 == 0)
        #expect(headerText(bytes).hasPrefix("{\"__metadata__\":{\"empty\":\"\",\"format\":\"pt\","))
        #expect(file.names == tensors.map(\.name).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        var end = 0
        for e in file.entries {
            #expect(e.dtype == .F32)
            #expect(e.dataOffsets.lowerBound == end)
            end = e.dataOffsets.upperBound
        }
        #expect(8 + headerText(bytes).utf8.count + end == bytes.count)
    }

    @Test func emptyFileAndNoMetadata() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("none.safetensors").path
        try SafeTensors.save([(name: String, tensor: Tensor)](), to: path)
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(bytes == littleEndian(8) + Array("{}      ".utf8))  // what safetensors 0.8.0 writes for {}
        let (t, meta) = try SafeTensors.load(path: path)
        #expect(t.isEmpty && meta.isEmpty)
        #expect(try SafeTensorsFile(path: path).metadata == nil)
    }

    @Test func rewritingAReferenceFileGivesTheSameBytes() throws {
        // f32.safetensors was written by safetensors 0.8.0 with its metadata keys in sorted order.
        let path = fixtures.appendingPathComponent("f32.safetensors").path
        let (tensors, meta) = try SafeTensors.load(path: path)
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("again.safetensors").path
        try SafeTensors.save(tensors, metadata: meta, to: out)
        #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == Data(contentsOf: URL(fileURLWithPath: path)))
    }

    @Test func saveReplacesAtomicallyAndLeavesNoTemporaryFiles() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("w.safetensors").path
        try SafeTensors.save(["x": try tensor([3], seed: 6)], to: path)
        try SafeTensors.save(["y": try tensor([2, 2], seed: 7)], to: path)
        #expect(try SafeTensorsFile(path: path).names == ["y"])
        // Failures: a directory in the way, a missing directory, reserved and duplicate names.
        let sub = dir.appendingPathComponent("sub")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: false)
        let x = try tensor([3], seed: 8)
        #expect(throws: TensorError.self) { try SafeTensors.save(["x": x], to: sub.path) }
        #expect(throws: TensorError.self) { try SafeTensors.save(["x": x], to: dir.path + "/") }
        #expect(throws: TensorError.self) { try SafeTensors.save(["x": x], to: "") }
        let missing = dir.appendingPathComponent("no/such/dir/x.safetensors").path
        do {
            try SafeTensors.save(["x": x], to: missing)
            Issue.record("saving into a missing directory succeeded")
        } catch let e as TensorError {
            #expect(e.message.hasPrefix(missing + ": cannot create a temporary file"), "\(e.message)")
        }
        #expect(throws: TensorError.self) { try SafeTensors.save([("__metadata__", x)], to: path) }
        #expect(throws: TensorError.self) { try SafeTensors.save([("a", x), ("a", x)], to: path) }
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        #expect(names == ["sub", "w.safetensors"], "left behind: \(names)")
        #expect(try SafeTensorsFile(path: path).names == ["y"], "failed saves leave the old file")
    }

    // MARK: reference files, every dtype

    @Test func fixturesMatchTheReferenceValues() throws {
        let data = try Data(contentsOf: fixtures.appendingPathComponent("expected.json"))
        let expected = try #require(try JSONSerialization.jsonObject(with: data) as? [String: [String: Any]])
        #expect(Set(expected.keys) == ["f32", "f16", "bf16", "ints", "unpadded"])
        for (file, c) in expected {
            let path = fixtures.appendingPathComponent("\(file).safetensors").path
            let (loaded, meta) = try SafeTensors.load(path: path)
            #expect(meta == (c["metadata"] as? [String: String]), "\(file) metadata")
            let tensors = try #require(c["tensors"] as? [String: [String: [Int]]])
            #expect(Set(loaded.keys) == Set(tensors.keys), "\(file) names")
            for (name, t) in tensors {
                let got = try #require(loaded[name], "\(file): \(name)")
                expectSame(got, t["shape"] ?? [], (t["bits"] ?? []).map { UInt32($0) }, "\(file): \(name)")
            }
        }
        let dtypes = try ["f16", "bf16", "ints"].map { try SafeTensorsFile(path: fixtures.appendingPathComponent("\($0).safetensors").path) }
        #expect(Set(dtypes.flatMap { $0.entries.map(\.dtype) }) == [.F16, .BF16, .I64, .I32, .I16, .I8, .U8, .BOOL, .F64])
    }

    @Test func halfPrecisionConversionIsExactForAllBitPatterns() {
        // Every binary16 value, against the hardware conversion where Swift has Float16.
        #if arch(x86_64) && os(Linux) || arch(arm64)
        for h in 0...UInt16.max {
            let want = Float(Float16(bitPattern: h))
            let got = SafeTensorsFile.halfToFloat(h)
            if want.isNaN { #expect(got.isNaN); continue }
            if got.bitPattern != want.bitPattern { Issue.record("0x\(String(h, radix: 16)): \(got) != \(want)"); return }
        }
        #endif
    }

    @Test func unsupportedDtypeNamesTheTensor() throws {
        let path = fixtures.appendingPathComponent("f8.safetensors").path
        let msg = try #require(loadError(path))
        #expect(msg == "\(path): tensor \"fp8\" has dtype F8_E4M3, which Tycho does not convert (it reads \(SafeTensorsDType.readableList))")
        // The other tensors of the file stay readable one by one.
        let file = try SafeTensorsFile(path: path)
        #expect(try file.tensor("ok").toArray() == [1, 2])
        #expect(throws: TensorError.self) { try file.tensor("nope") }
    }

    // MARK: damage

    @Test func everyKindOfCorruptionIsAClearError() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = try validFile(in: dir)
        let h = headerText(good)
        #expect(h.hasPrefix(#"{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[4],"data_offsets":[24,40]},"c":{"dtype":"F32","shape":[],"data_offsets":[40,44]}}"#))
        let path = dir.appendingPathComponent("bad.safetensors").path
        let size = good.count

        let cases: [(String, [UInt8], String)] = [
            ("length beyond file", littleEndian(999_999) + good[8...], "header length 999999 exceeds file size \(size)"),
            ("length u64 max", littleEndian(.max) + good[8...], "header length 18446744073709551615 exceeds file size \(size)"),
            ("length 0", littleEndian(0) + good[8...], "header is empty"),
            ("short file", Array(good[0..<5]), "file is 5 bytes, too short"),
            ("not an object", replacing(good, "{\"a\"", "[\"a\""), "header does not start with '{'"),
            ("not JSON", replacing(good, "\"a\":", "\"a\";"), "header is not valid JSON: unexpected ';', expected ':' at header byte 4"),
            ("trailing garbage", withHeader(good, h.trimmingCharacters(in: .whitespaces) + "x"), "header is not valid JSON: unexpected 'x' after the end"),
            ("unterminated", withHeader(good, String(h.trimmingCharacters(in: .whitespaces).dropLast())), "header is not valid JSON: unexpected end"),
            ("bad UTF-8", withHeader(good, h).enumerated().map { $0.offset == 10 ? 0xff : $0.element }, "header is not valid UTF-8"),
            ("missing dtype", replacing(good, #"{"dtype":"F32","shape":[4]"#, #"{"dtypo":"F32","shape":[4]"#), "tensor \"b\": missing \"dtype\""),
            ("unknown dtype", replacing(good, #"{"dtype":"F32","shape":[4]"#, #"{"dtype":"F33","shape":[4]"#), "tensor \"b\": unknown dtype \"F33\""),
            ("dtype not a string", replacing(good, #"{"dtype":"F32","shape":[4]"#, #"{"dtype":32,"shape":[4]"#), "tensor \"b\": dtype must be a string, got the number 32"),
            ("missing shape", replacing(good, #""shape":[4],"#, ""), "tensor \"b\": missing \"shape\""),
            ("missing offsets", replacing(good, #","data_offsets":[24,40]"#, ""), "tensor \"b\": missing \"data_offsets\""),
            ("shape/offset mismatch", replacing(good, "[2,3]", "[2,4]"), "tensor \"a\": shape [2, 4] of F32 needs 32 bytes, but data_offsets [0, 24] span 24"),
            ("negative size", replacing(good, "[2,3]", "[-2,3]"), "tensor \"a\": shape must hold non-negative integers, got the number -2"),
            ("fractional size", replacing(good, "[2,3]", "[2.0,3]"), "tensor \"a\": shape must hold non-negative integers, got the number 2.0"),
            ("overflowing shape", replacing(good, "[2,3]", "[4611686018427387904,4]"), "tensor \"a\": shape [4611686018427387904, 4] is too large"),
            ("huge size", replacing(good, "[2,3]", "[99999999999999999999999]"), "tensor \"a\": shape must hold non-negative integers"),
            ("shape not an array", replacing(good, "[2,3]", "6"), "tensor \"a\": shape must be an array of sizes, got the number 6"),
            ("offsets arity", replacing(good, "[24,40]", "[24,40,56]"), "tensor \"b\": data_offsets must be an array [begin, end]"),
            ("offsets backwards", replacing(good, "[24,40]", "[40,24]"), "tensor \"b\": data_offsets [40, 24] end before they begin"),
            ("offsets out of bounds", replacing(replacing(good, "[40,44]", "[44,48]"), "[24,40]", "[28,44]"), "tensor \"c\": data_offsets [44, 48] reach past the end of the data (44 bytes after the header)"),
            ("overlap", replacing(good, "[24,40]", "[20,36]"), "tensor \"b\" (data_offsets [20, 36]) overlaps tensor \"a\" (data_offsets [0, 24])"),
            ("hole", replacing(good, "[40,44]", "[44,48]") + [0, 0, 0, 0], "data bytes 40..<44 belong to no tensor (a hole before tensor \"c\")"),
            ("truncated data", Array(good.dropLast(4)), "tensor \"c\": data_offsets [40, 44] reach past the end of the data (40 bytes after the header): the file is truncated"),
            ("trailing data", good + [1, 2, 3, 4], "file has 4 bytes after the last tensor's data"),
            ("duplicate names", replacing(good, "\"b\":", "\"a\":"), "tensor name \"a\" appears twice in the header"),
            ("duplicate key", replacing(good, #"{"dtype":"F32","shape":[4]"#, #"{"dtype":"F32","dtype":"F32","shape":[4]"#), "tensor \"b\": key \"dtype\" appears twice"),
            ("entry not an object", replacing(good, #"{"dtype":"F32","shape":[],"data_offsets":[40,44]}"#, "5"), "tensor \"c\": entry must be an object"),
            ("metadata not strings", replacing(good, "{\"a\"", "{\"__metadata__\":{\"epoch\":1},\"a\""), "\"__metadata__\" value for \"epoch\" must be a string, got the number 1"),
            ("metadata not an object", replacing(good, "{\"a\"", "{\"__metadata__\":[],\"a\""), "\"__metadata__\" must be an object of strings, got an array"),
            ("metadata twice", replacing(good, "{\"a\"", "{\"__metadata__\":{},\"__metadata__\":{},\"a\""), "\"__metadata__\" appears twice"),
            ("metadata duplicate key", replacing(good, "{\"a\"", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"},\"a\""), "\"__metadata__\" key \"k\" appears twice"),
            ("deep nesting", replacing(good, "{\"a\"", "{\"x\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,0],\"extra\":" + String(repeating: "[", count: 100) + "},\"a\""), "nested more than 64 levels deep"),
            ("bad escape", replacing(good, "\"b\"", "\"\\q\""), "invalid escape '\\q'"),
            ("lone surrogate", replacing(good, "\"b\"", "\"\\ud800\""), "lone leading surrogate"),
            ("control character", replacing(good, "\"b\"", "\"\u{1}\""), "unescaped control character 0x1"),
        ]
        for (label, bytes, fragment) in cases {
            try write(bytes, path)
            guard let msg = loadError(path) else {
                Issue.record("\(label): loaded without error")
                continue
            }
            #expect(msg.hasPrefix(path + ": "), "\(label): message does not name the file: \(msg)")
            #expect(msg.contains(fragment), "\(label): '\(msg)' lacks '\(fragment)'")
        }
    }

    @Test func aHeaderOverTheLimitIsRefused() throws {
        // A sparse file just over 100 MB, so the length fits in the file and the limit is what refuses it.
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("big.safetensors").path
        try write(littleEndian(100_000_001) + Array("{}".utf8), path)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try h.truncate(atOffset: 100_000_016)
        try h.close()
        #expect(loadError(path) == "\(path): header length 100000001 exceeds the limit of 100000000 bytes")
    }

    @Test func filesThatAreNotFiles() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(loadError(dir.path) == "\(dir.path): is a directory")
        let missing = dir.appendingPathComponent("missing.safetensors").path
        #expect(loadError(missing) == "\(missing): cannot open: No such file or directory")
        let empty = dir.appendingPathComponent("empty.safetensors").path
        try write([], empty)
        #expect(loadError(empty)?.contains("file is 0 bytes, too short") == true)
    }

    @Test func truncationAtEveryByteIsAnError() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("cut.safetensors").path
        let files = [Array(try Data(contentsOf: fixtures.appendingPathComponent("ints.safetensors"))), try validFile(in: dir)]
        for (k, bytes) in files.enumerated() {
            for cut in 0..<bytes.count {
                try write(Array(bytes[..<cut]), path)
                #expect(loadError(path) != nil, "file \(k) cut to \(cut) of \(bytes.count) bytes loaded")
            }
        }
        for name in ["f32", "f16", "bf16", "unpadded"] {
            let bytes = Array(try Data(contentsOf: fixtures.appendingPathComponent("\(name).safetensors")))
            for cut in stride(from: 0, to: bytes.count, by: 5) {
                try write(Array(bytes[..<cut]), path)
                #expect(loadError(path) != nil, "\(name) cut to \(cut) bytes loaded")
            }
        }
    }

    @Test func headerByteMutationsNeverCrash() throws {
        // Every header byte of a valid file, replaced by characters that matter to JSON: each result must load
        // or throw. A few are harmless (a digit inside a name); the count of errors shows the checks bite.
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("mut.safetensors").path
        let good = try validFile(in: dir)
        let headerEnd = 8 + headerText(good).utf8.count
        var errors = 0, loads = 0
        for i in 0..<headerEnd {
            for v in Array("{}[]\":,0 9-.e".utf8) + [0x00, 0x7f, 0xff] where good[i] != v {
                var b = good
                b[i] = v
                try write(b, path)
                if loadError(path) == nil { loads += 1 } else { errors += 1 }
            }
        }
        #expect(errors > loads * 5, "\(errors) errors, \(loads) loads")
    }
}
