import Dispatch
import QuantaCalibration
import QuantaCore
import QuantaFormats
import QuantaIO

/// The GPTQ quantizer stage for GGUF output: every weight whose input has a Gram matrix in the
/// statistics is solved by GPTQ with its planned GGUF type's blocks; the others (embeddings,
/// types without a codec, inputs without a Gram matrix) are rounded as llama-quantize does, with
/// the statistics' sums of x^2 as the importance matrix.
public struct GPTQRounding: TensorQuantizer {
    public let statistics: StatisticsFile
    public let options: GPTQOptions
    public let fallback: RoundToNearest
    public let threads: Int
    /// Rows per independent GPTQ slice.
    static let rowsPerSlice = 64
    private let cache = FactorizationCache()

    public init(statistics: StatisticsFile, importance: ImportanceMatrix, options: GPTQOptions, threads: Int) {
        self.statistics = statistics
        self.options = options
        fallback = RoundToNearest(importance: importance, threads: threads)
        self.threads = max(1, threads)
    }

    /// The largest dampening a factorization took so far (nil before the first).
    public var maxDamp: Double? { cache.maxDamp }

    public func quantize(_ tensor: PlannedTensor, _ values: UnsafeBufferPointer<Float>) throws -> [UInt8] {
        do {
            guard let format = BlockFormats.format(tensor.type), format.codec != nil, tensor.dimensions.count == 2,
                  let (factorization, tokens) = try cache.factorization(feeding: tensor.name, columns: tensor.dimensions[0],
                                                                        statistics: statistics, options: options) else {
                return try fallback.quantize(tensor, values)
            }
            return try GPTQRounding.solve(values, type: tensor.type, rows: tensor.dimensions[1], factorization: factorization,
                                          tokens: tokens, threads: threads)
        } catch let error as QuantaError {
            throw error.within("tensor '\(tensor.name)'")
        }
    }
}

extension GPTQRounding {
    /// GPTQ through `type`'s GGUF blocks for one weight (`rows x factorization.columns`, GGUF
    /// layout) whose input's Gram matrix (over `tokens` tokens) was factorized: the tensor's GGUF
    /// bytes. Rows are independent given the factorization: slices of a fixed size, spread over
    /// the threads, give the same bytes whatever the thread count.
    public static func solve(_ values: UnsafeBufferPointer<Float>, type: GGMLType, rows: Int, factorization: GPTQ.Factorization, tokens: Int,
                             threads: Int) throws -> [UInt8] {
        let columns = factorization.columns
        guard let format = BlockFormats.format(type), let rowBytes = type.rowBytes(columns) else {
            throw QuantaError.unsupported(type.name, "GPTQ cannot write \(type.name) rows of \(columns)")
        }
        let scale = 1 / Double(max(tokens, 1))
        let importance = factorization.diagonal.map { Float($0 * scale) }
        let slice = rowsPerSlice, slices = (rows + slice - 1) / slice
        var out = [UInt8](repeating: 0, count: rows * rowBytes)
        nonisolated(unsafe) let destination = out.withUnsafeMutableBufferPointer { $0.baseAddress! }
        nonisolated(unsafe) let source = values.baseAddress!
        nonisolated(unsafe) var failure: Error?
        let workers = max(1, min(threads, slices))
        let lock = ErrorLock()
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            for s in stride(from: worker, to: slices, by: workers) {
                let r0 = s * slice, r1 = min(rows, r0 + slice)
                do {
                    let part = UnsafeBufferPointer(start: source + r0 * columns, count: (r1 - r0) * columns)
                    var quantizer = try GGUFBlockQuantizer(format: format, rows: r1 - r0, columns: columns, importance: importance, original: part)
                    _ = try GPTQ.solve(weight: part, rows: r1 - r0, factorization: factorization, quantizer: &quantizer)
                    let bytes = quantizer.finish()
                    bytes.withUnsafeBufferPointer { (destination + r0 * rowBytes).update(from: $0.baseAddress!, count: bytes.count) }
                } catch {
                    lock.run { failure = failure ?? error }
                }
            }
        }
        if let failure { throw failure }
        return out
    }
}

/// A minimal mutex for collecting the first error of concurrent work.
final class ErrorLock: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }
    func run(_ body: () -> Void) {
        pthread_mutex_lock(&mutex)
        body()
        pthread_mutex_unlock(&mutex)
    }
}

#if canImport(Glibc)
import Glibc
#endif

extension FactorizationCache {
    /// The factorization of the Gram matrix of the input that multiplies `tensor` (a GGUF name,
    /// `columns` wide) in `statistics`, made once per input of a layer, with the input's token
    /// count; nil when no such input is recorded or it has no Gram matrix.
    public func factorization(feeding tensor: String, columns: Int, statistics: StatisticsFile,
                              options: GPTQOptions) throws -> (factorization: GPTQ.Factorization, tokens: Int)? {
        guard let input = statistics.input(feeding: tensor), input.columns == columns,
              let factorization = try factorization(input.name, layer: input.layer, {
                  try statistics.gram(input).map { try GPTQ.factorize(gram: $0, columns: columns, options: options) }
              }) else { return nil }
        return (factorization, input.tokens)
    }

    /// The same for a GPTQ solve that has no fallback: an error naming the statistics file when
    /// the input or its Gram matrix is missing.
    public func requiredFactorization(feeding tensor: String, columns: Int, statistics: StatisticsFile,
                                      options: GPTQOptions) throws -> GPTQ.Factorization {
        if let found = try factorization(feeding: tensor, columns: columns, statistics: statistics, options: options) { return found.factorization }
        guard let input = statistics.input(feeding: tensor), input.columns == columns else {
            throw QuantaError.malformed(statistics.path, "no statistics for the input of '\(tensor)'")
        }
        throw QuantaError(.invalidArgument, statistics.path, "has no Gram matrix for \(input.name); GPTQ needs `quanta calibrate --hessian full`")
    }
}
