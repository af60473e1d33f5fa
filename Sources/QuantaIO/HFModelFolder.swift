import QuantaCore

/// The parts of a Hugging Face `config.json` that the Llama family (llama, mistral, qwen2)
/// needs. Absent optional keys take the `transformers` defaults.
public struct ModelConfig: Sendable, Equatable {
    public static let supportedModelTypes = ["llama", "mistral", "qwen2"]

    public let modelType: String
    public let architectures: [String]
    public let hiddenSize: Int
    public let intermediateSize: Int
    public let layerCount: Int
    public let headCount: Int
    public let kvHeadCount: Int
    public let headDim: Int
    public let vocabSize: Int
    public let rmsNormEps: Double
    public let ropeTheta: Double
    public let maxPositionEmbeddings: Int
    public let tieWordEmbeddings: Bool
    /// Biases on q, k and v (always on for qwen2, `attention_bias` otherwise).
    public let attentionBias: Bool
    /// Each position attends to at most this many positions (itself included): mistral's
    /// `sliding_window`, qwen2's when `use_sliding_window` is true; nil for full causal attention.
    public let slidingWindow: Int?
    public let bosTokenIds: [Int]
    public let eosTokenIds: [Int]
    /// `dtype` (transformers 5) or `torch_dtype` (4.x), e.g. "float32".
    public let dtype: String?

    /// Parses `config.json` bytes; `path` names the file in errors.
    public init(json: JSONValue, path: String) throws {
        func fail(_ key: String, _ reason: String) -> QuantaError { QuantaError.malformed("\(path): \(key)", reason) }
        func int(_ key: String) throws -> Int {
            guard let value = json[key] else { throw fail(key, "required key is missing") }
            guard let i = value.intValue, i > 0 else { throw fail(key, "must be a positive integer, got \(value.serialized())") }
            return i
        }
        func optionalInt(_ key: String) throws -> Int? {
            guard let value = json[key], value != .null else { return nil }
            guard let i = value.intValue, i > 0 else { throw fail(key, "must be a positive integer, got \(value.serialized())") }
            return i
        }
        func ids(_ key: String) throws -> [Int] {
            switch json[key] {
            case nil, .null?: return []
            case let .array(values)?:
                return try values.map { guard let i = $0.intValue else { throw fail(key, "must hold integers") }; return i }
            case let value?:
                guard let i = value.intValue else { throw fail(key, "must be an integer or a list of integers") }
                return [i]
            }
        }
        guard case .object = json else { throw QuantaError.malformed(path, "is not a JSON object") }
        guard let modelType = json["model_type"]?.stringValue else { throw fail("model_type", "required string is missing") }
        guard ModelConfig.supportedModelTypes.contains(modelType) else {
            throw QuantaError.unsupported("\(path): model_type", "'\(modelType)' is not supported (supported: \(ModelConfig.supportedModelTypes.joined(separator: ", ")))")
        }
        self.modelType = modelType
        architectures = json["architectures"]?.arrayValue?.compactMap(\.stringValue) ?? []
        hiddenSize = try int("hidden_size")
        intermediateSize = try int("intermediate_size")
        layerCount = try int("num_hidden_layers")
        headCount = try int("num_attention_heads")
        kvHeadCount = try optionalInt("num_key_value_heads") ?? headCount
        guard headCount % kvHeadCount == 0 else {
            throw fail("num_key_value_heads", "\(kvHeadCount) does not divide num_attention_heads \(headCount)")
        }
        if let explicit = try optionalInt("head_dim") {
            headDim = explicit
        } else {
            guard hiddenSize % headCount == 0 else {
                throw fail("hidden_size", "\(hiddenSize) is not a multiple of num_attention_heads \(headCount) and head_dim is absent")
            }
            headDim = hiddenSize / headCount
        }
        vocabSize = try int("vocab_size")
        rmsNormEps = json["rms_norm_eps"]?.doubleValue ?? 1e-6
        ropeTheta = json["rope_theta"]?.doubleValue ?? json["rope_parameters"]?["rope_theta"]?.doubleValue ?? 10000
        maxPositionEmbeddings = try optionalInt("max_position_embeddings") ?? 2048
        tieWordEmbeddings = json["tie_word_embeddings"]?.boolValue ?? false
        attentionBias = modelType == "qwen2" ? true : (json["attention_bias"]?.boolValue ?? false)
        let usesWindow = modelType == "mistral" || (modelType == "qwen2" && json["use_sliding_window"]?.boolValue == true)
        slidingWindow = usesWindow ? try optionalInt("sliding_window") : nil
        bosTokenIds = try ids("bos_token_id")
        eosTokenIds = try ids("eos_token_id")
        dtype = json["dtype"]?.stringValue ?? json["torch_dtype"]?.stringValue
    }

    /// Parameters the architecture implies (embeddings, decoder layers, final norm, head).
    public var expectedParameterCount: Int {
        let q = hiddenSize * headCount * headDim
        let kv = 2 * hiddenSize * kvHeadCount * headDim
        let o = headCount * headDim * hiddenSize
        let bias = attentionBias ? headCount * headDim + 2 * kvHeadCount * headDim : 0
        let mlp = 3 * hiddenSize * intermediateSize
        let layer = q + kv + o + bias + mlp + 2 * hiddenSize
        let embeddings = vocabSize * hiddenSize
        return embeddings * (tieWordEmbeddings ? 1 : 2) + layerCount * layer + hiddenSize
    }
}

/// A Hugging Face model folder: `config.json`, safetensors weights (single or sharded),
/// optional `tokenizer.json` and `generation_config.json`. Pickle-only folders are refused.
public final class HFModelFolder: @unchecked Sendable {
    public let path: String
    public let config: ModelConfig
    public let configJSON: JSONValue
    public let weights: SafetensorsCollection
    /// Path of `tokenizer.json`, when present.
    public let tokenizerPath: String?
    /// `generation_config.json`, when present.
    public let generationConfig: JSONValue?

    static let pickleSuffixes = [".bin", ".pt", ".pth", ".ckpt", ".pkl"]

    public init(path: String) throws {
        self.path = path
        guard FileSystem.kind(of: path) == .folder else {
            throw QuantaError(FileSystem.kind(of: path) == .missing ? .notFound : .invalidArgument, path, "is not a model folder")
        }
        let names = try FileSystem.contents(of: path)
        let configPath = FileSystem.join(path, "config.json")
        guard names.contains("config.json") else {
            throw QuantaError(.notFound, configPath, "model folder has no config.json")
        }
        configJSON = try HFModelFolder.readJSON(configPath)
        config = try ModelConfig(json: configJSON, path: configPath)

        if names.contains("model.safetensors.index.json") {
            weights = try SafetensorsCollection(index: FileSystem.join(path, "model.safetensors.index.json"))
        } else if names.contains("model.safetensors") {
            weights = try SafetensorsCollection(file: FileSystem.join(path, "model.safetensors"))
        } else if let other = names.filter({ $0.hasSuffix(".safetensors") }).first, names.filter({ $0.hasSuffix(".safetensors") }).count == 1 {
            weights = try SafetensorsCollection(file: FileSystem.join(path, other))
        } else {
            let pickles = names.filter { name in HFModelFolder.pickleSuffixes.contains { name.hasSuffix($0) } }
            if !pickles.isEmpty {
                throw QuantaError(.refused, path, "holds only pickle checkpoints (\(pickles.joined(separator: ", "))). "
                    + "Quanta never unpickles: loading a pickle runs arbitrary code. Convert the folder to safetensors first, "
                    + "e.g. in Python with transformers: AutoModelForCausalLM.from_pretrained(dir).save_pretrained(out, safe_serialization=True)")
            }
            throw QuantaError(.notFound, path, "model folder has no model.safetensors or model.safetensors.index.json")
        }
        tokenizerPath = names.contains("tokenizer.json") ? FileSystem.join(path, "tokenizer.json") : nil
        generationConfig = names.contains("generation_config.json")
            ? try HFModelFolder.readJSON(FileSystem.join(path, "generation_config.json")) : nil
    }

    public static func readJSON(_ path: String) throws -> JSONValue {
        let bytes = try FileSystem.read(path)
        do {
            return try JSONParser.parse(bytes)
        } catch {
            throw QuantaError.malformed(path, "not valid JSON: \(error)")
        }
    }

    /// Total elements of all weight tensors.
    public var parameterCount: Int { weights.tensors.reduce(0) { $0 + $1.info.elementCount } }
}
