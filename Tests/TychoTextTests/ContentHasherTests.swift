// ContentHasherTests.swift: the FIPS 180-4 test vectors, streaming in odd pieces, and the integer helper.

import Testing
@testable import TychoText

@Suite struct ContentHasherTests {
    @Test func standardVectors() {
        #expect(ContentHasher.hex(of: "") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(ContentHasher.hex(of: "abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(ContentHasher.hex(of: "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(ContentHasher.hex(of: "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu")
                == "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
    }

    @Test func millionAsInOddPieces() {
        var h = ContentHasher()
        let chunk = [UInt8](repeating: 0x61, count: 997)
        var left = 1_000_000
        while left > 0 {
            let n = Swift.min(left, chunk.count)
            chunk.withUnsafeBytes { h.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            left -= n
        }
        #expect(h.hexDigest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func everySplitOfAMessageGivesTheSameDigest() {
        let message = Array("The quick brown fox jumps over the lazy dog, again and again and again!".utf8)
        let whole = { var h = ContentHasher(); h.update(message); return h.hexDigest() }()
        #expect(whole == ContentHasher.hex(of: String(decoding: message, as: UTF8.self)))
        for cut in 0...message.count {
            var h = ContentHasher()
            h.update(message[..<cut])
            h.update(message[cut...])
            #expect(h.hexDigest() == whole, "split at \(cut)")
        }
        var h = ContentHasher()
        h.update(message)
        _ = h.hexDigest()
        #expect(h.hexDigest() == whole, "finishing twice gives the same digest")
    }

    @Test func integersAreEightLittleEndianBytes() {
        var a = ContentHasher(), b = ContentHasher()
        a.update(int: 258)
        b.update([2, 1, 0, 0, 0, 0, 0, 0] as [UInt8])
        #expect(a.hexDigest() == b.hexDigest())
    }
}
