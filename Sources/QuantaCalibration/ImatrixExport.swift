import QuantaCore
import QuantaIO
import QuantaModel

/// llama.cpp's importance matrix from calibration statistics: for every weight that multiplies
/// a recorded input, the input's per-column sum of x^2 and its token count. The output head is
/// left out, as llama-imatrix leaves it out unless asked (`--process-output`).
public enum ImatrixExport {
    /// One input's sums, from a run or from a statistics file.
    public struct Sums: Sendable {
        public let layer: Int?
        public let input: LinearInput
        public let tokens: Int
        public let sumSquares: [Double]
        /// llama-imatrix's float sums of the same squares, when the run kept them (`InputStatistics.imatrixSums`):
        /// exported instead of `sumSquares` rounded to float.
        public let imatrixSums: [Float]?

        public init(layer: Int?, input: LinearInput, tokens: Int, sumSquares: [Double], imatrixSums: [Float]? = nil) {
            self.layer = layer
            self.input = input
            self.tokens = tokens
            self.sumSquares = sumSquares
            self.imatrixSums = imatrixSums
        }
    }

    public static func matrix(_ sums: [Sums], config: ModelConfig, dataset: String, chunks: Int, chunkSize: Int,
                              includeOutput: Bool = false) -> ImportanceMatrix {
        let specs = config.architecture.tensors(config)
        var entries: [ImportanceMatrix.Entry] = []
        for s in sums where includeOutput || s.input != .output {
            for role in s.input.roles {
                guard let spec = specs.first(where: { $0.role == role && $0.layer == s.layer }) else { continue }
                entries.append(.init(name: spec.ggufName, columns: s.sumSquares.count, sums: s.imatrixSums ?? s.sumSquares.map { Float($0) },
                                     counts: [Float(s.tokens)]))
            }
        }
        entries.sort { $0.name < $1.name }
        return ImportanceMatrix(entries: entries, datasets: [dataset], chunkCount: chunks, chunkSize: chunkSize)
    }
}

extension InputStatistics {
    public var sums: ImatrixExport.Sums { .init(layer: layer, input: input, tokens: tokens, sumSquares: sumSquares, imatrixSums: imatrixSums) }
}
