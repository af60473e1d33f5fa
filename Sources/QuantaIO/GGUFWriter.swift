import QuantaCore

/// Writes GGUF v3 files: header, metadata in the given order, tensor infos with offsets laid
/// out in the given order (each tensor's data padded with zeros to the alignment, as ggml and
/// gguf-py pad), then the data, streamed tensor by tensor into a temporary file that is
/// renamed into place at the end.
public enum GGUFWriter {
    /// One tensor to write. `write` must append exactly the tensor's byte count.
    public struct TensorEntry {
        public let name: String
        /// ggml order, innermost first.
        public let dimensions: [Int]
        public let type: GGMLType
        public let write: (AtomicFileWriter) throws -> Void

        public init(name: String, dimensions: [Int], type: GGMLType, write: @escaping (AtomicFileWriter) throws -> Void) {
            self.name = name
            self.dimensions = dimensions
            self.type = type
            self.write = write
        }

        /// An entry whose bytes are already in memory.
        public init(name: String, dimensions: [Int], type: GGMLType, bytes: [UInt8]) {
            self.init(name: name, dimensions: dimensions, type: type) { try $0.write(bytes) }
        }

        public var byteCount: Int {
            type.byteCount(dimensions: dimensions)
        }
    }

    /// Encodes a metadata value (without its type tag).
    static func encode(_ value: GGUFValue, into out: inout ByteWriter) {
        switch value {
        case let .uint8(v): out.integer(v)
        case let .int8(v): out.integer(v)
        case let .uint16(v): out.integer(v)
        case let .int16(v): out.integer(v)
        case let .uint32(v): out.integer(v)
        case let .int32(v): out.integer(v)
        case let .uint64(v): out.integer(v)
        case let .int64(v): out.integer(v)
        case let .float32(v): out.float(v)
        case let .float64(v): out.double(v)
        case let .bool(v): out.integer(UInt8(v ? 1 : 0))
        case let .string(s): encode(string: s, into: &out)
        case let .array(elementType, elements):
            out.integer(elementType.rawValue)
            out.integer(UInt64(elements.count))
            for element in elements { encode(element, into: &out) }
        }
    }

    static func encode(string: String, into out: inout ByteWriter) {
        var string = string
        string.withUTF8 { utf8 in
            out.integer(UInt64(utf8.count))
            out.raw(UnsafeRawBufferPointer(utf8))
        }
    }

    /// Checks that every array's elements have its declared type.
    static func validate(_ value: GGUFValue, key: String) throws {
        guard case let .array(elementType, elements) = value else { return }
        for element in elements {
            guard element.type == elementType else {
                throw QuantaError(.invalidArgument, "metadata '\(key)'",
                                  "array of \(elementType.name) holds a \(element.type.name)")
            }
            try validate(element, key: key)
        }
    }

    /// The encoded header (up to the data section, padded) and the alignment in force.
    static func header(metadata: [(key: String, value: GGUFValue)], tensors: [TensorEntry]) throws -> (bytes: [UInt8], alignment: Int) {
        let (bytes, alignment, _) = try layout(metadata: metadata, tensors: tensors)
        return (bytes, alignment)
    }

    /// The header bytes, the data alignment, and where each metadata value's encoding starts.
    static func layout(metadata: [(key: String, value: GGUFValue)], tensors: [TensorEntry]) throws
        -> (bytes: [UInt8], alignment: Int, valueOffsets: [String: Int]) {
        var valueOffsets: [String: Int] = [:]
        var alignment = GGUFFile.defaultAlignment
        var keys = Set<String>()
        for (key, value) in metadata {
            guard keys.insert(key).inserted else {
                throw QuantaError(.invalidArgument, "metadata '\(key)'", "key given twice")
            }
            try validate(value, key: key)
            if key == "general.alignment" {
                guard case let .uint32(a) = value, a > 0, a & (a - 1) == 0 else {
                    throw QuantaError(.invalidArgument, "metadata 'general.alignment'", "must be a u32 power of two")
                }
                alignment = Int(a)
            }
        }
        var names = Set<String>()
        var header = ByteWriter()
        header.integer(GGUFFile.magic)
        header.integer(UInt32(3))
        header.integer(UInt64(tensors.count))
        header.integer(UInt64(metadata.count))
        for (key, value) in metadata {
            encode(string: key, into: &header)
            header.integer(value.type.rawValue)
            valueOffsets[key] = header.bytes.count
            encode(value, into: &header)
        }
        var offset = 0
        for tensor in tensors {
            guard names.insert(tensor.name).inserted else {
                throw QuantaError(.invalidArgument, "tensor '\(tensor.name)'", "name given twice")
            }
            guard tensor.name.utf8.count <= GGUFFile.maximumNameLength else {
                throw QuantaError(.invalidArgument, "tensor '\(tensor.name)'",
                                  "name is \(tensor.name.utf8.count) bytes; ggml allows at most \(GGUFFile.maximumNameLength)")
            }
            guard !tensor.dimensions.isEmpty, tensor.dimensions.count <= GGUFFile.maximumDimensions,
                  tensor.dimensions[0] % tensor.type.blockSize == 0 else {
                throw QuantaError(.invalidArgument, "tensor '\(tensor.name)'",
                                  "dimensions \(tensor.dimensions) do not suit \(tensor.type.name)")
            }
            encode(string: tensor.name, into: &header)
            header.integer(UInt32(tensor.dimensions.count))
            for d in tensor.dimensions { header.integer(UInt64(d)) }
            header.integer(tensor.type.rawValue)
            header.integer(UInt64(offset))
            offset += padded(tensor.byteCount, alignment)
        }
        header.zeros(padded(header.bytes.count, alignment) - header.bytes.count)
        return (header.bytes, alignment, valueOffsets)
    }

    /// The size in bytes of the file `write` would produce.
    public static func fileSize(metadata: [(key: String, value: GGUFValue)], tensors: [TensorEntry]) throws -> Int {
        let (bytes, alignment) = try header(metadata: metadata, tensors: tensors)
        return bytes.count + tensors.reduce(0) { $0 + padded($1.byteCount, alignment) }
    }

    /// Writes a GGUF v3 file to `path` atomically. Tensor data is produced one tensor at a
    /// time by each entry's `write`, so only one tensor needs to be in memory.
    /// `late`, called once every tensor is written, gives final values for metadata keys known
    /// only then (what the quantizer did); each must have its placeholder's type and encoded size.
    public static func write(to path: String, metadata: [(key: String, value: GGUFValue)],
                             tensors: [TensorEntry], late: (() -> [(key: String, value: GGUFValue)])? = nil) throws {
        let (header, alignment, valueOffsets) = try layout(metadata: metadata, tensors: tensors)
        let writer = try AtomicFileWriter(path: path)
        do {
            try writer.write(header)
            for tensor in tensors {
                try writer.append(tensor.name, expected: tensor.byteCount, tensor.write)
                try writer.writeZeros(padded(tensor.byteCount, alignment) - tensor.byteCount)
            }
            for (key, value) in late?() ?? [] {
                guard let at = valueOffsets[key], let placeholder = metadata.first(where: { $0.key == key })?.value else {
                    throw QuantaError(.invalidArgument, "metadata '\(key)'", "has no placeholder in the header")
                }
                var old = ByteWriter(), new = ByteWriter()
                encode(placeholder, into: &old)
                encode(value, into: &new)
                guard placeholder.type == value.type, old.bytes.count == new.bytes.count else {
                    throw QuantaError(.invalidArgument, "metadata '\(key)'", "final value does not fit its placeholder")
                }
                try writer.overwrite(at: at, new.bytes)
            }
            try writer.commit()
        } catch {
            writer.abandon()
            throw error
        }
    }

    /// Rewrites `file` unchanged to `path` (metadata, tensor order and data as read).
    public static func copy(_ file: GGUFFile, to path: String) throws {
        let entries = file.tensors.map { info in
            TensorEntry(name: info.name, dimensions: info.dimensions, type: info.type) { try $0.write(file.rawBytes(info)) }
        }
        try write(to: path, metadata: file.metadata, tensors: entries)
    }

    static func padded(_ count: Int, _ alignment: Int) -> Int {
        (count + alignment - 1) / alignment * alignment
    }
}
