#if canImport(Glibc)
import Glibc
#endif
import FuzzSupport
@testable import QuantaEval
import QuantaIO

// A baseline logits file (`quanta eval --save-logits`, read by `--baseline-logits`): full or
// top-K log-probabilities with ids, rest mass and target log-probabilities; then the checks
// against a run's chunks and the comparison of every scored position.
let vocab = 8
let perplexity = PerplexityProtocol(context: 4, addBOS: true)
let chunks: [[Int32]] = [[1, 2, 3, 4], [1, 5, 6, 7]]

/// Built per input: see fuzz-statistics on why no global holds it.
func valid(topK: Int) -> [HDF5Item] {
    let positions = chunks.count * perplexity.scoredPerChunk
    let tokens: HDF5Item = .dataset("tokens", .i64(chunks.flatMap { $0.map(Int64.init) }), shape: [8], [
        ("context", .int64(4)), ("chunks", .int64(2)), ("add_bos", .int64(1)), ("vocab", .int64(Int64(vocab))), ("top_k", .int64(Int64(topK))),
    ])
    let logp = (0..<vocab).map { Float(-2.0794 + 0.1 * Double($0 - 4)) }
    guard topK > 0 else {
        return [tokens, .dataset("logprobs", .f32((0..<positions).flatMap { _ in logp }), shape: [positions, vocab], [])]
    }
    return [
        tokens,
        .dataset("topk_logprobs", .f32((0..<positions * topK).map { logp[vocab - 1 - $0 % topK] }), shape: [positions, topK], []),
        .dataset("topk_ids", .i64((0..<positions * topK).map { Int64(vocab - 1 - $0 % topK) }), shape: [positions, topK], []),
        .dataset("rest_logprob", .f64([Double](repeating: -0.9, count: positions)), shape: [positions], []),
        .dataset("target_logprob", .f64([Double](repeating: -2.1, count: positions)), shape: [positions], []),
    ]
}
let names = ["tokens", "logprobs", "topk_logprobs", "topk_ids", "rest_logprob", "target_logprob", "vocab", "context", "top_k", "add_bos"]

fuzzMain { bytes in
    var fuzz = FuzzBytes(bytes)
    let path = Scratch.path("baseline.h5")
    HDF5Fuzz.write(HDF5Fuzz.mutate(valid(topK: fuzz.byte() % 2 == 0 ? 0 : 3), names: names, with: &fuzz), to: path)
    guard let baseline = try? BaselineLogits(path: path), (try? baseline.check(chunks: chunks, protocol: perplexity, vocab: vocab)) != nil else {
        return
    }
    let ours = (0..<vocab).map { log(Double($0 + 1) / 36) }
    let scratch = UnsafeMutablePointer<Double>.allocate(capacity: vocab)
    defer { scratch.deallocate() }
    ours.withUnsafeBufferPointer { ours in
        for position in 0..<(chunks.count * perplexity.scoredPerChunk) {
            _ = try? baseline.compare(position: position, ours: ours, target: position % vocab, scratch: scratch)
        }
    }
}
