// TensorTests.swift: storage, shapes and strides, element access (Tensor.swift).

import Testing
import TychoTensor

@Suite struct TensorTests {
    @Test func contiguousStrides() {
        #expect(Tensor.contiguousStrides([2, 3, 4]) == [12, 4, 1])
        #expect(Tensor.contiguousStrides([]) == [])
        #expect(Tensor.contiguousStrides([5, 0, 2]) == [2, 2, 1], "empty dimensions count as 1")
    }

    @Test func checkedCount() throws {
        #expect(try Tensor.checkedCount([2, 3, 4]) == 24)
        #expect(try Tensor.checkedCount([]) == 1)
        #expect(try Tensor.checkedCount([3, 0, 5]) == 0)
        expectTensorError("negative size") { try Tensor.checkedCount([2, -1]) }
        expectTensorError("too large") { try Tensor.checkedCount([1 << 40, 1 << 40]) }
        expectTensorError("too large") { try Tensor.checkedCount([Int.max, 2]) }
        // No elements, but strides would overflow: refused rather than trapping later.
        expectTensorError("too large") { try Tensor.checkedCount([0, 1_000_000_000_000, 1_000_000_000_000]) }
        expectTensorError("too large") { try Tensor.zeros([0, 1 << 40, 1 << 40]) }
    }

    @Test func storageLimits() {
        expectTensorError("negative element count") { try TensorStorage(count: -1) }
        expectTensorError("more than this machine's memory") { try TensorStorage(count: Int.max / 2) }
        expectTensorError("more than this machine's memory") { try TensorStorage(count: TensorStorage.maximumBytes) }
    }

    @Test func initAndItem() throws {
        let t = try Tensor(shape: [2, 2], values: [1, 2, 3, 4])
        #expect(t.rank == 2 && t.count == 4 && t.isContiguous)
        #expect(values(t) == [1, 2, 3, 4])
        expectTensorError("3 values given for shape 2x2") { try Tensor(shape: [2, 2], values: [1, 2, 3]) }
        expectTensorError("one element") { try t.item() }
        #expect(try Tensor(scalar: 2.5).item() == 2.5)
        #expect(Tensor(scalar: 1).shape == [])
        #expect(try Tensor.zeros([1, 1, 1]).item() == 0)
    }

    @Test func cloneIsIndependentContiguousIsNot() throws {
        let t = T([2, 3], [1, 2, 3, 4, 5, 6])
        #expect(try t.contiguous() === t, "a contiguous tensor is its own contiguous()")
        let c = try t.clone()
        c.fill(0)
        #expect(values(t) == [1, 2, 3, 4, 5, 6])
        let tt = try t.transpose(0, 1)
        #expect(!tt.isContiguous)
        let cc = try tt.contiguous()
        #expect(cc !== tt && cc.isContiguous && values(cc) == [1, 4, 2, 5, 3, 6])
        #expect(cc.storage !== t.storage)
    }

    @Test func emptyTensors() throws {
        let e = try Tensor.zeros([0, 3])
        #expect(e.count == 0 && values(e).isEmpty)
        #expect(try e.sum().item() == 0)
        #expect(try e.exp().shape == [0, 3])
        #expect(try e.transpose(0, 1).shape == [3, 0])
    }

    @Test func describe() {
        #expect(Tensor.describe([2, 3]) == "2x3")
        #expect(Tensor.describe([]) == "()")
        #expect(TensorError("x").description == "x")
    }
}
