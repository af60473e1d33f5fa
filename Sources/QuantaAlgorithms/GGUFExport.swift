import QuantaCore
import QuantaFormats
import QuantaIO
import QuantaModel

/// `quanta quantize`: the pipeline from a model source through llama-quantize's plan and
/// round-to-nearest quantization into a GGUF sink, with llama-quantize's types and bytes.
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

    public let source: ModelSource
    public let preset: GGUFPreset
    public let options: QuantizationOptions
    public let quantizer: TensorQuantizer
    /// Allow requantizing tensors that are already quantized (lossy twice).
    public let allowRequantize: Bool
    /// The importance matrix the quantizer uses (checked against the types that need one).
    public let importance: ImportanceMatrix?
    /// Metadata the output gets besides the source's (see `GGUFSink.extra` and `late`).
    public var extraMetadata: [(key: String, value: GGUFValue)] = []
    public var lateMetadata: (() -> [(key: String, value: GGUFValue)])?

    /// `quantizer` replaces round-to-nearest (with `importance`) as the quantizer stage.
    public init(source: ModelSource, preset: GGUFPreset, options: QuantizationOptions, importance: ImportanceMatrix?,
                threads: Int, allowRequantize: Bool = false, quantizer: TensorQuantizer? = nil) {
        self.source = source
        self.preset = preset
        var options = options
        options.hasImportance = importance != nil
        self.options = options
        self.quantizer = quantizer ?? RoundToNearest(importance: importance, threads: threads)
        self.allowRequantize = allowRequantize
        self.importance = importance
    }

    var sink: GGUFSink {
        var sink = GGUFSink(source: source, fileType: preset.fileType)
        sink.extra = extraMetadata
        sink.late = lateMetadata
        return sink
    }

    /// The per-tensor plan in output order.
    public func plan() throws -> [PlannedTensor] {
        let c = source.config
        try c.architecture.checkGGUF(c)
        let planner = try QuantizationPlanner(preset: preset, options: options, headCount: c.headCount,
                                              kvHeadCount: c.kvHeadCount, layerCount: c.layerCount)
        let plan = try planner.plan(source.tensors)
        for tensor in plan where tensor.quantized {
            if tensor.sourceType != .f32 && tensor.sourceType != .f16 && tensor.sourceType != .bf16 && !allowRequantize {
                throw QuantaError(.invalidArgument, "\(source.path): tensor '\(tensor.name)'",
                                  "is already \(tensor.sourceType.name); requantizing loses precision twice (pass --allow-requantize to do it anyway)")
            }
            guard let format = BlockFormats.format(tensor.type), format.canQuantize else {
                throw QuantaError.unsupported("tensor '\(tensor.name)'", "Quanta cannot write \(tensor.type.name)")
            }
            try checkImportance(tensor, format)
        }
        return plan
    }

    /// llama-quantize's refusals, before any work: a block tensor of a very low-bit type, or Q2_K
    /// in a Q2_K_S file (`tensor_requires_imatrix`), needs an importance matrix with an entry for
    /// it, and so does any tensor of a type ggml cannot write without one (where ggml would abort).
    func checkImportance(_ tensor: PlannedTensor, _ format: any BlockFormat) throws {
        let lowBit: Set<GGMLType> = [.iq3_XXS, .iq2_XXS, .iq2_XS, .iq2_S, .iq1_M, .iq1_S]
        let outside = tensor.name == "token_embd.weight" || tensor.name == "output.weight"
        let needed = lowBit.contains(tensor.type) || (tensor.type == .q2_K && preset == .q2_K_S)
        guard format.requiresImportance || (needed && !outside),
              importance?.importance(for: tensor.name) == nil else { return }
        let context = "tensor '\(tensor.name)' (\(tensor.type.name))"
        if importance == nil {
            throw QuantaError(.invalidArgument, context, "this quantization requires an importance matrix (--imatrix FILE)")
        }
        let hint = outside ? "; choose another type for it with --\(tensor.name == "output.weight" ? "output-tensor-type" : "token-embedding-type")" : ""
        throw QuantaError(.invalidArgument, context, "the importance matrix has no entry for it, and \(tensor.type.name) needs one\(hint)")
    }

    /// The size of the file `run` would write.
    public func fileSize(_ plan: [PlannedTensor]) throws -> Int { try sink.fileSize(plan) }

    /// Quantizes and writes `output` atomically.
    public func run(output: String, progress: ((Progress) -> Void)? = nil) throws -> Summary {
        let start = monotonicSeconds()
        let plan = try plan()
        try sink.write(plan, quantizer: quantizer, to: output) { index, count, tensor, rate in
            progress?(Progress(index: index, count: count, tensor: tensor, megabytesPerSecond: rate))
        }
        return Summary(plan: plan, sourceBytes: plan.reduce(0) { $0 + $1.sourceByteCount }, fileBytes: try MappedFile(path: output).count,
                       parameterCount: plan.reduce(0) { $0 + $1.dimensions.reduce(1, *) }, seconds: monotonicSeconds() - start)
    }
}
