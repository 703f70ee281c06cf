// TensorBinding+RNG.swift: saving and restoring the Lua state's random generator (`tensor.get_rng_state`,
// `tensor.set_rng_state`), as torch.get_rng_state / set_rng_state do, so that a resumed run draws the same
// numbers as one that never stopped. Checkpoints (`ckpt`) save it themselves; these are for scripts.
//
// The state is four 64-bit words (xoshiro256**). Tensors hold float32, exact only below 2^24, so the state is a
// 1-D tensor of 16 values, each 16 bits of it (0..65535), the first word's low bits first.

import TychoTensor

extension TensorBinding {
    static let rngPieces = 16

    static func rngTensor(_ g: RandomGenerator) throws -> Tensor {
        var values: [Float] = []
        for w in g.state { for k in 0..<4 { values.append(Float((w >> (16 * UInt64(k))) & 0xFFFF)) } }
        return try Tensor(shape: [rngPieces], values: values)
    }

    static let rngFunctions: [LuaFunction] = [
        LuaFunction("get_rng_state", [], doc: """
                    The state of the random generator (rand, randn, randint, shuffles, new dropout layers) as a 1-D
                      tensor of 16 values: s = tensor.get_rng_state(); ...; tensor.set_rng_state(s) repeats the numbers.
                    """) { a in
            a.push(try rngTensor(a.state.generator))
        },
        LuaFunction("set_rng_state", [.required("state", .tensor)],
                    doc: "Restores the random generator to a state from tensor.get_rng_state().") { a in
            let t = try a.tensor(1)
            guard t.rank == 1, t.count == rngPieces else {
                throw a.argumentError(1, "a state from tensor.get_rng_state() (16 values), got size \(Tensor.describe(t.shape))")
            }
            let values = try t.contiguous().toArray()
            var words = [UInt64](repeating: 0, count: 4)
            for (i, v) in values.enumerated() {
                guard v >= 0, v <= 65535, v == v.rounded() else {
                    throw a.argumentError(1, "a state from tensor.get_rng_state() (whole numbers 0..65535), got \(v) at position \(i + 1)")
                }
                words[i / 4] |= UInt64(v) << (16 * UInt64(i % 4))
            }
            guard let g = RandomGenerator(state: words) else {
                throw a.argumentError(1, "a state from tensor.get_rng_state(), got all zeros (not a valid state)")
            }
            a.state.generator = g
            return 0
        },
    ]
}
