// BatchPlan.swift: which rows go in which batch: an order (identity, or a Fisher-Yates shuffle) cut into
// consecutive batches.
//
// The shuffle is a fixed algorithm over a caller-given uniform draw, so the order is a function of the draw's
// sequence alone: the same generator state gives the same order on every run and machine. It takes the draw as
// a closure and does not own a generator (TychoText sits beside TychoTensor, whose generator callers pass in).

public enum BatchPlan {
    /// A random permutation of 0..<count by Durstenfeld's Fisher-Yates: for i from count-1 down to 1, swap
    /// position i with position `draw(i + 1)`. Makes exactly count-1 draws.
    /// - Parameters:
    ///   - draw: a uniform integer in 0..<bound for the bound it is given (bound >= 2).
    public static func shuffled(_ count: Int, draw: (Int) -> Int) -> [Int] {
        var order = Array(0..<Swift.max(count, 0))
        var i = order.count - 1
        while i > 0 {
            let j = draw(i + 1)
            precondition(j >= 0 && j <= i, "BatchPlan.shuffled: draw returned \(j) for bound \(i + 1)")
            order.swapAt(i, j)
            i -= 1
        }
        return order
    }

    /// `order` cut into runs of `batchSize` (>= 1); the last, shorter run is dropped when `dropLast`.
    public static func batches(_ order: [Int], batchSize: Int, dropLast: Bool) -> [[Int]] {
        precondition(batchSize >= 1, "BatchPlan.batches: batch size must be at least 1")
        var out: [[Int]] = []
        out.reserveCapacity(order.count / batchSize + 1)
        var k = 0
        while k < order.count {
            let end = Swift.min(k + batchSize, order.count)
            if end - k < batchSize && dropLast { break }
            out.append(Array(order[k..<end]))
            k = end
        }
        return out
    }
}
