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

    public init(statistics: StatisticsFile, importance: ImportanceMatrix, options: GPTQOptions, threads: Int) {
        self.statistics = statistics
        self.options = options
        fallback = RoundToNearest(importance: importance, threads: threads)
    }

    public func quantize(_ tensor: PlannedTensor, _ values: UnsafeBufferPointer<Float>) throws -> [UInt8] {
        guard let format = BlockFormats.format(tensor.type), format.codec != nil, tensor.dimensions.count == 2,
              let input = statistics.input(feeding: tensor.name), input.columns == tensor.dimensions[0],
              let gram = try statistics.gram(input) else {
            return try fallback.quantize(tensor, values)
        }
        let (columns, rows) = (tensor.dimensions[0], tensor.dimensions[1])
        let scale = 1 / Double(max(input.tokens, 1))
        let importance = (0..<columns).map { Float(gram[$0 * columns + $0] * scale) }
        do {
            var quantizer = try GGUFBlockQuantizer(format: format, rows: rows, columns: columns, importance: importance, original: values)
            _ = try GPTQ.solve(weight: values, rows: rows, columns: columns, gram: gram, options: options, quantizer: &quantizer)
            return quantizer.finish()
        } catch let error as QuantaError {
            throw error.within("tensor '\(tensor.name)'")
        }
    }
}
