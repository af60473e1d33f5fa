import QuantaCore
import QuantaIO
import QuantaModel
import Dispatch

#if canImport(Glibc)
import Glibc
#endif

/// Where the baseline's log-probabilities come from.
public enum Baseline {
    /// Run this model on the same chunks.
    case model(DecoderModel)
    /// Read them from a file written by `--save-logits`.
    case logits(BaselineLogits)
}

/// The result of an evaluation.
public struct EvaluationResult: Sendable {
    public let perplexity: Double
    /// llama-perplexity's ± estimate: PPL · sqrt(var(NLL) / (N - 1)).
    public let perplexityError: Double
    public let meanNLL: Double
    public let scoredTokens: Int
    public let chunks: Int
    public let textTokens: Int
    public let seconds: Double
    public let drift: DriftStatistics?
}

/// Perplexity and drift with llama-perplexity's protocol.
public struct Evaluator {
    public let model: DecoderModel
    public let protocolSettings: PerplexityProtocol

    public init(model: DecoderModel, protocol settings: PerplexityProtocol) {
        self.model = model
        self.protocolSettings = settings
    }

    /// Evaluates `text`; `progress(chunk, chunks)` after each batch.
    /// `source` names the text in errors (its file).
    public func run(text: String, source: String = "text", baseline: Baseline? = nil, saveLogits: LogitsSink? = nil,
                    progress: ((Int, Int) -> Void)? = nil) throws -> EvaluationResult {
        let start = monotonicSeconds()
        let tokens = model.tokenizer.encode(text)
        let chunks = try protocolSettings.chunks(of: tokens, bos: model.tokenizer.bosID, source: source)
        let vocab = model.config.vocabSize
        if case let .model(base) = baseline, base.config.vocabSize != vocab {
            throw QuantaError(.invalidArgument, base.path, "vocabulary of \(base.config.vocabSize) differs from the model's \(vocab)")
        }
        if case let .logits(stored) = baseline {
            try stored.check(chunks: chunks, protocol: protocolSettings, vocab: vocab)
        }
        try saveLogits?.begin(chunks: chunks, protocol: protocolSettings, vocab: vocab)
        let first = protocolSettings.firstScored, ctx = protocolSettings.context
        var nllSum = 0.0, nll2Sum = 0.0, count = 0
        var drift = baseline == nil ? nil : DriftAccumulator()
        let ours = UnsafeMutablePointer<Double>.allocate(capacity: vocab)
        let theirs = UnsafeMutablePointer<Double>.allocate(capacity: vocab)
        defer { ours.deallocate(); theirs.deallocate() }
        var position = 0
        for batchStart in stride(from: 0, to: chunks.count, by: protocolSettings.batch) {
            let batch = Array(chunks[batchStart..<min(chunks.count, batchStart + protocolSettings.batch)])
            func add(_ row: RowScore) {
                nllSum += row.nll
                nll2Sum += row.nll * row.nll
                count += 1
                if drift != nil {
                    drift!.kld.append(row.kld)
                    drift!.sameTop += row.sameTop ? 1 : 0
                    let dp = exp(-row.nll) - exp(row.baseTarget)
                    drift!.deltaP2 += dp * dp
                    drift!.baseNLL.append(-row.baseTarget)
                    drift!.nll.append(row.nll)
                }
                position += 1
            }
            let score = { (logits: UnsafeBufferPointer<Float>, baseLogits: UnsafeBufferPointer<Float>?) throws in
                if saveLogits == nil, !baseline.readsFile {
                    // Rows are scored on every core, then added in order: the same sums at any thread count.
                    Evaluator.scoreRows(logits, baseLogits, batch: batch, first: first, context: ctx, vocab: vocab).forEach(add)
                    return
                }
                // Saved logits need each whole row, and a stored baseline is read in position order.
                for (b, chunk) in batch.enumerated() {
                    for j in first..<(ctx - 1) {
                        let target = Int(chunk[j + 1])
                        logSoftmax(logits.baseAddress! + (b * (ctx - first) + j - first) * vocab, vocab, into: ours)
                        var row = RowScore(nll: -ours[target])
                        try saveLogits?.add(position: position, logprobs: UnsafeBufferPointer(start: ours, count: vocab), target: target)
                        if drift != nil {
                            let ourRow = UnsafeBufferPointer(start: ours, count: vocab)
                            if let baseLogits {
                                logSoftmax(baseLogits.baseAddress! + (b * (ctx - first) + j - first) * vocab, vocab, into: theirs)
                                (row.kld, row.baseTarget, row.sameTop) = compareDistributions(base: UnsafeBufferPointer(start: theirs, count: vocab),
                                                                                              ours: ourRow, target: target)
                            } else if case let .logits(stored) = baseline {
                                (row.kld, row.baseTarget, row.sameTop) = try stored.compare(position: position, ours: ourRow, target: target,
                                                                                            scratch: theirs)
                            }
                        }
                        add(row)
                    }
                }
            }
            // Logits only where the protocol scores (positions first..<ctx of each chunk).
            try model.withLogits(batch, scoredFrom: first) { logits in
                if case let .model(base) = baseline {
                    try base.withLogits(batch, scoredFrom: first) { try score(logits, $0) }
                } else {
                    try score(logits, nil)
                }
            }
            progress?(min(chunks.count, batchStart + batch.count), chunks.count)
        }
        try saveLogits?.finish()
        let mean = nllSum / Double(count)
        let ppl = exp(mean)
        let variance = nll2Sum / Double(count) - mean * mean
        let error = variance > 0 && count > 1 ? ppl * (variance / Double(count - 1)).squareRoot() : 0
        return EvaluationResult(perplexity: ppl, perplexityError: error, meanNLL: mean, scoredTokens: count, chunks: chunks.count,
                                textTokens: tokens.count, seconds: monotonicSeconds() - start, drift: drift?.statistics(perplexity: ppl))
    }

    /// One scored position: its negative log-likelihood and, against a baseline, the KL
    /// divergence, the baseline's log-probability of the target and whether both rank the same token first.
    struct RowScore {
        var nll = 0.0, kld = 0.0, baseTarget = 0.0
        var sameTop = false
    }

    /// The scores of every scored position of `batch` (chunk by chunk, position by position),
    /// rows spread over the forward pass's threads; each row is computed as the sequential loop does.
    static func scoreRows(_ logits: UnsafeBufferPointer<Float>, _ baseLogits: UnsafeBufferPointer<Float>?, batch: [[Int32]],
                          first: Int, context ctx: Int, vocab: Int) -> [RowScore] {
        let perChunk = ctx - 1 - first, total = batch.count * perChunk
        var scores = [RowScore](repeating: RowScore(), count: total)
        let workers = max(1, min(DecoderModel.threads, total))
        scores.withUnsafeMutableBufferPointer { out in
            nonisolated(unsafe) let out = out
            nonisolated(unsafe) let (logits, baseLogits) = (logits, baseLogits)
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                let ours = UnsafeMutablePointer<Double>.allocate(capacity: vocab)
                let theirs = UnsafeMutablePointer<Double>.allocate(capacity: vocab)
                defer { ours.deallocate(); theirs.deallocate() }
                for r in stride(from: w, to: total, by: workers) {
                    let b = r / perChunk, j = first + r % perChunk
                    let target = Int(batch[b][j + 1])
                    let offset = (b * (ctx - first) + j - first) * vocab
                    guard let baseLogits else {
                        let row = logits.baseAddress! + offset
                        out[r] = RowScore(nll: -(Double(row[target]) - logSumExp(row, vocab)))
                        continue
                    }
                    logSoftmax(logits.baseAddress! + offset, vocab, into: ours)
                    logSoftmax(baseLogits.baseAddress! + offset, vocab, into: theirs)
                    var score = RowScore(nll: -ours[target])
                    (score.kld, score.baseTarget, score.sameTop) = compareDistributions(
                        base: UnsafeBufferPointer(start: theirs, count: vocab), ours: UnsafeBufferPointer(start: ours, count: vocab), target: target)
                    out[r] = score
                }
            }
        }
        return scores
    }
}

extension Optional where Wrapped == Baseline {
    /// Whether the baseline's log-probabilities come from a file (read in position order).
    var readsFile: Bool {
        if case .logits = self { return true }
        return false
    }
}

