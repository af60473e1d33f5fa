import QuantaCore

/// Writes safetensors files byte for byte as the reference implementation does: tensors
/// ordered by dtype (widest first, the reference's dtype order) then by name, a compact JSON
/// header with `__metadata__` first (keys sorted), padded with spaces to a multiple of 8 bytes.
/// The file appears atomically (temporary file + rename).
public enum SafetensorsWriter {
    /// One tensor to write: `data` holds `shape` elements of `dtype` in little-endian order.
    public struct Entry {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        public let data: [UInt8]

        public init(name: String, dtype: DType, shape: [Int], data: [UInt8]) throws {
            let expected = try Tensor<UInt8>.elementCount(shape) * dtype.byteSize
            guard data.count == expected else {
                throw QuantaError(.invalidArgument, "tensor '\(name)'",
                                  "shape \(shape) of \(dtype.rawValue) needs \(expected) bytes, got \(data.count)")
            }
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.data = data
        }

        /// An F32 entry from fp32 values.
        public init(name: String, tensor: Tensor<Float>) throws {
            var bytes = [UInt8](repeating: 0, count: tensor.count * 4)
            bytes.withUnsafeMutableBytes { out in
                for (i, v) in tensor.storage.enumerated() { out.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self) }
            }
            try self.init(name: name, dtype: .f32, shape: tensor.shape, data: bytes)
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
            let end = offset + Int64(entry.data.count)
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

    /// Writes `entries` to `path` atomically.
    public static func write(_ entries: [Entry], metadata: [String: String]? = nil, to path: String) throws {
        let (header, ordered) = try layout(entries, metadata: metadata)
        let writer = try AtomicFileWriter(path: path)
        try writer.write(header)
        for entry in ordered { try writer.write(entry.data) }
        try writer.commit()
    }
}
