import QuantaCalibration
import QuantaCore
import QuantaFormats
import QuantaIO
import QuantaModel

/// True-sequential GPTQ into GGUF: the calibration samples run block by block; each block's
/// linear weights are solved by GPTQ on the Gram matrices of *their* inputs (the outputs of the
/// blocks already quantized), and the block's outputs are recomputed with the quantized weights
/// before the next block sees them. The head is solved last on the final norm's output.
public enum SequentialGPTQ {
    /// GGUF bytes of every planned weight GPTQ could solve, and the run's importance matrix
    /// (for the weights it could not).
    public static func run(source: ModelSource, plan: [PlannedTensor], sequences: [[Int32]], options: GPTQOptions, threads: Int,
                           progress: ((Int, Int) -> Void)? = nil) throws -> (bytes: [String: [UInt8]], importance: ImportanceMatrix) {
        let config = source.config
        let planned = Dictionary(uniqueKeysWithValues: plan.map { ($0.name, $0) })
        let specs = config.architecture.tensors(config)
        var bytes: [String: [UInt8]] = [:]
        var sums: [ImatrixExport.Sums] = []

        let cache = FactorizationCache()
        /// Solves `values` (GGUF layout) when the plan quantizes it to a type with a codec; returns the dequantized weight.
        func solve(_ spec: TensorSpec, _ values: [Float], _ statistics: InputStatistics) throws -> [Float]? {
            guard let tensor = planned[spec.ggufName], tensor.quantized, tensor.dimensions.count == 2,
                  BlockFormats.format(tensor.type)?.codec != nil, statistics.columns == tensor.dimensions[0],
                  let factorization = try cache.factorization(statistics.name, layer: statistics.layer, {
                      try statistics.gram.map { try GPTQ.factorize(gram: $0, columns: statistics.columns, options: options) }
                  }) else { return nil }
            let encoded = try values.withUnsafeBufferPointer {
                try GPTQRounding.solve($0, type: tensor.type, rows: tensor.dimensions[1], factorization: factorization,
                                       tokens: statistics.tokens, threads: threads)
            }
            bytes[spec.ggufName] = encoded
            return try encoded.withUnsafeBytes { try Quantization.dequantize(tensor.type, $0, count: values.count) }
        }

        let runner = try BlockRunner(source: source, sequences: sequences)
        runner.keepInputs = true
        runner.threads = threads
        try runner.run(onBlock: { block in
            var weights = block.weights
            let byInput = Dictionary(uniqueKeysWithValues: block.statistics.map { ($0.input, $0) })
            sums += block.statistics.map(\.sums)
            var changed = false
            for spec in specs where spec.layer == block.layer {
                guard let role = spec.role.linear, let input = LinearInput.feeding(role), let statistics = byInput[input] else { continue }
                let current: [Float]
                switch role {
                case .q: current = weights.q
                case .k: current = weights.k
                case .v: current = weights.v
                case .o: current = weights.o
                case .gate: current = weights.gate
                case .up: current = weights.up
                case .down: current = weights.down
                case .output: continue
                }
                guard let solved = try solve(spec, current, statistics) else { continue }
                changed = true
                switch role {
                case .q: weights.q = solved
                case .k: weights.k = solved
                case .v: weights.v = solved
                case .o: weights.o = solved
                case .gate: weights.gate = solved
                case .up: weights.up = solved
                case .down: weights.down = solved
                case .output: break
                }
            }
            progress?(block.layer + 1, config.layerCount)
            return changed ? weights : nil
        }, onHead: { head in
            sums.append(head.sums)
            // A tied head is the embedding table; only an untied output.weight is solved on the head's inputs.
            guard let spec = specs.first(where: { $0.role == .output }) else { return }
            defer { source.release(spec.ggufName) }
            _ = try solve(spec, try source.values(spec.ggufName), head)
        })
        let importance = ImatrixExport.matrix(sums, config: config, dataset: "", chunks: sequences.count, chunkSize: sequences.first?.count ?? 0)
        return (bytes, importance)
    }
}

/// Serves bytes computed beforehand (a sequential run); rounds the rest.
public struct PrecomputedQuantizer: TensorQuantizer {
    public let bytes: [String: [UInt8]]
    public let fallback: RoundToNearest

    public init(bytes: [String: [UInt8]], fallback: RoundToNearest) {
        self.bytes = bytes
        self.fallback = fallback
    }

    public func quantize(_ tensor: PlannedTensor, _ values: UnsafeBufferPointer<Float>) throws -> [UInt8] {
        if let stored = bytes[tensor.name] {
            guard stored.count == tensor.byteCount else {
                throw QuantaError(.invalidArgument, "tensor '\(tensor.name)'", "precomputed bytes \(stored.count) do not fit \(tensor.byteCount)")
            }
            return stored
        }
        return try fallback.quantize(tensor, values)
    }
}
