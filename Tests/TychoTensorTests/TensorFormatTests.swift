// TensorFormatTests.swift: Torch7-style printing (Tensor+Format.swift).

import Testing
import TychoTensor

@Suite struct TensorFormatTests {
    @Test func integersAndFooter() {
        let s = T([2, 3], [1, 2, 3, 4, 5, 6]).format()
        #expect(s == "1 2 3\n4 5 6\n[tensor float32 of size 2x3]")
    }

    @Test func floatsAlignedInOneFormat() {
        let s = T([2], [0.5, -12.25]).format()
        #expect(s == "  0.5000\n-12.2500\n[tensor float32 of size 2]")
    }

    @Test func scalarsSpecialValuesAndEmpty() throws {
        #expect(Tensor(scalar: 3).format() == "3\n[tensor float32 of size ()]")
        #expect(T([3], [.nan, .infinity, -.infinity]).format() == " nan\n inf\n-inf\n[tensor float32 of size 3]")
        #expect(try Tensor.zeros([0, 2]).format() == "[tensor float32 of size 0x2]")
        #expect(T([2], [1e-6, 1]).format().contains("e-06"), "tiny values switch to exponent notation")
    }

    @Test func higherRanksAsSlices() throws {
        let s = try Tensor.arange(start: 0, end: 8, step: 1).view([2, 2, 2]).format()
        #expect(s == "(1,.,.) = \n0 1\n2 3\n\n(2,.,.) = \n4 5\n6 7\n[tensor float32 of size 2x2x2]")
    }

    @Test func largeTensorsAreSummarised() throws {
        let s = try Tensor.arange(start: 0, end: 2000, step: 1).format()
        #expect(s.contains("..."))
        #expect(s.split(separator: "\n").count == 8, "3 + ... + 3 + footer")
        #expect(s.hasSuffix("1999\n[tensor float32 of size 2000]"))
    }

    @Test func stridedViewsPrintTheirOwnValues() throws {
        let t = try T([2, 3], [1, 2, 3, 4, 5, 6]).transpose(0, 1)
        #expect(t.format() == "1 4\n2 5\n3 6\n[tensor float32 of size 3x2]")
        #expect(t.description == t.format())
    }
}
