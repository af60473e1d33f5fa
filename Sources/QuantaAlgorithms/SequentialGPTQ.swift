import QuantaCalibration
import QuantaCore
import QuantaFormats
import QuantaIO
import QuantaModel

/// True-sequential GPTQ: the calibration samples run block by block, and inside each block the
/// linear inputs in the order q/k/v -> o -> gate/up -> down (`BlockRunner.runSequential`); every
/// weight is solved on the Gram matrix of *its* inputs as the already-quantized weights before it
/// produce them, and the next inputs are computed with the solved weights. The head, when asked,
/// is solved last on the final norm's output.
public enum SequentialGPTQ {
    public struct Run: Sendable {
        /// The run's sums of x^2 as an importance matrix (for the weights not solved).
        public let importance: ImportanceMatrix
        /// The largest dampening a factorization needed (above the asked one when one failed).
        public let maxDamp: Double
        /// Wall seconds: the block passes (forward and statistics), the statistics alone, the
        /// factorizations, and the solves (GPTQ and encoding).
        public let passSeconds: Double
        public let statisticsSeconds: Double
        public let factorizeSeconds: Double
        public let solveSeconds: Double
    }

    /// Solves one weight: `(spec, values in GGUF layout, statistics of its input, factorization)`
    /// -> the weight the output will decode to (GGUF layout), or nil to leave it as it is.
    public typealias Solver = (TensorSpec, [Float], InputStatistics, GPTQ.Factorization) throws -> [Float]?

    public static func run(source: ModelSource, sequences: [[Int32]], options: GPTQOptions, threads: Int, head: Bool,
                           solve: Solver, progress: ((Int, Int) -> Void)? = nil) throws -> Run {
        let config = source.config
        try config.checkUnfused("gptq")
        let specs = config.architecture.tensors(config)
        var sums: [ImatrixExport.Sums] = []
        var maxDamp = options.damp
        var statisticsSeconds = 0.0, factorizeSeconds = 0.0, solveSeconds = 0.0
        let start = monotonicSeconds()
        func factorize(_ statistics: InputStatistics) throws -> GPTQ.Factorization? {
            guard let gram = statistics.gram else { return nil }
            let begin = monotonicSeconds()
            defer { factorizeSeconds += monotonicSeconds() - begin }
            let factorization = try GPTQ.factorize(gram: gram, columns: statistics.columns, options: options)
            maxDamp = max(maxDamp, factorization.damp)
            return factorization
        }
        let runner = try BlockRunner(source: source, sequences: sequences)
        runner.threads = threads
        try runner.runSequential(onInput: { layer, statistics, weights in
            sums.append(statistics.sums)
            statisticsSeconds += statistics.seconds
            var weights = weights
            var factorization: GPTQ.Factorization?
            for spec in specs where spec.layer == layer {
                guard let role = spec.role.linear, LinearInput.feeding(role) == statistics.input else { continue }
                if factorization == nil { factorization = try factorize(statistics) }
                guard let factorization else { break }
                do {
                    let begin = monotonicSeconds()
                    defer { solveSeconds += monotonicSeconds() - begin }
                    if let solved = try solve(spec, weights[linear: role], statistics, factorization) { weights[linear: role] = solved }
                } catch let error as QuantaError {
                    throw error.within("tensor '\(spec.ggufName)'")
                }
            }
            if statistics.input == .ffnDown { progress?(layer + 1, config.layerCount) }
            return weights
        }, onHead: { statistics in
            sums.append(statistics.sums)
            statisticsSeconds += statistics.seconds
            // A tied head is the embedding table; only an untied output.weight is solved on the head's inputs.
            guard head, let spec = specs.first(where: { $0.role == .output }), let factorization = try factorize(statistics) else { return }
            defer { source.release(spec.ggufName) }
            let begin = monotonicSeconds()
            defer { solveSeconds += monotonicSeconds() - begin }
            _ = try solve(spec, try source.values(spec.ggufName), statistics, factorization)
        })
        let importance = ImatrixExport.matrix(sums, config: config, dataset: "", chunks: sequences.count, chunkSize: sequences.first?.count ?? 0)
        return Run(importance: importance, maxDamp: maxDamp, passSeconds: monotonicSeconds() - start - factorizeSeconds - solveSeconds,
                   statisticsSeconds: statisticsSeconds, factorizeSeconds: factorizeSeconds, solveSeconds: solveSeconds)
    }

    /// True-sequential GPTQ into GGUF blocks: the bytes of every planned weight GPTQ could solve
    /// (types with a codec), and the run.
    public static func gguf(source: ModelSource, plan: [PlannedTensor], sequences: [[Int32]], options: GPTQOptions, threads: Int,
                            progress: ((Int, Int) -> Void)? = nil) throws -> (bytes: [String: [UInt8]], run: Run) {
        let planned = Dictionary(uniqueKeysWithValues: plan.map { ($0.name, $0) })
        var bytes: [String: [UInt8]] = [:]
        let run = try run(source: source, sequences: sequences, options: options, threads: threads, head: true, solve: { spec, values, statistics, factorization in
            guard let tensor = planned[spec.ggufName], tensor.quantized, tensor.dimensions.count == 2,
                  BlockFormats.format(tensor.type)?.codec != nil, statistics.columns == tensor.dimensions[0] else { return nil }
            let encoded = try values.withUnsafeBufferPointer {
                try GPTQRounding.solve($0, type: tensor.type, rows: tensor.dimensions[1], factorization: factorization,
                                       tokens: statistics.tokens, threads: threads)
            }
            bytes[spec.ggufName] = encoded
            return try encoded.withUnsafeBytes { try Quantization.dequantize(tensor.type, $0, count: values.count) }
        }, progress: progress)
        return (bytes, run)
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
