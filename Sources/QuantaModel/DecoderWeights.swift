import QuantaCore
import QuantaFormats
import QuantaIO

/// The fp32 weights of a decoder, gathered by role from the architecture's tensor table;
/// matrices row-major `[out, in]`.
public struct DecoderWeights: Sendable {
    public struct Layer: Sendable {
        public var attentionNorm: [Float] = []
        public var q: [Float] = [], k: [Float] = [], v: [Float] = [], o: [Float] = []
        public var qBias: [Float]?, kBias: [Float]?, vBias: [Float]?
        /// Per-head RMSNorm weights of q and k (`headDim` values each; qwen3).
        public var qNorm: [Float]?, kNorm: [Float]?
        public var ffnNorm: [Float] = []
        /// RMSNorm weights applied to the attention output and to the feed-forward output before
        /// each residual add (Gemma 3; nil for other families).
        public var attentionPostNorm: [Float]?, ffnPostNorm: [Float]?
        public var gate: [Float] = [], up: [Float] = [], down: [Float] = []
        /// Storage types of the linear weights (GGUF sources), for runtime emulation.
        public var types: [LinearRole: GGMLType] = [:]

        /// Splits a fused projection into the roles it stacks (rows q, k, v; rows gate, up).
        mutating func unfuse(_ role: TensorRole, _ values: [Float], type: GGMLType?, config c: ModelConfig) throws {
            let d = c.hiddenSize
            func rows(_ start: Int, _ count: Int) -> [Float] { Array(values[(start * d)..<((start + count) * d)]) }
            switch role {
            case .qkv:
                (q, k, v) = (rows(0, c.qDim), rows(c.qDim, c.kvDim), rows(c.qDim + c.kvDim, c.kvDim))
                for part in [LinearRole.q, .k, .v] { types[part] = type }
            case .gateUp:
                (gate, up) = (rows(0, c.intermediateSize), rows(c.intermediateSize, c.intermediateSize))
                for part in [LinearRole.gate, .up] { types[part] = type }
            default:
                throw QuantaError(.invalidArgument, "\(role)", "is not a fused projection")
            }
        }

        /// The weight of a block's linear role (`.output` is not part of a block: empty).
        public subscript(linear role: LinearRole) -> [Float] {
            get {
                switch role {
                case .q: q
                case .k: k
                case .v: v
                case .o: o
                case .gate: gate
                case .up: up
                case .down: down
                case .output: []
                }
            }
            set {
                switch role {
                case .q: q = newValue
                case .k: k = newValue
                case .v: v = newValue
                case .o: o = newValue
                case .gate: gate = newValue
                case .up: up = newValue
                case .down: down = newValue
                case .output: break
                }
            }
        }
    }

    public var embedding: [Float] = []
    public var layers: [Layer]
    public var outputNorm: [Float] = []
    /// nil when tied to the embedding.
    public var output: [Float]?
    public var ropeLayout: RopeLayout
    /// Storage type of the output head (GGUF sources).
    public var outputType: GGMLType?

    /// Loads every tensor of `config`'s architecture with `load` (nil: the tensor is absent),
    /// checking each size against the table. `gguf` chooses GGUF names over Hugging Face names;
    /// Hugging Face values get the spec's `ggufOffset`, so norms hold the multipliers either way.
    /// `include` picks the tensors to load (default: all); the others stay empty.
    static func load(_ config: ModelConfig, gguf: Bool, ropeLayout: RopeLayout, source: String,
                     include: (TensorSpec) -> Bool = { _ in true },
                     _ load: (String) throws -> (values: [Float], type: GGMLType?)?) throws -> DecoderWeights {
        var weights = DecoderWeights(layers: Array(repeating: Layer(), count: config.layerCount), ropeLayout: ropeLayout)
        for spec in config.architecture.tensors(config) where include(spec) && spec.generated == nil {
            let name = gguf ? spec.ggufName : spec.hfName
            guard let loaded = try load(name) else { throw QuantaError.malformed(source, "missing tensor '\(name)'") }
            var values = loaded.values
            let type = loaded.type
            if !gguf && spec.ggufOffset != 0 { values = values.map { $0 + spec.ggufOffset } }
            guard values.count == spec.elementCount else {
                throw QuantaError.malformed("\(source): tensor '\(name)'", "has \(values.count) values, the config implies \(spec.elementCount)")
            }
            if let role = spec.role.linear, let layer = spec.layer { weights.layers[layer].types[role] = type }
            if let layer = spec.layer, spec.role.isFused {
                try weights.layers[layer].unfuse(spec.role, values, type: type, config: config)
                continue
            }
            switch (spec.role, spec.layer) {
            case (.embedding, _): weights.embedding = values
            case (.outputNorm, _): weights.outputNorm = values
            case (.output, _): weights.output = values
            case let (.attentionNorm, l?): weights.layers[l].attentionNorm = values
            case let (.q, l?): weights.layers[l].q = values
            case let (.k, l?): weights.layers[l].k = values
            case let (.v, l?): weights.layers[l].v = values
            case let (.o, l?): weights.layers[l].o = values
            case let (.qBias, l?): weights.layers[l].qBias = values
            case let (.kBias, l?): weights.layers[l].kBias = values
            case let (.vBias, l?): weights.layers[l].vBias = values
            case let (.qNorm, l?): weights.layers[l].qNorm = values
            case let (.kNorm, l?): weights.layers[l].kNorm = values
            case let (.ffnNorm, l?): weights.layers[l].ffnNorm = values
            case let (.attentionPostNorm, l?): weights.layers[l].attentionPostNorm = values
            case let (.ffnPostNorm, l?): weights.layers[l].ffnPostNorm = values
            case let (.gate, l?): weights.layers[l].gate = values
            case let (.up, l?): weights.layers[l].up = values
            case let (.down, l?): weights.layers[l].down = values
            default: throw QuantaError.malformed("\(source): tensor '\(name)'", "role \(spec.role) outside a block is not part of the decoder")
            }
            if spec.role == .output || (spec.role == .embedding && config.tieWordEmbeddings) { weights.outputType = type }
        }
        return weights
    }

    /// From a Hugging Face folder: F32/F16/BF16 safetensors, or a quantized checkpoint whose
    /// linears are dequantized (GPTQ v1 `qweight`/`qzeros`/`scales`/`g_idx`; MLX affine
    /// `weight`/`scales`/`biases`).
    public static func load(folder model: ModelFolder) throws -> DecoderWeights {
        let scheme = try QuantizedFolderScheme(model)
        return try load(model.config, gguf: false, ropeLayout: .halves, source: model.path) { name in
            if let weight = try scheme?.dequantize(name, from: model) { return (weight, nil) }
            guard model.weights.contains(name) else { return nil }
            defer { model.weights.release(name) }
            return (try model.weights.floatTensor(name).storage, nil)
        }
    }

    /// From a GGUF file, dequantizing every tensor to fp32; each tensor's mapped pages are
    /// released once read, so resident memory holds the fp32 copy and not the file as well.
    public static func load(gguf file: GGUFFile, config: ModelConfig) throws -> DecoderWeights {
        try load(config, gguf: true, ropeLayout: config.architecture.ggufRopeLayout, source: file.path) { name in
            guard let info = file.tensor(name) else { return nil }
            defer { file.release(info) }
            do {
                return (try Quantization.dequantize(info.type, file.rawBytes(info), count: info.elementCount), info.type)
            } catch let error as QuantaError {
                throw error.within("\(file.path): tensor '\(name)'")
            }
        }
    }

    /// From a model source (GGUF layout, dequantized), only the tensors `include` picks; each
    /// tensor's mapped pages are released once read.
    public static func load(from source: ModelSource, include: (TensorSpec) -> Bool) throws -> DecoderWeights {
        let types = Dictionary(uniqueKeysWithValues: source.tensors.map { ($0.name, $0.type) })
        return try load(source.config, gguf: true, ropeLayout: source.config.architecture.ggufRopeLayout, source: source.path,
                        include: include) { name in
            guard let type = types[name] else { return nil }
            defer { source.release(name) }
            return (try source.values(name), type)
        }
    }

    /// Block `l`'s weights from a model source.
    public static func layer(_ l: Int, from source: ModelSource) throws -> Layer {
        try load(from: source) { $0.layer == l }.layers[l]
    }
}
