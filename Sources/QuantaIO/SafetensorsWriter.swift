import QuantaCore

/// Writes safetensors files byte for byte as the reference implementation does: tensors
/// ordered by dtype (widest first, the reference's dtype order) then by name, a compact JSON
/// header with `__metadata__` first (keys sorted), padded with spaces to a multiple of 8 bytes.
/// The file appears atomically (temporary file + rename).
public enum SafetensorsWriter {
    /// One tensor to write: `shape` elements of `dtype`, produced in little-endian order by
    /// `write` (which must append exactly `byteCount` bytes) when the data section is written.
    public struct Entry {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        public let byteCount: Int
        public let write: (AtomicFileWriter) throws -> Void

        /// An entry produced on demand (streamed).
        public init(name: String, dtype: DType, shape: [Int], write: @escaping (AtomicFileWriter) throws -> Void) throws {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.byteCount = try Tensor<UInt8>.elementCount(shape) * dtype.byteSize
            self.write = write
        }

        /// An entry whose bytes are in memory.
        public init(name: String, dtype: DType, shape: [Int], data: [UInt8]) throws {
            try self.init(name: name, dtype: dtype, shape: shape) { try $0.write(data) }
            guard data.count == byteCount else {
                throw QuantaError(.invalidArgument, "tensor '\(name)'",
                                  "shape \(shape) of \(dtype.rawValue) needs \(byteCount) bytes, got \(data.count)")
            }
        }

        /// An F32 entry from fp32 values.
        public init(name: String, tensor: Tensor<Float>) throws {
            try self.init(name: name, dtype: .f32, shape: tensor.shape, data: float32Bytes(tensor.storage))
        }
    }

    /// The header bytes (8-byte length + padded JSON) and the entries in file order.
    public static func layout(_ entries: [Entry], metadata: [String: String]?) throws -> (header: [UInt8], ordered: [Entry]) {
        var seen = Set<String>()
        for entry in entries where !seen.insert(entry.name).inserted {
            throw QuantaError(.invalidArgument, "tensor '\(entry.name)'", "name given twice")
        }
        if seen.contains("__metadata__") {
            throw QuantaError(.invalidArgument, "tensor '__metadata__'", "name is reserved")
        }
        let ordered = entries.sorted { $0.dtype.rank != $1.dtype.rank ? $0.dtype.rank > $1.dtype.rank : $0.name < $1.name }
        var members: [(String, JSONValue)] = []
        if let metadata {
            members.append(("__metadata__", .object(metadata.keys.sorted().map { ($0, .string(metadata[$0]!)) })))
        }
        var offset: Int64 = 0
        for entry in ordered {
            let end = offset + Int64(entry.byteCount)
            members.append((entry.name, .object([
                ("dtype", .string(entry.dtype.rawValue)),
                ("shape", .array(entry.shape.map { .integer(Int64($0)) })),
                ("data_offsets", .array([.integer(offset), .integer(end)])),
            ])))
            offset = end
        }
        var json = Array(JSONValue.object(members).serialized().utf8)
        json.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - json.count % 8) % 8))
        var header = ByteWriter()
        header.integer(UInt64(json.count))
        header.raw(json)
        return (header.bytes, ordered)
    }

    /// Writes `entries` to `path` atomically, one tensor's data at a time.
    public static func write(_ entries: [Entry], metadata: [String: String]? = nil, to path: String) throws {
        let (header, ordered) = try layout(entries, metadata: metadata)
        let writer = try AtomicFileWriter(path: path)
        do {
            try writer.write(header)
            for entry in ordered { try writer.append(entry.name, expected: entry.byteCount, entry.write) }
            try writer.commit()
        } catch {
            writer.abandon()
            throw error
        }
    }
}

/// fp32 values as little-endian bytes.
public func float32Bytes(_ values: [Float]) -> [UInt8] {
    // Every platform Quanta builds for is little-endian, so the in-memory bytes are the file's.
    values.withUnsafeBytes { Array($0) }
}
