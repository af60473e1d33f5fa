import QuantaCore
import QuantaFormats
import QuantaIO
import QuantaModel

/// `quanta convert`: a GGUF of a supported architecture to a Hugging Face folder (fp32 safetensors, config.json,
/// tokenizer.json, tokenizer_config.json, generation_config.json). Quantized tensors are
/// dequantized, q/k rows are put back in the HF rotate-half order, and a GGUF without
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
                try values.withUnsafeBytes { try writer.write($0) }
                progress?(index + 1, source.file.tensors.count, info.name)
            })
        }
        try FolderSink.write(to: folder, tensors: entries, metadata: ["format": "pt"], json: files)
        return Summary(tensorCount: entries.count, parameterCount: source.file.tensors.reduce(0) { $0 + $1.elementCount },
                       bytes: entries.reduce(0) { $0 + $1.byteCount }, seconds: monotonicSeconds() - start)
    }
}
