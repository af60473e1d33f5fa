import QuantaCore
import QuantaFormats
import QuantaIO

/// A model whose tensors can be read one at a time in llama.cpp's GGUF naming and layout.
public protocol TensorSource: AnyObject {
    /// Where it comes from (for messages).
    var path: String { get }
    /// GGUF metadata of the model (architecture, tokenizer, ...).
    var metadata: [(key: String, value: GGUFValue)] { get }
    /// GGUF name, ggml dimensions (row length first) and stored type of every tensor.
    var tensors: [(name: String, dimensions: [Int], type: GGMLType)] { get }
    var headCount: Int { get }
    var kvHeadCount: Int { get }
    var layerCount: Int { get }
    /// The tensor as fp32 values in GGUF layout (q/k rows permuted for llama).
    func values(_ name: String) throws -> [Float]
    /// Calls `body` with the tensor's fp32 values in GGUF layout, straight from the file
    /// when it stores them that way (no copy), else from `values(_:)`.
    func withValues<R>(_ name: String, _ body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R
    /// The stored bytes when they are already in GGUF layout, else nil.
    func storedBytes(_ name: String) throws -> UnsafeRawBufferPointer?
    /// Done with this tensor: its mapped pages may leave resident memory.
    func release(_ name: String)
}

extension TensorSource {
    public func withValues<R>(_ name: String, _ body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R {
        if let type = tensors.first(where: { $0.name == name })?.type, type == .f32, let stored = try storedBytes(name),
           let base = stored.baseAddress, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
            return try body(UnsafeBufferPointer(start: base.assumingMemoryBound(to: Float.self), count: stored.count / 4))
        }
        return try values(name).withUnsafeBufferPointer(body)
    }
}

/// A Hugging Face llama-family folder seen as GGUF tensors (llama.cpp's converter mapping).
public final class HuggingFaceSource: TensorSource {
    public let model: HFModelFolder
    public let metadata: [(key: String, value: GGUFValue)]
    public let tensors: [(name: String, dimensions: [Int], type: GGMLType)]
    private let hfNames: [String: String]
    /// llama.cpp permutes q/k rows for the llama architecture only.
    private let permutes: Bool

    public init(path: String) throws {
        model = try HFModelFolder(path: path)
        permutes = LlamaGGUFMetadata.architecture(for: model.config.modelType) == "llama"
        let baseName = path.split(separator: "/").last.map(String.init) ?? "model"
        metadata = try LlamaGGUFMetadata.metadata(for: model, name: baseName)
        var tensors: [(name: String, dimensions: [Int], type: GGMLType)] = []
        var hfNames: [String: String] = [:]
        for (info, _) in model.weights.tensors {
            if info.name.hasSuffix("rotary_emb.inv_freq") { continue }
            guard let name = LlamaGGUFNames.ggufName(forHF: info.name) else {
                throw QuantaError.unsupported("\(path): tensor '\(info.name)'", "has no llama GGUF name")
            }
            let type: GGMLType
            switch info.dtype {
            case .f32: type = .f32
            case .f16: type = .f16
            case .bf16: type = .bf16
            default: throw QuantaError.unsupported("\(path): tensor '\(info.name)'", "dtype \(info.dtype.rawValue) cannot be converted to GGUF")
            }
            // The converter stores 1-D tensors (norms, biases) as F32.
            tensors.append((name, Array(info.shape.reversed()), info.shape.count == 1 ? .f32 : type))
            hfNames[name] = info.name
        }
        if model.config.tieWordEmbeddings { tensors.removeAll { $0.name == "output.weight" } }
        self.tensors = tensors
        self.hfNames = hfNames
    }

    public var path: String { model.path }
    public var headCount: Int { model.config.headCount }
    public var kvHeadCount: Int { model.config.kvHeadCount }
    public var layerCount: Int { model.config.layerCount }

    public func values(_ name: String) throws -> [Float] {
        guard let hf = hfNames[name] else { throw QuantaError(.invalidArgument, "tensor '\(name)'", "not in \(path)") }
        let tensor = try model.weights.floatTensor(hf)
        if permutes, let heads = LlamaGGUFNames.permutationHeads(forGGUF: name, heads: headCount, kvHeads: kvHeadCount) {
            let columns = tensor.shape.count == 2 ? tensor.shape[1] : 1
            return try LlamaGGUFNames.permuteRows(tensor.storage, rows: tensor.shape[0], columns: columns, heads: heads)
        }
        return tensor.storage
    }

    public func storedBytes(_ name: String) throws -> UnsafeRawBufferPointer? {
        guard let hf = hfNames[name], !permutes || LlamaGGUFNames.permutationHeads(forGGUF: name, heads: 1, kvHeads: 1) == nil else { return nil }
        let info = try model.weights.info(hf)
        return info.shape.count == 1 && info.dtype != .f32 ? nil : try model.weights.rawBytes(hf)
    }

    public func release(_ name: String) {
        if let hf = hfNames[name] { model.weights.release(hf) }
    }
}

/// A GGUF file as a tensor source (already in GGUF layout).
public final class GGUFSource: TensorSource {
    public let file: GGUFFile
    public let tensors: [(name: String, dimensions: [Int], type: GGMLType)]

    public init(path: String) throws {
        file = try GGUFFile(path: path)
        tensors = file.tensors.map { ($0.name, $0.dimensions, $0.type) }
    }

    public var path: String { file.path }
    public var metadata: [(key: String, value: GGUFValue)] { file.metadata }
    private func count(_ key: String) -> Int {
        let arch = file["general.architecture"]?.stringValue ?? "llama"
        return file["\(arch).\(key)"]?.intValue ?? 0
    }
    public var headCount: Int { count("attention.head_count") }
    public var kvHeadCount: Int { file["\(file["general.architecture"]?.stringValue ?? "llama").attention.head_count_kv"]?.intValue ?? headCount }
    public var layerCount: Int { count("block_count") }

    public func values(_ name: String) throws -> [Float] {
        let info = try file.info(name)
        do {
            return try Quantization.dequantize(info.type, file.rawBytes(info), count: info.elementCount)
        } catch let error as QuantaError {
            throw error.within("\(path): tensor '\(name)'")
        }
    }

    public func storedBytes(_ name: String) throws -> UnsafeRawBufferPointer? { try file.rawBytes(name) }

    public func release(_ name: String) {
        if let info = try? file.info(name) { file.release(info) }
    }
}

/// Opens a model folder or a GGUF file.
public func openTensorSource(_ path: String) throws -> TensorSource {
    switch FileSystem.kind(of: path) {
    case .missing: throw QuantaError(.notFound, path, "no such file or folder")
    case .folder: return try HuggingFaceSource(path: path)
    case .file: return try GGUFSource(path: path)
    }
}
