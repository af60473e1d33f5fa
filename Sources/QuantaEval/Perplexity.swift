import QuantaCalibration
import QuantaCore
import QuantaModel

/// llama-perplexity's protocol: the text tokenized once (BOS first when the model adds one),
/// cut into chunks of `context` tokens from token 0, the first token of each chunk replaced by
/// BOS (when BOS is used), and the predictions at positions context/2 ..< context-1 scored.
public struct PerplexityProtocol: Sendable {
    public var context: Int
    /// At most this many chunks (nil: every whole chunk).
    public var chunks: Int?
    public var addBOS: Bool
    /// Chunks evaluated in one forward batch.
    public var batch: Int

    public init(context: Int = 512, chunks: Int? = nil, addBOS: Bool, batch: Int = 1) {
        self.context = context
        self.chunks = chunks
        self.addBOS = addBOS
        self.batch = max(1, batch)
    }

    /// The first scored position in a chunk.
    public var firstScored: Int { context / 2 }
    /// Scored predictions per chunk.
    public var scoredPerChunk: Int { context - 1 - firstScored }

    /// The chunks of `tokens` (already tokenized, without BOS), cut as llama.cpp does; errors name `source`.
    public func chunks(of tokens: [Int32], bos: Int32?, source: String = "text") throws -> [[Int32]] {
        if addBOS && bos == nil { throw QuantaError(.invalidArgument, "BOS", "the tokenizer has no BOS token") }
        return try SequentialChunks.cut(tokens, context: context, limit: chunks, bos: addBOS ? bos : nil, source: source)
    }
}

/// Log-probabilities of one scored position's whole vocabulary, computed in Double.
@inline(__always)
func logSoftmax(_ row: UnsafePointer<Float>, _ n: Int, into out: UnsafeMutablePointer<Double>) {
    let lse = logSumExp(row, n)
    for j in 0..<n { out[j] = Double(row[j]) - lse }
}

/// log Σ exp(row[j]) (see `Kernels.logSumExp`).
@inline(__always)
func logSumExp(_ row: UnsafePointer<Float>, _ n: Int) -> Double { Kernels.logSumExp(row, n) }

#if canImport(Glibc)
import Glibc
#endif
