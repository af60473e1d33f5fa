import QuantaCore
import QuantaIO

/// Baseline log-probabilities in an HDF5 file: the chunk tokens, and per scored position either
/// every log-probability (`logprobs`, float32 [positions, vocab]) or the top K
/// (`topk_logprobs`, `topk_ids`), the log of the remaining mass (`rest_logprob`) and the exact
/// log-probability of the position's target token (`target_logprob`, float64).
///
/// With top-K storage the perplexity, Δp and same-top statistics are exact (the target's and the
/// top token's log-probabilities are stored). The KL divergence is computed over K+1 outcomes
/// (the K tokens and "the rest"): by the log-sum inequality it is a lower bound of the full KLD,
/// short by exactly the tail's own divergence, the rest mass times KL between the two models'
/// distributions over the tokens outside the top K.
public final class LogitsSink {
    public let path: String
    public let topK: Int
    private var vocab = 0
    private var full: [Float] = []
    private var ids: [Int64] = []
    private var rest: [Double] = []
    private var targets: [Double] = []
    private var tokens: [Int64] = []
    private var attributes: [(String, HDF5Attribute)] = []

    public init(path: String, topK: Int = 0) {
        self.path = path
        self.topK = topK
    }

    func begin(chunks: [[Int32]], protocol p: PerplexityProtocol, vocab: Int) throws {
        self.vocab = vocab
        tokens = chunks.flatMap { $0.map(Int64.init) }
        let positions = chunks.count * p.scoredPerChunk
        full.reserveCapacity(positions * (topK > 0 ? topK : vocab))
        attributes = [("context", .int64(Int64(p.context))), ("chunks", .int64(Int64(chunks.count))),
                      ("add_bos", .int64(p.addBOS ? 1 : 0)), ("vocab", .int64(Int64(vocab))), ("top_k", .int64(Int64(topK)))]
    }

    func add(position: Int, logprobs: UnsafeBufferPointer<Double>, target: Int) throws {
        if topK <= 0 {
            for v in logprobs { full.append(Float(v)) }
            return
        }
        let top = (0..<logprobs.count).sorted { logprobs[$0] > logprobs[$1] }.prefix(topK)
        var mass = 0.0
        for i in top {
            full.append(Float(logprobs[i]))
            ids.append(Int64(i))
            mass += exp(logprobs[i])
        }
        rest.append(log(max(1 - mass, 1e-300)))
        targets.append(logprobs[target])
    }

    func finish() throws {
        let store = try HDF5Store(path: path, mode: .create)
        try store.write("tokens", tokens, shape: [tokens.count], attributes: attributes)
        if topK <= 0 {
            try store.write("logprobs", full, shape: [full.count / vocab, vocab])
        } else {
            try store.write("topk_logprobs", full, shape: [rest.count, topK])
            try store.write("topk_ids", ids, shape: [rest.count, topK])
            try store.write("rest_logprob", rest, shape: [rest.count])
            try store.write("target_logprob", targets, shape: [targets.count])
        }
        try store.close()
    }
}

/// Baseline log-probabilities read from a `LogitsSink` file.
public final class BaselineLogits {
    public let path: String
    let tokens: [Int64]
    let vocab: Int
    let topK: Int
    let logprobs: [Float]
    let ids: [Int64]
    let rest: [Double]
    /// Top-K files: the target token's exact log-probability per position.
    let targets: [Double]
    let context: Int
    let addBOS: Bool

    public init(path: String) throws {
        self.path = path
        let store = try HDF5Store(path: path, mode: .read)
        defer { try? store.close() }
        tokens = try store.read("tokens", as: Int64.self).storage
        var attributes: [String: Int64] = [:]
        for (key, value) in try store.attributes(of: "tokens") { if case let .int64(v) = value { attributes[key] = v } }
        guard let vocab = attributes["vocab"], let context = attributes["context"], let topK = attributes["top_k"] else {
            throw QuantaError.malformed(path, "not a Quanta logits file (tokens lacks vocab/context/top_k attributes)")
        }
        guard vocab > 0, context > 0, topK >= 0, topK <= vocab else {
            throw QuantaError.malformed(path, "tokens attributes vocab \(vocab), context \(context), top_k \(topK) are out of range")
        }
        self.vocab = Int(vocab)
        self.context = Int(context)
        self.topK = Int(topK)
        addBOS = attributes["add_bos"] == 1
        if topK > 0 {
            logprobs = try store.read("topk_logprobs", as: Float.self).storage
            ids = try store.read("topk_ids", as: Int64.self).storage
            rest = try store.read("rest_logprob", as: Double.self).storage
            guard try store.datasetNames().contains("target_logprob") else {
                throw QuantaError.malformed(path, "has top-K log-probabilities without target_logprob (written by an older Quanta, whose baseline perplexity was wrong); save the baseline again")
            }
            targets = try store.read("target_logprob", as: Double.self).storage
        } else {
            logprobs = try store.read("logprobs", as: Float.self).storage
            ids = []
            rest = []
            targets = []
        }
        let width = topK > 0 ? Int(topK) : Int(vocab)
        let positions = logprobs.count / width
        guard logprobs.count % width == 0, topK == 0 || (ids.count == logprobs.count && rest.count == positions && targets.count == positions) else {
            throw QuantaError.malformed(path, "\(logprobs.count) log-probabilities, \(ids.count) ids, \(rest.count) rest and \(targets.count) target values do not form positions of \(width)")
        }
        if let bad = ids.firstIndex(where: { $0 < 0 || $0 >= vocab }) {
            throw QuantaError.malformed(path, "topk_ids[\(bad)] = \(ids[bad]) is outside the vocabulary of \(vocab)")
        }
    }

    func check(chunks: [[Int32]], protocol p: PerplexityProtocol, vocab: Int) throws {
        guard vocab == self.vocab else { throw QuantaError(.invalidArgument, path, "baseline vocabulary \(self.vocab) differs from the model's \(vocab)") }
        guard p.context == context, p.addBOS == addBOS else {
            throw QuantaError(.invalidArgument, path, "baseline used --ctx \(context) and BOS \(addBOS ? "on" : "off"); this run uses --ctx \(p.context) and BOS \(p.addBOS ? "on" : "off")")
        }
        let ours = chunks.flatMap { $0.map(Int64.init) }
        guard ours.count <= tokens.count, Array(tokens.prefix(ours.count)) == ours else {
            throw QuantaError(.invalidArgument, path, "baseline logits were computed on other tokens (different text, tokenizer or --chunks)")
        }
        let stored = logprobs.count / (topK > 0 ? topK : vocab)
        guard stored >= chunks.count * p.scoredPerChunk else {
            throw QuantaError.malformed(path, "holds \(stored) scored positions; this run scores \(chunks.count * p.scoredPerChunk)")
        }
    }

    /// (KLD, baseline log-probability of the target, same top token) at `position`; `scratch`
    /// holds `vocab` values.
    func compare(position: Int, ours: UnsafeBufferPointer<Double>, target: Int,
                 scratch: UnsafeMutablePointer<Double>) throws -> (Double, Double, Bool) {
        if topK <= 0 {
            let base = position * vocab
            for i in 0..<vocab { scratch[i] = Double(logprobs[base + i]) }
            return compareDistributions(base: UnsafeBufferPointer(start: scratch, count: vocab), ours: ours, target: target)
        }
        var argOurs = 0
        for i in 0..<ours.count where ours[i] > ours[argOurs] { argOurs = i }
        let base = position * topK
        var kld = 0.0, massOurs = 0.0
        for k in 0..<topK {
            let i = Int(ids[base + k]), t = Double(logprobs[base + k])
            kld += klTerm(base: t, ours: ours[i])
            massOurs += exp(ours[i])
        }
        kld += klTerm(base: rest[position], ours: log(max(1 - massOurs, 1e-300)))
        return (kld, targets[position], argOurs == Int(ids[base]))
    }
}

#if canImport(Glibc)
import Glibc
#endif
