import QuantaCore
import QuantaIO

/// Every architecture Quanta runs, quantizes and converts: the one list of supported model types.
public enum ArchitectureRegistry {
    /// The families, one entry each.
    public static let families: [any Architecture] = [Llama(), Mistral(), Qwen2(), Qwen3(), Gemma3(), Phi3()]

    /// Supported Hugging Face `model_type` values.
    public static var modelTypes: [String] { families.flatMap(\.modelTypes) }
    /// GGUF `general.architecture` values Quanta reads.
    public static var ggufArchitectures: [String] { families.filter(\.readsGGUF).map(\.ggufArchitecture) }

    public static func family(modelType: String) -> (any Architecture)? {
        families.first { $0.modelTypes.contains(modelType) }
    }

    public static func family(ggufArchitecture name: String) -> (any Architecture)? {
        families.first { $0.readsGGUF && $0.ggufArchitecture == name }
    }

    /// Decodes a Hugging Face config.json through its family; `path` names the file in errors.
    public static func config(hf json: JSONValue, path: String) throws -> ModelConfig {
        guard case .object = json else { throw QuantaError.malformed(path, "is not a JSON object") }
        guard let modelType = json["model_type"]?.stringValue else {
            throw QuantaError.malformed("\(path): model_type", "required string is missing")
        }
        guard let family = family(modelType: modelType) else {
            throw QuantaError.unsupported("\(path): model_type", "'\(modelType)' is not supported (supported: \(modelTypes.joined(separator: ", ")))")
        }
        return try family.config(hf: json, path: path)
    }

    /// Decodes a GGUF file's architecture metadata through its family.
    public static func config(gguf file: GGUFFile) throws -> ModelConfig {
        guard let arch = file["general.architecture"]?.stringValue else {
            throw QuantaError.malformed(file.path, "missing general.architecture")
        }
        guard let family = family(ggufArchitecture: arch) else {
            throw QuantaError.unsupported(file.path, "architecture '\(arch)' is not supported (\(ggufArchitectures.joined(separator: ", ")))")
        }
        return try family.config(gguf: file)
    }
}
