// BPEModel.swift: the BPE model of a tokenizer.json: vocabulary, ranked merges, and the merge loop.
//
// A pre-token's characters (Unicode scalars; for byte-level files, one per byte) start as one symbol each;
// then the adjacent pair with the lowest merge rank is merged, leftmost first, until no pair has a rank. This
// is the order of `tokenizers`' priority queue (rank, then position). Results are cached per pre-token.
// `ignore_merges` (Llama-3) emits a pre-token that is itself in the vocabulary as one id. `byte_fallback`
// spells characters missing from the vocabulary as `<0xNN>` tokens. Not supported: dropout,
// continuing_subword_prefix, end_of_word_suffix (a clear error at load).

import Foundation

public final class BPEModel {
    /// token -> id, and id -> token (ids may in principle have holes).
    public let vocab: [String: Int]
    public let idToToken: [Int: String]
    /// The merges in rank order, as token pairs.
    public let merges: [(String, String)]
    /// (left id, right id) packed in a UInt64 -> (rank, merged id).
    let mergeTable: [UInt64: (rank: Int, id: Int)]
    public let ignoreMerges: Bool
    public let byteFallback: Bool
    public let unkToken: String?
    public let fuseUnk: Bool

    private var cache: [String: [Int]] = [:]
    private let lock = NSLock()
    static let cacheLimit = 50_000

    /// - Parameters:
    ///   - vocab: token -> id.
    ///   - merges: pairs in rank order; each pair and its concatenation must be in `vocab`.
    public init(vocab: [String: Int], merges: [(String, String)], ignoreMerges: Bool = false,
                byteFallback: Bool = false, unkToken: String? = nil, fuseUnk: Bool = false) throws {
        self.vocab = vocab
        var inverse: [Int: String] = [:]
        for (t, i) in vocab {
            guard i >= 0 else { throw TokenizerError("model.vocab: token \(t.debugDescription) has a negative id \(i)") }
            if let other = inverse[i] {
                throw TokenizerError("model.vocab: id \(i) is given to both \(other.debugDescription) and \(t.debugDescription)")
            }
            inverse[i] = t
        }
        idToToken = inverse
        var table: [UInt64: (rank: Int, id: Int)] = [:]
        table.reserveCapacity(merges.count)
        for (rank, (a, b)) in merges.enumerated() {
            guard let ia = vocab[a], let ib = vocab[b] else {
                throw TokenizerError("model.merges[\(rank + 1)]: \(a.debugDescription) or \(b.debugDescription) is not in the vocabulary")
            }
            guard let m = vocab[a + b] else {
                throw TokenizerError("model.merges[\(rank + 1)]: the merged token \((a + b).debugDescription) is not in the vocabulary")
            }
            let key = BPEModel.key(ia, ib)
            if table[key] == nil { table[key] = (rank, m) }  // the first (lowest) rank wins, as in tokenizers
        }
        self.merges = merges
        mergeTable = table
        self.ignoreMerges = ignoreMerges
        self.byteFallback = byteFallback
        self.unkToken = unkToken
        self.fuseUnk = fuseUnk
        if let u = unkToken, vocab[u] == nil {
            throw TokenizerError("model.unk_token \(u.debugDescription) is not in the vocabulary")
        }
    }

    static func key(_ a: Int, _ b: Int) -> UInt64 { UInt64(UInt32(truncatingIfNeeded: a)) << 32 | UInt64(UInt32(truncatingIfNeeded: b)) }

    /// The ids of one pre-token.
    public func tokenize(_ word: String) -> [Int] {
        lock.lock()
        if let hit = cache[word] { lock.unlock(); return hit }
        lock.unlock()
        let ids = merge(word)
        guard word.utf8.count <= 256 else { return ids }  // long runs (base64, repeated characters) are not cached
        lock.lock()
        if cache.count >= BPEModel.cacheLimit { cache.removeAll(keepingCapacity: true) }
        cache[word] = ids
        lock.unlock()
        return ids
    }

    /// The initial symbols of a word: one id per character, with byte fallback or unk for missing ones.
    func symbols(_ word: String) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(word.unicodeScalars.count)
        var lastWasUnk = false
        for s in word.unicodeScalars {
            if let id = vocab[String(s)] { out.append(id); lastWasUnk = false; continue }
            if byteFallback {
                let bytes = Array(String(s).utf8)
                let ids = bytes.compactMap { vocab[String(format: "<0x%02X>", $0)] }
                if ids.count == bytes.count { out += ids; lastWasUnk = false; continue }
            }
            if let u = unkToken, let uid = vocab[u] {
                if !(fuseUnk && lastWasUnk) { out.append(uid) }
                lastWasUnk = true
            }
            // Without an unk token the character is dropped, as `tokenizers` does.
        }
        return out
    }

    func merge(_ word: String) -> [Int] {
        if ignoreMerges, let id = vocab[word] { return [id] }
        let sym = symbols(word)
        guard sym.count > 1, !mergeTable.isEmpty else { return sym }
        return sym.count <= BPEModel.scanLimit ? mergeByScan(sym) : mergeByHeap(sym)
    }

    /// Up to this many symbols a linear scan per merge beats a heap; beyond, the scan's O(n^2) would let one
    /// long pre-token (a base64 blob, a run of one character) stall encoding.
    static let scanLimit = 48

    /// Repeatedly merges the lowest-ranked adjacent pair, leftmost among equals.
    func mergeByScan(_ symbols: [Int]) -> [Int] {
        var sym = symbols
        while sym.count > 1 {
            var best = Int.max, at = -1, newId = 0
            for i in 0..<(sym.count - 1) {
                if let m = mergeTable[BPEModel.key(sym[i], sym[i + 1])], m.rank < best {
                    best = m.rank; at = i; newId = m.id
                }
            }
            if at < 0 { break }
            sym[at] = newId
            sym.remove(at: at + 1)
        }
        return sym
    }

    /// The same merges in O(n log n): symbols in a linked list, candidate pairs in a min-heap ordered by
    /// (rank, position), stale entries skipped when popped (as `tokenizers`' merge_word does).
    func mergeByHeap(_ symbols: [Int]) -> [Int] {
        var id = symbols
        let n = id.count
        var next = Array(1...n), prev = Array(-1..<(n - 1)), alive = [Bool](repeating: true, count: n)
        next[n - 1] = -1
        var heap = MergeHeap()
        func consider(_ i: Int) {
            guard i >= 0, next[i] >= 0, let m = mergeTable[BPEModel.key(id[i], id[next[i]])] else { return }
            heap.push(MergeHeap.Entry(rank: m.rank, pos: i, left: id[i], right: id[next[i]]))
        }
        for i in 0..<(n - 1) { consider(i) }
        while let e = heap.pop() {
            let i = e.pos
            guard alive[i], next[i] >= 0, id[i] == e.left, id[next[i]] == e.right,
                  let m = mergeTable[BPEModel.key(e.left, e.right)] else { continue }
            let j = next[i]
            id[i] = m.id
            alive[j] = false
            next[i] = next[j]
            if next[j] >= 0 { prev[next[j]] = i }
            consider(prev[i])
            consider(i)
        }
        var out: [Int] = []
        var i = 0
        while i >= 0 { out.append(id[i]); i = next[i] }
        return out
    }
}

/// A binary min-heap of candidate merges ordered by (rank, position).
struct MergeHeap {
    struct Entry {
        let rank: Int, pos: Int, left: Int, right: Int
        func before(_ o: Entry) -> Bool { rank != o.rank ? rank < o.rank : pos < o.pos }
    }

    private var a: [Entry] = []

    mutating func push(_ e: Entry) {
        a.append(e)
        var i = a.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            guard a[i].before(a[p]) else { break }
            a.swapAt(i, p)
            i = p
        }
    }

    mutating func pop() -> Entry? {
        guard let top = a.first else { return nil }
        let last = a.removeLast()
        if !a.isEmpty {
            a[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < a.count && a[l].before(a[m]) { m = l }
                if r < a.count && a[r].before(a[m]) { m = r }
                if m == i { break }
                a.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}
