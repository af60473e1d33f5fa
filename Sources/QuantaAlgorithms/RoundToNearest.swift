import QuantaCore
import QuantaFormats
import QuantaIO

/// The quantizer stage of a pipeline: turns one planned tensor's fp32 values into its stored bytes.
public protocol TensorQuantizer {
    /// `values` are in GGUF layout, `tensor.dimensions[0]` per row; returns `tensor.byteCount` bytes.
    func quantize(_ tensor: PlannedTensor, _ values: UnsafeBufferPointer<Float>) throws -> [UInt8]
}

/// Round-to-nearest GGML block quantization, with llama.cpp's importance matrix when one is
/// given: exactly what llama-quantize does to each tensor.
public struct RoundToNearest: TensorQuantizer {
    public let importance: ImportanceMatrix?
    public let threads: Int

    public init(importance: ImportanceMatrix?, threads: Int) {
        self.importance = importance
        self.threads = max(1, threads)
    }

    /// Per-column importance for a tensor, checked against its row length (nil when the type
    /// ignores it or the matrix has no entry; llama.cpp skips a token_embd entry of the wrong width).
    func importance(for tensor: PlannedTensor) throws -> [Float]? {
        guard let importance, BlockFormats.format(tensor.type)?.usesImportance == true,
              let values = importance.importance(for: tensor.name) else { return nil }
        guard values.count == tensor.dimensions[0] else {
            if tensor.name == "token_embd.weight" { return nil }
            throw QuantaError.malformed("importance matrix entry '\(tensor.name)'",
                                        "has \(values.count) values but the tensor's rows have \(tensor.dimensions[0])")
        }
        guard values.allSatisfy(\.isFinite) else {
            throw QuantaError.malformed("importance matrix entry '\(tensor.name)'", "holds a non-finite value")
        }
        return values
    }

    public func quantize(_ tensor: PlannedTensor, _ values: UnsafeBufferPointer<Float>) throws -> [UInt8] {
        do {
            return try Quantization.quantize(tensor.type, values, rowLength: tensor.dimensions[0],
                                             importance: try importance(for: tensor), threads: threads)
        } catch let error as QuantaError {
            throw error.within("tensor '\(tensor.name)'")
        }
    }
}

/// Per-tensor choice of quantizer: the tensors a recipe gives to GPTQ go to `gptq`, the rest are rounded.
public struct MixedQuantizer: TensorQuantizer {
    public let gptqTensors: Set<String>
    public let gptq: TensorQuantizer
    public let rounding: TensorQuantizer

    public init(gptqTensors: Set<String>, gptq: TensorQuantizer, rounding: TensorQuantizer) {
        self.gptqTensors = gptqTensors
        self.gptq = gptq
        self.rounding = rounding
    }

    public func quantize(_ tensor: PlannedTensor, _ values: UnsafeBufferPointer<Float>) throws -> [UInt8] {
        try (gptqTensors.contains(tensor.name) ? gptq : rounding).quantize(tensor, values)
    }
}
