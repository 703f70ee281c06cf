// TensorCreationTests.swift: zeros, ones, full, arange, linspace, eye (Tensor+Creation.swift).
// Random tensors are tested in Lua and through RandomGenerator: these tests leave the global generator alone.

import Testing
import TychoTensor

@Suite struct TensorCreationTests {
    @Test func constants() throws {
        #expect(values(try Tensor.zeros([2, 3])) == [Float](repeating: 0, count: 6))
        #expect(values(try Tensor.ones([4])) == [1, 1, 1, 1])
        #expect(values(try Tensor.full([2], value: -2.5)) == [-2.5, -2.5])
        #expect(try Tensor.zeros([]).shape == [] && (try Tensor.zeros([]).count) == 1)
        expectTensorError("negative size") { try Tensor.ones([2, -1]) }
        expectTensorError("too large") { try Tensor.full([1 << 40, 1 << 40], value: 1) }
    }

    @Test func arange() throws {
        expectClose(try Tensor.arange(start: 0, end: 5, step: 1), [5], [0, 1, 2, 3, 4], tol: 0)
        expectClose(try Tensor.arange(start: 1, end: 2.5, step: 0.5), [3], [1, 1.5, 2], tol: 0)
        expectClose(try Tensor.arange(start: 10, end: 0, step: -3), [4], [10, 7, 4, 1], tol: 0)
        #expect(try Tensor.arange(start: 0, end: 1, step: 0.1).count == 10)
        #expect(try Tensor.arange(start: 3, end: 3, step: 1).count == 0)
        expectTensorError("non-zero step") { try Tensor.arange(start: 0, end: 1, step: 0) }
        expectTensorError("finite") { try Tensor.arange(start: 0, end: .infinity, step: 1) }
        expectTensorError("does not lead") { try Tensor.arange(start: 0, end: 10, step: -1) }
        expectTensorError("too many") { try Tensor.arange(start: 0, end: 1e300, step: 1e-300) }
    }

    @Test func linspace() throws {
        expectClose(try Tensor.linspace(start: 0, end: 1, steps: 5), [5], [0, 0.25, 0.5, 0.75, 1], tol: 0)
        let l = values(try Tensor.linspace(start: -3, end: 7, steps: 11))
        #expect(l.first == -3 && l.last == 7, "both ends exact")
        #expect(values(try Tensor.linspace(start: 2, end: 5, steps: 1)) == [2])
        #expect(try Tensor.linspace(start: 0, end: 1, steps: 0).count == 0)
        expectClose(try Tensor.linspace(start: 1, end: -1, steps: 3), [3], [1, 0, -1], tol: 0)
        expectTensorError("non-negative") { try Tensor.linspace(start: 0, end: 1, steps: -1) }
    }

    @Test func eye() throws {
        expectClose(try Tensor.eye(2), [2, 2], [1, 0, 0, 1], tol: 0)
        expectClose(try Tensor.eye(2, 3), [2, 3], [1, 0, 0, 0, 1, 0], tol: 0)
        expectClose(try Tensor.eye(3, 1), [3, 1], [1, 0, 0], tol: 0)
        #expect(try Tensor.eye(0).shape == [0, 0])
        expectTensorError("negative size") { try Tensor.eye(-1) }
    }

    @Test func randomArgumentErrorsDrawNothing() {
        expectTensorError("must be greater than low") { try Tensor.randint(low: 3, high: 3, shape: [2]) }
        expectTensorError("2^24") { try Tensor.randint(low: 0, high: 1 << 30, shape: [2]) }
        expectTensorError("negative size") { try Tensor.rand([-1]) }
        expectTensorError("too large") { try Tensor.randn([1 << 40, 1 << 40]) }
    }
}
