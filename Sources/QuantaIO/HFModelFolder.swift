import QuantaCore

/// A Hugging Face model folder's files: `config.json` (as JSON: the architecture registry in
/// QuantaModel decodes it), safetensors weights (single or sharded), optional `tokenizer.json`,
/// `tokenizer_config.json` and `generation_config.json`. Pickle-only folders are refused.
public final class HFModelFolder: @unchecked Sendable {
    public let path: String
    public let configJSON: JSONValue
    public let weights: SafetensorsCollection
    /// Path of `tokenizer.json`, when present.
    public let tokenizerPath: String?
    /// `generation_config.json`, when present.
    public let generationConfig: JSONValue?
    /// `tokenizer_config.json`, when present.
    public let tokenizerConfig: JSONValue?

    static let pickleSuffixes = [".bin", ".pt", ".pth", ".ckpt", ".pkl"]

    /// The path of `path`'s config.json and its parsed contents, without opening the weights.
    public static func readConfig(_ path: String) throws -> (path: String, json: JSONValue) {
        guard FileSystem.kind(of: path) == .folder else {
            throw QuantaError(FileSystem.kind(of: path) == .missing ? .notFound : .invalidArgument, path, "is not a model folder")
        }
        let configPath = FileSystem.join(path, "config.json")
        guard FileSystem.kind(of: configPath) == .file else {
            throw QuantaError(.notFound, configPath, "model folder has no config.json")
        }
        return (configPath, try readJSON(configPath))
    }

    /// Opens the folder; `configJSON` saves reading config.json again when the caller already has it.
    public init(path: String, configJSON: JSONValue? = nil) throws {
        self.path = path
        self.configJSON = try configJSON ?? HFModelFolder.readConfig(path).json
        let names = try FileSystem.contents(of: path)

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
        tokenizerConfig = names.contains("tokenizer_config.json")
            ? try HFModelFolder.readJSON(FileSystem.join(path, "tokenizer_config.json")) : nil
    }

    /// `model_type` of config.json, when it is a string.
    public var modelType: String? { configJSON["model_type"]?.stringValue }

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
