import QuantaCore
import QuantaIO
import QuantaModel

/// What `quanta inspect` reports about a model folder, a safetensors, GGUF or HDF5 file.
public struct Inspection: Sendable {
    public struct TensorSummary: Sendable {
        public let name: String
        /// "F32", "Q4_K", ... for tensors; "float32" ... for HDF5 datasets.
        public let dtype: String
        /// As the format stores it: outermost first for safetensors and HDF5, ggml order
        /// (innermost first) for GGUF.
        public let shape: [Int]
        public let bytes: Int
        public var elementCount: Int { shape.reduce(1, *) }
    }

    public let path: String
    /// "huggingface-folder", "safetensors", "gguf" or "hdf5".
    public let format: String
    public let architecture: String?
    public let tensors: [TensorSummary]
    /// Metadata as the format holds it (GGUF key/values, safetensors `__metadata__`,
    /// HDF5 attributes as "dataset.attribute", the folder's config essentials).
    public let metadata: [(String, GGUFValue)]
    /// The model's own parameter count when the stored elements are not it (packed quantized
    /// checkpoints: GPTQ, MLX); nil otherwise.
    public var modelParameterCount: Int?

    /// Parameters: the model's (quantized checkpoints) or the stored elements'.
    public var parameterCount: Int { modelParameterCount ?? tensors.reduce(0) { $0 + $1.elementCount } }
    public var totalBytes: Int { tensors.reduce(0) { $0 + $1.bytes } }
    /// Storage bits per parameter over all tensors (0 when there are none).
    public var bitsPerWeight: Double { parameterCount == 0 ? 0 : Double(totalBytes * 8) / Double(parameterCount) }

    /// Inspects `path`, choosing the reader by what it is: a folder, `.gguf`, `.h5`/`.hdf5`,
    /// or `.safetensors` (by extension, then by content).
    public static func inspect(_ path: String) throws -> Inspection {
        switch FileSystem.kind(of: path) {
        case .missing: throw QuantaError(.notFound, path, "no such file or folder")
        case .folder: return try folder(path)
        case .file: break
        }
        let lower = path.lowercased()
        if lower.hasSuffix(".gguf") { return try gguf(GGUFFile(path: path)) }
        if lower.hasSuffix(".h5") || lower.hasSuffix(".hdf5") { return try hdf5(path) }
        if lower.hasSuffix(".safetensors") { return try safetensors(SafetensorsFile(path: path)) }
        let file = try MappedFile(path: path)
        if file.count >= 4, file.bytes.loadUnaligned(as: UInt32.self) == GGUFFile.magic { return try gguf(GGUFFile(file: file)) }
        if file.count >= 8, Array(file.bytes.prefix(8)) == [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A] { return try hdf5(path) }
        if file.count >= 9, file.bytes[8] == UInt8(ascii: "{") { return try safetensors(SafetensorsFile(file: file)) }
        throw QuantaError.unsupported(path, "not a model folder, .safetensors, .gguf or HDF5 file")
    }

    /// A folder of a registered architecture is decoded by its family (a malformed config.json
    /// is an error); any other folder still lists its tensors and config.json's plain values.
    static func folder(_ path: String) throws -> Inspection {
        let (configPath, json) = try HFModelFolder.readConfig(path)
        let modelType = json["model_type"]?.stringValue
        guard let modelType, ArchitectureRegistry.family(modelType: modelType) != nil else {
            let model = try HFModelFolder(path: path, configJSON: json)
            var metadata: [(String, GGUFValue)] = (json.objectValue ?? []).compactMap { key, value in
                switch value {
                case let .string(s): (key, .string(s))
                case let .bool(b): (key, .bool(b))
                case let .integer(i): (key, .int64(i))
                case let .number(d): (key, .float64(d))
                default: nil
                }
            }
            metadata.append(("quanta.support", .string("model_type \(modelType.map { "'\($0)'" } ?? "absent") is not supported for quantize/eval "
                                                       + "(supported: \(ArchitectureRegistry.modelTypes.joined(separator: ", ")))")))
            return folderReport(model, architecture: modelType, metadata: metadata)
        }
        let config = try ArchitectureRegistry.config(hf: json, path: configPath)
        let model = try HFModelFolder(path: path, configJSON: json)
        var metadata: [(String, GGUFValue)] = [
            ("model_type", .string(config.modelType)),
            ("architectures", .array(.string, config.architectures.map { .string($0) })),
            ("hidden_size", .int64(Int64(config.hiddenSize))),
            ("intermediate_size", .int64(Int64(config.intermediateSize))),
            ("num_hidden_layers", .int64(Int64(config.layerCount))),
            ("num_attention_heads", .int64(Int64(config.headCount))),
            ("num_key_value_heads", .int64(Int64(config.kvHeadCount))),
            ("head_dim", .int64(Int64(config.headDim))),
            ("vocab_size", .int64(Int64(config.vocabSize))),
            ("rms_norm_eps", .float64(config.rmsNormEps)),
            ("rope_theta", .float64(config.ropeTheta)),
            ("max_position_embeddings", .int64(Int64(config.maxPositionEmbeddings))),
            ("tie_word_embeddings", .bool(config.tieWordEmbeddings)),
            ("bos_token_id", .array(.int64, config.bosTokenIds.map { .int64(Int64($0)) })),
            ("eos_token_id", .array(.int64, config.eosTokenIds.map { .int64(Int64($0)) })),
            ("tokenizer.json", .bool(model.tokenizerPath != nil)),
            ("generation_config.json", .bool(model.generationConfig != nil)),
            ("shards", .int64(Int64(model.weights.shards.count))),
        ]
        if let dtype = config.dtype { metadata.append(("dtype", .string(dtype))) }
        let quantization = quantizationMetadata(json)
        metadata += quantization
        var report = folderReport(model, architecture: config.modelType, metadata: metadata)
        if !quantization.isEmpty { report.modelParameterCount = config.architecture.tensors(config).reduce(0) { $0 + $1.elementCount } }
        return report
    }

    /// The quantization a checkpoint's config.json declares (MLX `quantization`, GPTQ-style
    /// `quantization_config`, Quanta's own `quanta` record), flattened as "quantization.key".
    static func quantizationMetadata(_ json: JSONValue) -> [(String, GGUFValue)] {
        var out: [(String, GGUFValue)] = []
        func flatten(_ prefix: String, _ value: JSONValue) {
            switch value {
            case let .string(s): out.append((prefix, .string(s)))
            case let .bool(b): out.append((prefix, .bool(b)))
            case let .integer(i): out.append((prefix, .int64(i)))
            case let .number(d): out.append((prefix, .float64(d)))
            case let .object(members): for (key, member) in members { flatten(prefix + "." + key, member) }
            default: break
            }
        }
        if let mlx = json["quantization"] {
            out.append(("quantization.layout", .string("mlx-affine")))
            flatten("quantization", mlx)
        } else if let config = json["quantization_config"] {
            out.append(("quantization.layout", .string(config["checkpoint_format"]?.stringValue ?? config["quant_method"]?.stringValue ?? "unknown")))
            flatten("quantization", config)
        }
        if !out.isEmpty, let quanta = json["quanta"] { flatten("quanta", quanta) }
        return out
    }

    static func folderReport(_ model: HFModelFolder, architecture: String?, metadata: [(String, GGUFValue)]) -> Inspection {
        var metadata = metadata
        for shard in model.weights.shards {
            for (key, value) in shard.metadata { metadata.append(("__metadata__.\(key)", .string(value))) }
        }
        let tensors = model.weights.tensors.map { entry in
            TensorSummary(name: entry.info.name, dtype: entry.info.dtype.rawValue, shape: entry.info.shape, bytes: entry.info.byteCount)
        }
        return Inspection(path: model.path, format: "huggingface-folder", architecture: architecture,
                          tensors: tensors, metadata: metadata)
    }

    static func safetensors(_ file: SafetensorsFile) -> Inspection {
        Inspection(path: file.path, format: "safetensors", architecture: nil,
                   tensors: file.tensors.map { TensorSummary(name: $0.name, dtype: $0.dtype.rawValue, shape: $0.shape, bytes: $0.byteCount) },
                   metadata: file.metadata.map { ($0.0, .string($0.1)) })
    }

    static func gguf(_ file: GGUFFile) -> Inspection {
        Inspection(path: file.path, format: "gguf", architecture: file["general.architecture"]?.stringValue,
                   tensors: file.tensors.map { TensorSummary(name: $0.name, dtype: $0.type.name, shape: $0.dimensions, bytes: $0.byteCount) },
                   metadata: file.metadata.map { ($0.key, $0.value) })
    }

    /// Datasets at the root as "dataset", inside groups as "group/dataset"; metadata keys are
    /// "key" for root attributes, "group.key" for group attributes and "dataset.key" or
    /// "group/dataset.key" for dataset attributes.
    static func hdf5(_ path: String) throws -> Inspection {
        let store = try HDF5Store(path: path, mode: .read)
        var tensors: [TensorSummary] = []
        var metadata: [(String, GGUFValue)] = []
        func add(_ attributes: [(String, HDF5Attribute)], prefix: String) {
            for (key, value) in attributes {
                let converted: GGUFValue = switch value {
                case let .string(s): .string(s)
                case let .int64(i): .int64(i)
                case let .float64(d): .float64(d)
                }
                metadata.append((prefix + key, converted))
            }
        }
        func addDataset(_ name: String) throws {
            let info = try store.info(name)
            let size = info.type == .float32 ? 4 : 8
            tensors.append(TensorSummary(name: name, dtype: info.type.rawValue, shape: info.shape, bytes: info.elementCount * size))
            add(try store.attributes(of: name), prefix: "\(name).")
        }
        add(try store.rootAttributes(), prefix: "")
        for name in try store.datasetNames() { try addDataset(name) }
        for group in try store.groupNames() {
            add(try store.attributes(ofGroup: group), prefix: "\(group).")
            for name in try store.datasetNames(in: group) { try addDataset("\(group)/\(name)") }
        }
        try store.close()
        return Inspection(path: path, format: "hdf5", architecture: nil, tensors: tensors, metadata: metadata)
    }

    /// The report as JSON; arrays longer than 16 elements are abbreviated to their length
    /// and first elements.
    public var json: JSONValue {
        var typeCounts: [(String, Int)] = []
        for tensor in tensors {
            if let i = typeCounts.firstIndex(where: { $0.0 == tensor.dtype }) { typeCounts[i].1 += 1 } else { typeCounts.append((tensor.dtype, 1)) }
        }
        return .object([
            ("path", .string(path)),
            ("format", .string(format)),
            ("architecture", architecture.map { .string($0) } ?? .null),
            ("parameter_count", .integer(Int64(parameterCount))),
            ("tensor_count", .integer(Int64(tensors.count))),
            ("total_bytes", .integer(Int64(totalBytes))),
            ("bits_per_weight", .number((bitsPerWeight * 10000).rounded() / 10000)),
            ("tensor_types", .object(typeCounts.map { ($0.0, .integer(Int64($0.1))) })),
            ("metadata", .object(metadata.map { ($0.0, $0.1.json(arrayLimit: 16)) })),
            ("tensors", .array(tensors.map { tensor in
                .object([
                    ("name", .string(tensor.name)),
                    ("dtype", .string(tensor.dtype)),
                    ("shape", .array(tensor.shape.map { .integer(Int64($0)) })),
                    ("bytes", .integer(Int64(tensor.bytes))),
                ])
            })),
        ])
    }

    /// The report for people: a summary, the metadata one line each, then a tensor table.
    public var text: String {
        var lines: [String] = []
        lines.append("\(path)")
        lines.append("  format:        \(format)")
        if let architecture { lines.append("  architecture:  \(architecture)") }
        lines.append("  parameters:    \(grouped(parameterCount))")
        lines.append("  tensors:       \(tensors.count)")
        lines.append("  tensor bytes:  \(grouped(totalBytes)) (\(megabytes(totalBytes)))")
        lines.append("  bits/weight:   \(fixed(bitsPerWeight, 4))")
        if !metadata.isEmpty {
            lines.append("")
            lines.append("metadata (\(metadata.count) entries):")
            let width = min(metadata.map(\.0.count).max() ?? 0, 48)
            for (key, value) in metadata {
                lines.append("  \(key.padded(width))  \(value.type.name.padded(6))  \(value.summary())")
            }
        }
        if let recipe = metadata.first(where: { ["quanta.recipe", "quantization.meta.recipe"].contains($0.0) }), case let .string(text) = recipe.1 {
            lines.append("")
            lines.append("recipe (\(recipe.0)):")
            lines += text.split(separator: "\n", omittingEmptySubsequences: false).dropLast(text.hasSuffix("\n") ? 1 : 0).map { "  " + $0 }
        }
        lines.append("")
        let nameWidth = min(tensors.map(\.name.count).max() ?? 4, 60)
        lines.append("  \("name".padded(nameWidth))  \("type".padded(8))  \("shape".padded(18))  bytes")
        for tensor in tensors {
            let shape = "[" + tensor.shape.map(String.init).joined(separator: ", ") + "]"
            lines.append("  \(tensor.name.padded(nameWidth))  \(tensor.dtype.padded(8))  \(shape.padded(18))  \(grouped(tensor.bytes))")
        }
        return lines.joined(separator: "\n")
    }
}

