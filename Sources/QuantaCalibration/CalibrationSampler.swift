import QuantaCore
import QuantaModel

/// How calibration text becomes equal-length token sequences. Seeded samplers draw with
/// `SeededGenerator`: the same seed gives the same windows everywhere.
public enum CalibrationSampler: Sendable, Equatable {
    /// llama-imatrix's protocol: the text tokenized once (BOS first when used), cut into chunks
    /// of `context` tokens from token 0, at most `chunks` of them, each chunk's first token
    /// replaced by BOS (when used). JSON-lines documents are joined with blank lines.
    case sequential(context: Int, chunks: Int?)
    /// GPTQ's `datautils` windows: for each sample a document longer than `length` tokens picked
    /// at random, then a window of `length` tokens at a random offset in it.
    case randomWindows(samples: Int, length: Int, seed: UInt64)
    /// llm-compressor's packing: documents in seeded random order, each tokenized (BOS first when
    /// used), concatenated and cut into `samples` sequences of `length` tokens.
    case packed(samples: Int, length: Int, seed: UInt64)

    /// A short name for files and reports ("sequential", "random-windows", "packed").
    public var name: String {
        switch self {
        case .sequential: "sequential"
        case .randomWindows: "random-windows"
        case .packed: "packed"
        }
    }

    /// Tokens per sequence.
    public var length: Int {
        switch self {
        case let .sequential(context, _): context
        case let .randomWindows(_, length, _), let .packed(_, length, _): length
        }
    }

    /// The sequences for `data`; `bos` is prepended / substituted as described when non-nil.
    public func sequences(_ data: CalibrationData, tokenizer: BPETokenizer, bos: Int32?) throws -> [[Int32]] {
        switch self {
        case let .sequential(context, chunks):
            let tokens = tokenizer.encode(data.documents.joined(separator: "\n\n"))
            return try SequentialChunks.cut(tokens, context: context, limit: chunks, bos: bos, source: data.path)
        case let .randomWindows(samples, length, seed):
            guard samples > 0, length > 1 else { throw QuantaError(.invalidArgument, "random windows", "need samples > 0 and length > 1") }
            var encoded: [Int: [Int32]] = [:]
            let lengths = data.documents.count == 1 ? [Int.max] : data.documents.map { $0.utf8.count }
            // A document needs more than `length` tokens; a token is at least one byte.
            var eligible = data.documents.indices.filter { lengths[$0] > length }
            var generator = SeededGenerator(seed: seed)
            var out: [[Int32]] = []
            while out.count < samples {
                guard !eligible.isEmpty else {
                    throw QuantaError(.invalidArgument, data.path, "no document has more than \(length) tokens")
                }
                let pick = eligible[generator.below(eligible.count)]
                let tokens = encoded[pick] ?? tokenizer.encode(data.documents[pick])
                encoded[pick] = tokens
                guard tokens.count > length else {
                    eligible.removeAll { $0 == pick }
                    continue
                }
                let start = generator.below(tokens.count - length)
                var window = Array(tokens[start..<(start + length)])
                if let bos { window[0] = bos }
                out.append(window)
            }
            return out
        case let .packed(samples, length, seed):
            guard samples > 0, length > 1 else { throw QuantaError(.invalidArgument, "packed", "need samples > 0 and length > 1") }
            var order = Array(data.documents.indices)
            var generator = SeededGenerator(seed: seed)
            generator.shuffle(&order)
            var stream: [Int32] = []
            for index in order where stream.count < samples * length {
                if let bos { stream.append(bos) }
                stream += tokenizer.encode(data.documents[index])
            }
            guard stream.count >= samples * length else {
                throw QuantaError(.invalidArgument, data.path, "\(stream.count) tokens do not fill \(samples) samples of \(length)")
            }
            return (0..<samples).map { Array(stream[($0 * length)..<(($0 + 1) * length)]) }
        }
    }
}

/// llama.cpp's chunking of one token stream (llama-perplexity and llama-imatrix): BOS first
/// when `bos` is given, chunks of `context` from token 0, each chunk's first token replaced by BOS.
public enum SequentialChunks {
    /// At most `limit` chunks (nil: every whole chunk) of `tokens` (without BOS).
    public static func cut(_ tokens: [Int32], context: Int, limit: Int?, bos: Int32?, source: String) throws -> [[Int32]] {
        guard context >= 4 else { throw QuantaError(.invalidArgument, "--ctx", "context \(context) is too short") }
        var stream = tokens
        if let bos { stream.insert(bos, at: 0) }
        let available = stream.count / context
        guard available > 0 else {
            throw QuantaError(.invalidArgument, source, "\(stream.count) tokens are fewer than one chunk of \(context)")
        }
        let count = min(available, limit ?? available)
        return (0..<count).map { c in
            var chunk = Array(stream[(c * context)..<((c + 1) * context)])
            if let bos { chunk[0] = bos }
            return chunk
        }
    }
}

extension CalibrationProvenance {
    /// The sampler that made these statistics.
    public var recordedSampler: CalibrationSampler? {
        switch sampler {
        case "sequential": .sequential(context: sequenceLength, chunks: samples)
        case "random-windows": .randomWindows(samples: samples, length: sequenceLength, seed: UInt64(bitPattern: seed))
        case "packed": .packed(samples: samples, length: sequenceLength, seed: UInt64(bitPattern: seed))
        default: nil
        }
    }

    /// The calibration sequences again, from the text file the statistics name (which must still
    /// have the recorded sha256) and the recorded sampler, seed and BOS setting.
    public func replay(tokenizer: BPETokenizer, statisticsPath: String) throws -> [[Int32]] {
        guard let replay = recordedSampler else {
            throw QuantaError.unsupported(statisticsPath, "sampler '\(sampler)' cannot be replayed")
        }
        let data = try CalibrationData(path: dataPath)
        guard data.sha256 == dataSHA256 else {
            throw QuantaError(.invalidArgument, statisticsPath, "was made from \(dataPath) with sha256 \(dataSHA256); the file now has sha256 \(data.sha256)")
        }
        return try replay.sequences(data, tokenizer: tokenizer, bos: addBOS ? tokenizer.bosID : nil)
    }
}
