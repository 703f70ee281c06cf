// TensorViewsTests.swift: views share storage and read the right elements (Tensor+Views.swift).

import Testing
import TychoTensor

@Suite struct TensorViewsTests {
    let x = T([2, 3, 4], (0..<24).map(Float.init))  // x[i][j][k] = 12i + 4j + k

    @Test func viewAndReshape() throws {
        let v = try x.view([4, -1])
        #expect(v.shape == [4, 6] && v.storage === x.storage)
        #expect(try x.view([-1]).shape == [24])
        #expect(try x.view([2, 3, 4, 1]).strides == [12, 4, 1, 1])
        expectTensorError("only one size can be -1") { try x.view([-1, -1]) }
        expectTensorError("invalid for 24 elements") { try x.view([5, -1]) }
        expectTensorError("invalid for 24 elements") { try x.view([25]) }
        expectTensorError("invalid size -2") { try x.view([-2, 12]) }
        // The product of the known sizes overflows: an error, not a trap.
        expectTensorError("too large") { try x.view([-1, 1 << 40, 1 << 40]) }
        let t = try x.transpose(0, 2)
        expectTensorError("contiguous") { try t.view([24]) }
        let r = try t.reshape([24])
        #expect(r.storage !== x.storage)
        #expect(values(r) == values(try t.contiguous()))
        #expect(try x.reshape([6, 4]).storage === x.storage, "reshape of a contiguous tensor is a view")
    }

    @Test func transposeAndPermute() throws {
        let t = try x.transpose(0, 2)
        #expect(t.shape == [4, 3, 2] && t.strides == [1, 4, 12] && t.storage === x.storage)
        #expect(values(t).prefix(4) == [0, 12, 4, 16])
        let p = try x.permute([2, 0, 1])
        #expect(p.shape == [4, 2, 3] && p.strides == [1, 12, 4])
        #expect(values(p).prefix(4) == [0, 4, 8, 12])
        expectTensorError("not a permutation") { try x.permute([0, 0, 1]) }
        expectTensorError("not a permutation") { try x.permute([0, 1]) }
        expectTensorError("dimension 4 out of range") { try x.transpose(0, 3) }
        expectTensorError("dimension 0 out of range") { try x.transpose(-1, 0) }
    }

    @Test func narrowAndSelect() throws {
        let n = try x.narrow(2, start: 1, length: 2)
        #expect(n.shape == [2, 3, 2] && n.offset == 1)
        #expect(values(n).prefix(4) == [1, 2, 5, 6])
        #expect(try x.narrow(1, start: 3, length: 0).count == 0)
        expectTensorError("out of bounds") { try x.narrow(1, start: 2, length: 2) }
        expectTensorError("out of bounds") { try x.narrow(1, start: -1, length: 1) }
        let s = try x.select(1, 2)
        #expect(s.shape == [2, 4] && values(s) == [8, 9, 10, 11, 20, 21, 22, 23])
        expectTensorError("index 4 out of range") { try x.select(1, 3) }
        #expect(try x.select(0, 1).select(0, 2).select(0, 3).item() == 23)
    }

    @Test func squeezeAndUnsqueeze() throws {
        let y = try Tensor.zeros([1, 3, 1, 2])
        #expect(try y.squeeze().shape == [3, 2])
        #expect(try y.squeeze(2).shape == [1, 3, 2])
        #expect(try y.squeeze(1).shape == [1, 3, 1, 2], "squeezing a dimension of size 3 is a no-op")
        expectTensorError("out of range") { try y.squeeze(4) }
        #expect(try x.unsqueeze(0).shape == [1, 2, 3, 4])
        #expect(try x.unsqueeze(3).shape == [2, 3, 4, 1])
        #expect(try x.unsqueeze(3).isContiguous)
        expectTensorError("out of range") { try x.unsqueeze(4) }
    }

    @Test func expand() throws {
        let col = T([3, 1], [1, 2, 3])
        let e = try col.expand([2, 3, 4])
        #expect(e.shape == [2, 3, 4] && e.strides == [0, 1, 0])
        #expect(values(e) == (0..<2).flatMap { _ in [1, 2, 3].flatMap { v in [Float](repeating: v, count: 4) } })
        #expect(try col.expand([-1, 5]).shape == [3, 5])
        expectTensorError("cannot expand size 3x1 to 2x5") { try col.expand([2, 5]) }
        expectTensorError("fewer dimensions") { try col.expand([3]) }
        expectTensorError("new leading dimension") { try col.expand([-1, 3, 1]) }
        expectTensorError("too large") { try col.expand([1 << 40, 1 << 40, 3, 1]) }
    }

    @Test func viewsWriteThrough() throws {
        let y = try Tensor.zeros([3, 4])
        try y.narrow(1, start: 1, length: 2).fill(1)
        try y.transpose(0, 1).select(0, 3).fill(5)
        #expect(values(y) == [0, 1, 1, 5, 0, 1, 1, 5, 0, 1, 1, 5])
        try y.select(0, 0).copy(from: T([4], [9, 8, 7, 6]))
        #expect(values(y).prefix(4) == [9, 8, 7, 6])
        // Copy between overlapping views of one storage reads the old values.
        let z = T([5], [1, 2, 3, 4, 5])
        try z.narrow(0, start: 1, length: 4).copy(from: z.narrow(0, start: 0, length: 4))
        #expect(values(z) == [1, 1, 2, 3, 4])
        expectTensorError("cannot copy") { try y.copy(from: T([3], [1, 2, 3])) }
        try y.copy(from: Tensor(scalar: 2))
        #expect(values(y).allSatisfy { $0 == 2 })
    }

    @Test func nonContiguousOpsMatchContiguousCopies() throws {
        let views = [try x.transpose(0, 2), try x.permute([1, 2, 0]), try x.narrow(2, start: 1, length: 3),
                     try x.select(2, 1), try T([3, 1], [1, 2, 3]).expand([2, 3, 4])]
        for v in views {
            let c = try v.contiguous()
            #expect(values(try v.exp()) == values(try c.exp()))
            #expect(values(try v.adding(v)) == values(try c.adding(c)))
            #expect(values(try v.sum(dim: v.rank - 1)) == values(try c.sum(dim: c.rank - 1)))
            #expect(values(try v.softmax(dim: 0)) == values(try c.softmax(dim: 0)))
        }
    }
}
