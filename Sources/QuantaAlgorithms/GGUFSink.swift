import QuantaCore
import QuantaIO
import QuantaModel

/// The GGUF output stage: the source's metadata with the file type set, and every planned
/// tensor either copied as stored or quantized, streamed one at a time into a temporary file
/// that is renamed into place.
public struct GGUFSink {
    /// After each tensor: its index, the tensor count, the tensor, fp32 MB/s (0 for copies).
    public typealias Progress = (_ index: Int, _ count: Int, _ tensor: PlannedTensor, _ megabytesPerSecond: Double) -> Void

    public let source: ModelSource
    /// `general.file_type` (llama.cpp's `llama_ftype`).
    public let fileType: UInt32
    /// Keys added to (or replacing) the source's, e.g. how a quantizer was configured.
    public var extra: [(key: String, value: GGUFValue)] = []
    /// Final values of some `extra` keys, known once every tensor is written (same types and sizes).
    public var late: (() -> [(key: String, value: GGUFValue)])?

    public init(source: ModelSource, fileType: UInt32) {
        self.source = source
        self.fileType = fileType
    }

    /// Output metadata: the source's, with `general.file_type`, `general.quantization_version` and `extra` set.
    public func metadata() -> [(key: String, value: GGUFValue)] {
        var kv = source.metadata.filter { !$0.key.hasPrefix("split.") }
        for (key, value) in [("general.file_type", GGUFValue.uint32(fileType)), ("general.quantization_version", .uint32(2))] + extra {
            if let i = kv.firstIndex(where: { $0.key == key }) { kv[i].value = value } else { kv.append((key, value)) }
        }
        return kv
    }

    func entries(_ plan: [PlannedTensor], _ quantizer: TensorQuantizer, progress: Progress?) -> [GGUFWriter.TensorEntry] {
        plan.enumerated().map { index, tensor in
            GGUFWriter.TensorEntry(name: tensor.name, dimensions: tensor.dimensions, type: tensor.type) { writer in
                let start = monotonicSeconds()
                defer { source.release(tensor.name) }
                if tensor.type == tensor.sourceType, let stored = try source.storedBytes(tensor.name) {
                    if let (file, offset) = source.storedLocation(tensor.name) {
                        try writer.copy(stored, from: file, at: offset)
                    } else {
                        try writer.write(stored)
                    }
                    progress?(index, plan.count, tensor, 0)
                    return
                }
                try writer.write(try source.withValues(tensor.name) { try quantizer.quantize(tensor, $0) })
                let seconds = max(monotonicSeconds() - start, 1e-9)
                progress?(index, plan.count, tensor, Double(tensor.dimensions.reduce(1, *) * 4) / 1e6 / seconds)
            }
        }
    }

    /// The size of the file `write` would make.
    public func fileSize(_ plan: [PlannedTensor]) throws -> Int {
        try GGUFWriter.fileSize(metadata: metadata(), tensors: entries(plan, RoundToNearest(importance: nil, threads: 1), progress: nil))
    }

    /// Writes `plan` to `output` atomically, quantizing with `quantizer`.
    public func write(_ plan: [PlannedTensor], quantizer: TensorQuantizer, to output: String, progress: Progress? = nil) throws {
        try GGUFWriter.write(to: output, metadata: metadata(), tensors: entries(plan, quantizer, progress: progress), late: late)
    }
}
