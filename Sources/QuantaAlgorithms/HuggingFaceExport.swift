import QuantaCore
import QuantaFormats
import QuantaIO
import QuantaModel

/// `quanta convert`: a GGUF of a supported architecture, or a quantized checkpoint folder (GPTQ
/// v1, MLX affine), to a Hugging Face folder (fp32 safetensors, config.json, tokenizer files).
/// Quantized tensors are dequantized; from a GGUF, q/k rows are put back in the HF rotate-half
/// order, Gemma's norm weights lose the 1 llama.cpp's converter added, and a file without
/// output.weight becomes a model with tied embeddings.
public enum HuggingFaceExport {
    public struct Summary: Sendable {
        public let tensorCount: Int
        public let parameterCount: Int
        public let bytes: Int
        public let seconds: Double
    }

    /// Converts `gguf` into the new folder `folder` (which must not exist); the folder appears
    /// only once complete.
    public static func convert(gguf path: String, to folder: String, progress: ((Int, Int, String) -> Void)? = nil) throws -> Summary {
        let start = monotonicSeconds()
        try FolderSink.checkFree(folder)
        let source = try GGUFSource(path: path)
        let files = try GGUFConverter.huggingFaceFiles(from: source.file)
        let specs = Dictionary(uniqueKeysWithValues: source.config.architecture.tensors(source.config).map { ($0.ggufName, $0) })
        var entries: [SafetensorsWriter.Entry] = []
        for (index, info) in source.file.tensors.enumerated() {
            guard let spec = specs[info.name] else {
                throw QuantaError.unsupported("\(path): tensor '\(info.name)'", "is not a tensor of the \(source.config.modelType) architecture")
            }
            if spec.generated != nil { continue }  // RoPE factors: config.json holds them
            guard BlockFormats.format(info.type) != nil else {
                throw QuantaError.unsupported("\(path): tensor '\(info.name)'", "Quanta cannot read \(info.type.name)")
            }
            guard Array(info.dimensions.reversed()) == spec.shape else {
                throw QuantaError.malformed("\(path): tensor '\(info.name)'", "has dimensions \(info.dimensions), the metadata implies \(Array(spec.shape.reversed()))")
            }
            entries.append(try .init(name: spec.hfName, dtype: .f32, shape: spec.shape) { writer in
                defer { source.release(info.name) }
                var values = try source.values(info.name)
                if let heads = spec.ggufPermutationHeads {
                    values = try RopeLayout.interleave(values, rows: spec.shape[0], columns: spec.shape.count > 1 ? spec.shape[1] : 1,
                                                       heads: heads, inverse: true)
                }
                if spec.ggufOffset != 0 { values = values.map { $0 - spec.ggufOffset } }
                try values.withUnsafeBytes { try writer.write($0) }
                progress?(index + 1, source.file.tensors.count, info.name)
            })
        }
        try FolderSink.write(to: folder, tensors: entries, metadata: ["format": "pt"], json: files)
        return Summary(tensorCount: entries.count, parameterCount: source.file.tensors.reduce(0) { $0 + $1.elementCount },
                       bytes: entries.reduce(0) { $0 + $1.byteCount }, seconds: monotonicSeconds() - start)
    }

    /// Converts a quantized checkpoint folder `path` (GPTQ v1 or MLX affine; any folder Quanta
    /// reads) into the new fp32 folder `folder`: every tensor of the architecture's table as
    /// fp32, the quantization entries dropped from config.json, the tokenizer files copied.
    public static func convert(folder path: String, to folder: String, progress: ((Int, Int, String) -> Void)? = nil) throws -> Summary {
        let start = monotonicSeconds()
        try FolderSink.checkFree(folder)
        let model = try ModelFolder(path: path)
        let scheme = try QuantizedFolderScheme(model)
        let specs = model.config.architecture.tensors(model.config)
        var entries: [SafetensorsWriter.Entry] = []
        for (index, spec) in specs.enumerated() {
            if spec.generated != nil { continue }
            // A tied model stores no head.
            if spec.role == .output && model.config.tieWordEmbeddings && !model.weights.contains(spec.hfName) { continue }
            entries.append(try .init(name: spec.hfName, dtype: .f32, shape: spec.shape) { writer in
                let values: [Float]
                if let dequantized = try scheme?.dequantize(spec.hfName, from: model) {
                    values = dequantized
                } else {
                    guard model.weights.contains(spec.hfName) else { throw QuantaError.malformed(path, "missing tensor '\(spec.hfName)'") }
                    values = try model.weights.floatTensor(spec.hfName).storage
                    model.weights.release(spec.hfName)
                }
                guard values.count == spec.elementCount else {
                    throw QuantaError.malformed("\(path): tensor '\(spec.hfName)'", "has \(values.count) values, the config implies \(spec.elementCount)")
                }
                try values.withUnsafeBytes { try writer.write($0) }
                progress?(index + 1, specs.count, spec.hfName)
            })
        }
        guard case var .object(config) = model.files.configJSON else { throw QuantaError.malformed(path, "config.json is not an object") }
        config.removeAll { ["quantization", "quantization_config", "quanta", "torch_dtype", "dtype"].contains($0.0) }
        config.append(("torch_dtype", .string("float32")))
        let copies = ["tokenizer.json", "tokenizer_config.json", "generation_config.json", "special_tokens_map.json"]
            .map { (from: FileSystem.join(path, $0), name: $0) }.filter { FileSystem.kind(of: $0.from) == .file }
        try FolderSink.write(to: folder, tensors: entries, metadata: ["format": "pt"], json: [("config.json", .object(config))], copies: copies)
        return Summary(tensorCount: entries.count, parameterCount: specs.reduce(0) { $0 + $1.elementCount },
                       bytes: entries.reduce(0) { $0 + $1.byteCount }, seconds: monotonicSeconds() - start)
    }
}
