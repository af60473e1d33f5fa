import QuantaCore
import QuantaIO

/// A Hugging Face model folder of a supported architecture: its files (QuantaIO) and its
/// configuration decoded by the family. The config is decoded before the weights are opened,
/// so a malformed config.json is reported first.
public final class ModelFolder: @unchecked Sendable {
    public let files: HFModelFolder
    public let config: ModelConfig

    public init(path: String) throws {
        let (configPath, json) = try HFModelFolder.readConfig(path)
        config = try ArchitectureRegistry.config(hf: json, path: configPath)
        files = try HFModelFolder(path: path, configJSON: json)
    }

    public var path: String { files.path }
    public var weights: SafetensorsCollection { files.weights }
    public var tokenizerPath: String? { files.tokenizerPath }
    public var generationConfig: JSONValue? { files.generationConfig }
    /// Total elements of all weight tensors.
    public var parameterCount: Int { files.parameterCount }
}
