import Dispatch
import QuantaCore
import QuantaFormats
import QuantaIO

#if canImport(Glibc)
import Glibc
#endif

/// `quanta quantize`: a model (Hugging Face folder or GGUF) to a GGUF file with
/// llama-quantize's type choices and bytes, one tensor at a time.
public struct GGUFExport {
    public struct Progress: Sendable {
        public let index: Int
        public let count: Int
        public let tensor: PlannedTensor
        /// fp32 megabytes per second for this tensor (0 for copies).
        public let megabytesPerSecond: Double
    }

    public struct Summary: Sendable {
        public let plan: [PlannedTensor]
        public let sourceBytes: Int
        public let fileBytes: Int
        public let parameterCount: Int
        public let seconds: Double
        /// Output tensor bits per parameter.
        public var bitsPerWeight: Double {
            Double(plan.reduce(0) { $0 + $1.byteCount } * 8) / Double(max(parameterCount, 1))
        }
    }

    public let source: TensorSource
    public let preset: GGUFPreset
    public let options: QuantizationOptions
    public let importance: ImportanceMatrix?
    public let threads: Int
    /// Allow requantizing tensors that are already quantized (lossy twice).
    public let allowRequantize: Bool

    public init(source: TensorSource, preset: GGUFPreset, options: QuantizationOptions, importance: ImportanceMatrix?,
                threads: Int, allowRequantize: Bool = false) {
        self.source = source
        self.preset = preset
        var options = options
        options.hasImportance = importance != nil
        self.options = options
        self.importance = importance
        self.threads = max(1, threads)
        self.allowRequantize = allowRequantize
    }

    /// The per-tensor plan in output order.
    public func plan() throws -> [PlannedTensor] {
        let planner = try QuantizationPlanner(preset: preset, options: options, headCount: source.headCount,
                                              kvHeadCount: source.kvHeadCount, layerCount: source.layerCount)
        let plan = try planner.plan(source.tensors)
        for tensor in plan where tensor.quantized {
            if tensor.sourceType != .f32 && tensor.sourceType != .f16 && tensor.sourceType != .bf16 && !allowRequantize {
                throw QuantaError(.invalidArgument, "\(source.path): tensor '\(tensor.name)'",
                                  "is already \(tensor.sourceType.name); requantizing loses precision twice (pass --allow-requantize to do it anyway)")
            }
            guard Quantization.canQuantize(tensor.type) else {
                throw QuantaError.unsupported("tensor '\(tensor.name)'", "Quanta cannot write \(tensor.type.name)")
            }
        }
        return plan
    }

    /// Output metadata: the source's, with `general.file_type` and `general.quantization_version` set.
    public func metadata() -> [(key: String, value: GGUFValue)] {
        var kv = source.metadata.filter { !$0.key.hasPrefix("split.") }
        for (key, value) in [("general.file_type", GGUFValue.uint32(preset.fileType)), ("general.quantization_version", .uint32(2))] {
            if let i = kv.firstIndex(where: { $0.key == key }) { kv[i].value = value } else { kv.append((key, value)) }
        }
        return kv
    }

    /// Per-column importance for a tensor, checked against its row length.
    func importance(for tensor: PlannedTensor) throws -> [Float]? {
        guard let importance, Quantization.usesImportance(tensor.type), let values = importance.importance(for: tensor.name) else { return nil }
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

    func entries(_ plan: [PlannedTensor], progress: ((Progress) -> Void)?) -> [GGUFWriter.TensorEntry] {
        plan.enumerated().map { index, tensor in
            GGUFWriter.TensorEntry(name: tensor.name, dimensions: tensor.dimensions, type: tensor.type) { writer in
                let start = monotonicSeconds()
                defer { source.release(tensor.name) }
                if tensor.type == tensor.sourceType, let stored = try source.storedBytes(tensor.name) {
                    try writer.write(stored)
                    progress?(Progress(index: index, count: plan.count, tensor: tensor, megabytesPerSecond: 0))
                    return
                }
                let bytes: [UInt8] = try source.withValues(tensor.name) { values in
                    do {
                        return try Quantization.quantize(tensor.type, values, rowLength: tensor.dimensions[0],
                                                         importance: try importance(for: tensor), threads: threads)
                    } catch let error as QuantaError {
                        throw error.within("tensor '\(tensor.name)'")
                    }
                }
                try writer.write(bytes)
                let seconds = max(monotonicSeconds() - start, 1e-9)
                progress?(Progress(index: index, count: plan.count, tensor: tensor,
                                   megabytesPerSecond: Double(tensor.dimensions.reduce(1, *) * 4) / 1e6 / seconds))
            }
        }
    }

    /// The size of the file `run` would write.
    public func fileSize(_ plan: [PlannedTensor]) throws -> Int {
        try GGUFWriter.fileSize(metadata: metadata(), tensors: entries(plan, progress: nil))
    }

    /// Quantizes and writes `output` atomically.
    public func run(output: String, progress: ((Progress) -> Void)? = nil) throws -> Summary {
        let start = monotonicSeconds()
        let plan = try plan()
        try GGUFWriter.write(to: output, metadata: metadata(), tensors: entries(plan, progress: progress))
        let sourceBytes = plan.reduce(0) { $0 + $1.dimensions.reduce(1, *) / $1.sourceType.blockSize * $1.sourceType.bytesPerBlock }
        return Summary(plan: plan, sourceBytes: sourceBytes, fileBytes: try MappedFile(path: output).count,
                       parameterCount: plan.reduce(0) { $0 + $1.dimensions.reduce(1, *) }, seconds: monotonicSeconds() - start)
    }
}
