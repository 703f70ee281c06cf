// TensorIndexingTests.swift: cat, stack, gather, index_select, masked_fill (Tensor+Indexing.swift).

import Testing
import TychoTensor

@Suite struct TensorIndexingTests {
    let a = T([2, 2], [1, 2, 3, 4]), b = T([1, 2], [5, 6])

    @Test func cat() throws {
        expectClose(try Tensor.cat([a, b], dim: 0), [3, 2], [1, 2, 3, 4, 5, 6], tol: 0)
        expectClose(try Tensor.cat([a, try b.transpose(0, 1).expand([2, 2])], dim: 1), [2, 4], [1, 2, 5, 5, 3, 4, 6, 6], tol: 0)
        expectClose(try Tensor.cat([T([1]), try Tensor.zeros([0]), T([2, 3])], dim: 0), [3], [1, 2, 3], tol: 0)
        expectTensorError("at least one tensor") { try Tensor.cat([], dim: 0) }
        expectTensorError("does not match") { try Tensor.cat([a, b], dim: 1) }
        expectTensorError("tensor 2 has 1 dimensions") { try Tensor.cat([a, T([1])], dim: 0) }
        expectTensorError("out of range") { try Tensor.cat([a], dim: 2) }
    }

    @Test func stack() throws {
        expectClose(try Tensor.stack([T([1, 2]), T([3, 4])], dim: 0), [2, 2], [1, 2, 3, 4], tol: 0)
        expectClose(try Tensor.stack([T([1, 2]), T([3, 4])], dim: 1), [2, 2], [1, 3, 2, 4], tol: 0)
        expectTensorError("tensor 2 has size 3") { try Tensor.stack([T([1, 2]), T([1, 2, 3])], dim: 0) }
        expectTensorError("out of range") { try Tensor.stack([T([1, 2])], dim: 2) }
    }

    @Test func gather() throws {
        let x = T([2, 3], [10, 20, 30, 40, 50, 60])
        expectClose(try x.gather(1, index: T([2, 2], [2, 0, 1, 1])), [2, 2], [30, 10, 50, 50], tol: 0)
        expectClose(try x.gather(0, index: T([1, 3], [1, 0, 1])), [1, 3], [40, 20, 60], tol: 0)
        expectClose(try x.gather(1, index: T([2, 1], [3, 1]), base: 1), [2, 1], [30, 40], tol: 0, "1-based")
        expectClose(try x.transpose(0, 1).gather(0, index: T([1, 2], [2, 0])), [1, 2], [30, 40], tol: 0, "strided input")
        expectTensorError("index 3 out of range") { try x.gather(1, index: T([1, 1], [3])) }
        expectTensorError("index 0 out of range") { try x.gather(1, index: T([1, 1], [0]), base: 1) }
        expectTensorError("not an integer") { try x.gather(1, index: T([1, 1], [0.5])) }
        expectTensorError("not an integer") { try x.gather(1, index: T([1, 1], [.nan])) }
        expectTensorError("index has 1 dimensions") { try x.gather(1, index: T([0])) }
        expectTensorError("exceeds input size") { try x.gather(1, index: T([3, 1], [0, 0, 0])) }
    }

    @Test func indexSelect() throws {
        let x = T([3, 2], [1, 2, 3, 4, 5, 6])
        expectClose(try x.indexSelect(0, index: T([2, 0, 2])), [3, 2], [5, 6, 1, 2, 5, 6], tol: 0)
        expectClose(try x.indexSelect(1, index: T([2]), base: 1), [3, 1], [2, 4, 6], tol: 0, "1-based")
        #expect(try x.indexSelect(0, index: try Tensor.zeros([0])).shape == [0, 2])
        expectTensorError("index 3 out of range") { try x.indexSelect(0, index: T([3])) }
        expectTensorError("1-dimensional") { try x.indexSelect(0, index: T([1, 1], [0])) }
        expectTensorError("not an integer") { try x.indexSelect(0, index: T([1e10])) }
    }

    @Test func maskedFill() throws {
        let x = T([2, 2], [1, 2, 3, 4])
        expectClose(try x.maskedFill(T([2, 1], [1, 0]), value: -9), [2, 2], [-9, -9, 3, 4], tol: 0)
        expectClose(try x.maskedFill(T([0, 2]), value: .infinity), [2, 2], [1, .infinity, 3, .infinity])
        expectTensorError("does not broadcast") { try x.maskedFill(T([3], [1, 1, 1]), value: 0) }
        expectTensorError("does not broadcast") { try T([2]).maskedFill(x, value: 0) }
    }
}
