import QuantaCore
import QuantaFormats
import QuantaIO

/// One tensor of a model source, in GGUF naming and layout.
public struct SourceTensor: Sendable, Equatable {
    /// GGUF name ("blk.0.attn_q.weight").
    public let name: String
    /// ggml order, row length first.
    public let dimensions: [Int]
    /// Stored type (1-D tensors of Hugging Face sources count as F32, as llama.cpp's converter stores them).
    public let type: GGMLType
    /// What the tensor is; nil for tensors of a GGUF the architecture table does not list.
    public let role: TensorRole?
    public let layer: Int?

    public var elementCount: Int { dimensions.reduce(1, *) }
}

/// A model whose tensors are read one at a time, lazily, from memory-mapped files, in
/// llama.cpp's GGUF naming and layout (the first stage of every pipeline).
public protocol ModelSource: AnyObject {
    /// Where it comes from (for messages).
    var path: String { get }
    var config: ModelConfig { get }
    /// GGUF metadata of the model (general, architecture, tokenizer).
    var metadata: [(key: String, value: GGUFValue)] { get }
    var tensors: [SourceTensor] { get }
    /// The tensor as fp32 values in GGUF layout (q/k rows permuted for llama, Gemma's norm weights + 1).
    func values(_ name: String) throws -> [Float]
    /// The stored bytes when they are already in GGUF layout, else nil.
    func storedBytes(_ name: String) throws -> UnsafeRawBufferPointer?
    /// Where the stored bytes (`storedBytes`) lie: a file and the byte offset in it; nil when
    /// they are not one file's bytes as they are.
    func storedLocation(_ name: String) -> (path: String, offset: Int)?
    /// Done with this tensor: its mapped pages may leave resident memory.
    func release(_ name: String)
    /// The tokenizer that comes with the model.
    func tokenizer() throws -> BPETokenizer
    /// The files holding the weights, in a fixed order (for checksums).
    var weightFiles: [String] { get }
}

extension ModelSource {
    public func storedLocation(_ name: String) -> (path: String, offset: Int)? { nil }

    /// Calls `body` with the tensor's fp32 values in GGUF layout, straight from the map when
    /// it stores them that way (no copy), else from `values(_:)`.
    public func withValues<R>(_ name: String, _ body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R {
        if let type = tensors.first(where: { $0.name == name })?.type, type == .f32, let stored = try storedBytes(name),
           let base = stored.baseAddress, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
            return try body(UnsafeBufferPointer(start: base.assumingMemoryBound(to: Float.self), count: stored.count / 4))
        }
        return try values(name).withUnsafeBufferPointer(body)
    }
}

/// A Hugging Face folder seen as GGUF tensors, through its architecture's tensor table.
public final class HuggingFaceSource: ModelSource {
    public let model: ModelFolder
    public let metadata: [(key: String, value: GGUFValue)]
    public let tensors: [SourceTensor]
    private let specs: [String: TensorSpec]

    public init(path: String) throws {
        model = try ModelFolder(path: path)
        let baseName = path.split(separator: "/").last.map(String.init) ?? "model"
        metadata = try GGUFConverter.metadata(for: model, name: baseName)
        let table = model.config.architecture.tensors(model.config)
        let byHF = Dictionary(uniqueKeysWithValues: table.filter { $0.generated == nil }.map { ($0.hfName, $0) })
        var tensors: [SourceTensor] = []
        var specs: [String: TensorSpec] = [:]
        // Tensors made from the config (Phi-3's RoPE factors); the GGUF sink puts every tensor in llama.cpp's order.
        for spec in table where spec.generated != nil {
            tensors.append(SourceTensor(name: spec.ggufName, dimensions: Array(spec.shape.reversed()), type: .f32, role: spec.role, layer: spec.layer))
            specs[spec.ggufName] = spec
        }
        for (info, _) in model.weights.tensors {
            if info.name.hasSuffix("rotary_emb.inv_freq") { continue }
            // A multimodal folder's other towers (vision, projector) are not part of the text model.
            if !model.config.hfTensorPrefix.isEmpty && !info.name.hasPrefix(model.config.hfTensorPrefix) { continue }
            // A tied model may still store lm_head.weight: llama.cpp's converter drops it.
            if model.config.tieWordEmbeddings && info.name == "lm_head.weight" { continue }
            guard let spec = byHF[info.name] else {
                throw QuantaError.unsupported("\(path): tensor '\(info.name)'", "is not a tensor of the \(model.config.modelType) architecture")
            }
            guard info.shape == spec.shape else {
                throw QuantaError.malformed("\(path): tensor '\(info.name)'", "has shape \(info.shape), the config implies \(spec.shape)")
            }
            let type: GGMLType
            switch info.dtype {
            case .f32: type = .f32
            case .f16: type = .f16
            case .bf16: type = .bf16
            default: throw QuantaError.unsupported("\(path): tensor '\(info.name)'", "dtype \(info.dtype.rawValue) cannot be converted to GGUF")
            }
            tensors.append(SourceTensor(name: spec.ggufName, dimensions: Array(info.shape.reversed()),
                                        type: info.shape.count == 1 ? .f32 : type, role: spec.role, layer: spec.layer))
            specs[spec.ggufName] = spec
        }
        if let missing = table.first(where: { specs[$0.ggufName] == nil }) {
            throw QuantaError.malformed(path, "missing tensor '\(missing.hfName)'")
        }
        self.tensors = tensors
        self.specs = specs
    }

    public var path: String { model.path }
    public var config: ModelConfig { model.config }

    public func values(_ name: String) throws -> [Float] {
        guard let spec = specs[name] else { throw QuantaError(.invalidArgument, "tensor '\(name)'", "not in \(path)") }
        if let generated = spec.generated { return generated }
        let tensor = try model.weights.floatTensor(spec.hfName)
        if let heads = spec.ggufPermutationHeads {
            return try RopeLayout.interleave(tensor.storage, rows: spec.shape[0], columns: spec.shape.count == 2 ? spec.shape[1] : 1, heads: heads)
        }
        if spec.ggufOffset != 0 { return tensor.storage.map { $0 + spec.ggufOffset } }
        return tensor.storage
    }

    public func storedBytes(_ name: String) throws -> UnsafeRawBufferPointer? {
        guard let spec = specs[name], spec.ggufPermutationHeads == nil, spec.ggufOffset == 0, spec.generated == nil else { return nil }
        let info = try model.weights.info(spec.hfName)
        return info.shape.count == 1 && info.dtype != .f32 ? nil : try model.weights.rawBytes(spec.hfName)
    }

    public func release(_ name: String) {
        if let spec = specs[name], spec.generated == nil { model.weights.release(spec.hfName) }
    }

    public func tokenizer() throws -> BPETokenizer {
        guard let tokenizerPath = model.tokenizerPath else {
            throw QuantaError(.notFound, FileSystem.join(path, "tokenizer.json"), "the model folder has no tokenizer.json")
        }
        return try BPETokenizer(tokenizerJSON: tokenizerPath, tokenizerConfig: model.files.tokenizerConfig, config: model.config)
    }

    public var weightFiles: [String] { model.weights.shards.map(\.path) }
}

/// A GGUF file as a model source (already in GGUF layout).
public final class GGUFSource: ModelSource {
    public let file: GGUFFile
    public let config: ModelConfig
    public let tensors: [SourceTensor]

    public init(path: String) throws {
        file = try GGUFFile(path: path)
        config = try ArchitectureRegistry.config(gguf: file)
        let byGGUF = Dictionary(uniqueKeysWithValues: config.architecture.tensors(config).map { ($0.ggufName, $0) })
        tensors = file.tensors.map { SourceTensor(name: $0.name, dimensions: $0.dimensions, type: $0.type,
                                                  role: byGGUF[$0.name]?.role, layer: byGGUF[$0.name]?.layer) }
    }

    public var path: String { file.path }
    public var metadata: [(key: String, value: GGUFValue)] { file.metadata }

    /// Dequantized on `DecoderModel.threads` workers.
    public func values(_ name: String) throws -> [Float] {
        let info = try file.info(name)
        do {
            return try Quantization.dequantize(info.type, file.rawBytes(info), count: info.elementCount, threads: Kernels.cores)
        } catch let error as QuantaError {
            throw error.within("\(path): tensor '\(name)'")
        }
    }

    public func storedBytes(_ name: String) throws -> UnsafeRawBufferPointer? { try file.rawBytes(name) }

    public func storedLocation(_ name: String) -> (path: String, offset: Int)? {
        file.tensor(name).map { (file.path, file.dataOffset + $0.offset) }
    }

    public func release(_ name: String) {
        if let info = file.tensor(name) { file.release(info) }
    }

    public func tokenizer() throws -> BPETokenizer { try BPETokenizer(gguf: file) }

    public var weightFiles: [String] { [file.path] }
}

/// Opens a model folder or a GGUF file.
public func openModelSource(_ path: String) throws -> ModelSource {
    switch FileSystem.kind(of: path) {
    case .missing: throw QuantaError(.notFound, path, "no such file or folder")
    case .folder: return try HuggingFaceSource(path: path)
    case .file: return try GGUFSource(path: path)
    }
}
