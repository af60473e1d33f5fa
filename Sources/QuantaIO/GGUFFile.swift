import QuantaCore

/// One tensor's entry in a GGUF file.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// ggml order: `dimensions[0]` is the innermost (row length), as llama.cpp prints it.
    public let dimensions: [Int]
    public let type: GGMLType
    /// Byte offset relative to the start of the data section; a multiple of the alignment.
    public let offset: Int

    public init(name: String, dimensions: [Int], type: GGMLType, offset: Int) {
        self.name = name
        self.dimensions = dimensions
        self.type = type
        self.offset = offset
    }

    public var elementCount: Int { dimensions.reduce(1, *) }
    /// Bytes of the tensor's data (rows of whole blocks).
    public var byteCount: Int { type.byteCount(elements: elementCount) }
}

/// A memory-mapped GGUF file (versions 2 and 3), validated when opened: every count, length
/// and offset is checked against the file before it is used.
public final class GGUFFile: @unchecked Sendable {
    public static let magic: UInt32 = 0x4655_4747  // "GGUF" little-endian
    public static let defaultAlignment = 32
    /// ggml's limits on tensor names and dimensions.
    public static let maximumNameLength = 63
    public static let maximumDimensions = 4

    public let path: String
    public let version: UInt32
    /// Metadata in file order.
    public let metadata: [(key: String, value: GGUFValue)]
    /// Tensor infos in file order.
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// Absolute file offset of the data section.
    public let dataOffset: Int
    private let file: MappedFile
    private let tensorIndex: [String: Int]
    private let metadataIndex: [String: Int]

    public convenience init(path: String) throws {
        try self.init(file: try MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        let path = file.path
        self.path = path
        var reader = ByteReader(file.bytes, path: path)
        let magic = try reader.integer(UInt32.self, "magic")
        guard magic == GGUFFile.magic else {
            let shown = withUnsafeBytes(of: magic.littleEndian) { Array($0) }.map { String(format2: $0) }.joined(separator: " ")
            throw QuantaError.malformed(path, "bad magic \(shown): not a GGUF file")
        }
        version = try reader.integer(UInt32.self, "version")
        guard version == 2 || version == 3 else {
            throw QuantaError.unsupported(path, "GGUF version \(version) is not supported (Quanta reads versions 2 and 3)")
        }
        let tensorCount = try reader.integer(UInt64.self, "tensor count")
        let kvCount = try reader.integer(UInt64.self, "metadata count")
        // The smallest possible entries: a key of 1 byte + type, a tensor of 1 name byte, 1 dim.
        guard kvCount <= UInt64(reader.remaining / 13) else {
            throw QuantaError.malformed(path, "metadata count \(kvCount) cannot fit in the \(reader.remaining) bytes left")
        }
        guard tensorCount <= UInt64((reader.remaining - Int(kvCount) * 13) / 33) else {
            throw QuantaError.malformed(path, "tensor count \(tensorCount) runs past the end of the file "
                                        + "(\(reader.remaining) bytes left)")
        }
        var metadata: [(key: String, value: GGUFValue)] = []
        var metadataIndex: [String: Int] = [:]
        for i in 0..<Int(kvCount) {
            let key = try GGUFFile.string(&reader, "key of metadata entry \(i)")
            guard metadataIndex[key] == nil else {
                throw QuantaError.malformed(path, "duplicate metadata key '\(key)'")
            }
            let rawType = try reader.integer(UInt32.self, "type of '\(key)'")
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw QuantaError.malformed(path, "metadata '\(key)' has unknown value type \(rawType)")
            }
            let value = try GGUFFile.value(&reader, type: type, what: "'\(key)'", depth: 0)
            metadataIndex[key] = metadata.count
            metadata.append((key, value))
        }
        self.metadata = metadata
        self.metadataIndex = metadataIndex

        var alignment = GGUFFile.defaultAlignment
        if let i = metadataIndex["general.alignment"] {
            guard case let .uint32(value) = metadata[i].value, value > 0, value & (value - 1) == 0 else {
                throw QuantaError.malformed(path, "general.alignment must be a u32 power of two, got \(metadata[i].value.summary())")
            }
            alignment = Int(value)
        }
        self.alignment = alignment

        var tensors: [GGUFTensorInfo] = []
        var tensorIndex: [String: Int] = [:]
        for i in 0..<Int(tensorCount) {
            let name = try GGUFFile.string(&reader, "name of tensor \(i)")
            let subject = "\(path): tensor '\(name)'"
            guard name.utf8.count <= GGUFFile.maximumNameLength else {
                throw QuantaError.malformed(subject, "name is \(name.utf8.count) bytes; ggml allows at most \(GGUFFile.maximumNameLength)")
            }
            guard tensorIndex[name] == nil else { throw QuantaError.malformed(path, "duplicate tensor name '\(name)'") }
            let dimensionCount = try reader.integer(UInt32.self, "dimension count of '\(name)'")
            guard dimensionCount >= 1 && dimensionCount <= UInt32(GGUFFile.maximumDimensions) else {
                throw QuantaError.malformed(subject, "has \(dimensionCount) dimensions; ggml allows 1 to \(GGUFFile.maximumDimensions)")
            }
            var dimensions: [Int] = []
            var elements = 1
            for d in 0..<Int(dimensionCount) {
                let extent = try reader.integer(UInt64.self, "dimension \(d) of '\(name)'")
                guard extent <= UInt64(Int64.max) else { throw QuantaError.malformed(subject, "dimension \(d) is \(extent), out of range") }
                let (product, overflow) = elements.multipliedReportingOverflow(by: Int(extent))
                guard !overflow else { throw QuantaError.malformed(subject, "element count overflows") }
                elements = product
                dimensions.append(Int(extent))
            }
            let rawType = try reader.integer(UInt32.self, "type of '\(name)'")
            guard let type = GGMLType(rawValue: rawType) else {
                throw QuantaError.malformed(subject, "unknown tensor type id \(rawType)")
            }
            guard dimensions[0] % type.blockSize == 0 else {
                throw QuantaError.malformed(subject, "row length \(dimensions[0]) is not a multiple of \(type.name)'s block size \(type.blockSize)")
            }
            guard !(elements / type.blockSize).multipliedReportingOverflow(by: type.bytesPerBlock).overflow else {
                throw QuantaError.malformed(subject, "\(elements) elements of \(type.name) overflow a byte count")
            }
            let offset = try reader.integer(UInt64.self, "data offset of '\(name)'")
            guard offset % UInt64(alignment) == 0 else {
                throw QuantaError.malformed(subject, "data offset \(offset) is not a multiple of the alignment \(alignment)")
            }
            guard offset <= UInt64(Int64.max) else { throw QuantaError.malformed(subject, "data offset \(offset) is out of range") }
            tensorIndex[name] = tensors.count
            tensors.append(GGUFTensorInfo(name: name, dimensions: dimensions, type: type, offset: Int(offset)))
        }
        let dataOffset = (reader.offset + alignment - 1) / alignment * alignment
        self.dataOffset = dataOffset
        let dataSize = file.count - min(dataOffset, file.count)
        if !tensors.isEmpty && dataOffset > file.count {
            throw QuantaError.malformed(path, "data section would start at \(dataOffset), past the end of the file (\(file.count) bytes)")
        }
        for tensor in tensors {
            let (end, overflow) = tensor.offset.addingReportingOverflow(tensor.byteCount)
            guard !overflow, end <= dataSize else {
                throw QuantaError.malformed("\(path): tensor '\(tensor.name)'",
                    overflow ? "data at offset \(tensor.offset) of \(tensor.byteCount) bytes runs past the end of the data section (\(dataSize) bytes)"
                        : "data [\(tensor.offset), \(end)) runs past the end of the data section (\(dataSize) bytes)")
            }
        }
        let sorted = tensors.sorted { $0.offset < $1.offset }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.offset + a.byteCount > b.offset {
            throw QuantaError.malformed(path, "tensors '\(a.name)' and '\(b.name)' overlap in the data section")
        }
        self.tensors = tensors
        self.tensorIndex = tensorIndex
    }

    private static func string(_ reader: inout ByteReader, _ what: @autoclosure () -> String) throws -> String {
        let length = try reader.integer(UInt64.self, "length of \(what())")
        guard length <= UInt64(reader.remaining) else {
            throw QuantaError.malformed(reader.path, "string length \(length) of \(what()) at offset \(reader.offset - 8) "
                                        + "overflows the file (\(reader.remaining) bytes left)")
        }
        let raw = try reader.slice(Int(length), what())
        guard let text = decodeUTF8(raw) else {
            throw QuantaError.malformed(reader.path, "\(what()) at offset \(reader.offset - Int(length)) is not valid UTF-8")
        }
        return text
    }

    private static func value(_ reader: inout ByteReader, type: GGUFValueType, what: @autoclosure () -> String, depth: Int) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try reader.integer(UInt8.self, what()))
        case .int8: return .int8(try reader.integer(Int8.self, what()))
        case .uint16: return .uint16(try reader.integer(UInt16.self, what()))
        case .int16: return .int16(try reader.integer(Int16.self, what()))
        case .uint32: return .uint32(try reader.integer(UInt32.self, what()))
        case .int32: return .int32(try reader.integer(Int32.self, what()))
        case .uint64: return .uint64(try reader.integer(UInt64.self, what()))
        case .int64: return .int64(try reader.integer(Int64.self, what()))
        case .float32: return .float32(try reader.float(what()))
        case .float64: return .float64(try reader.double(what()))
        case .bool:
            let byte = try reader.integer(UInt8.self, what())
            guard byte <= 1 else { throw QuantaError.malformed(reader.path, "\(what()) is a bool with byte value \(byte), not 0 or 1") }
            return .bool(byte == 1)
        case .string: return .string(try string(&reader, what()))
        case .array:
            guard depth < 8 else { throw QuantaError.malformed(reader.path, "\(what()) nests arrays deeper than 8 levels") }
            let rawType = try reader.integer(UInt32.self, "element type of \(what())")
            guard let elementType = GGUFValueType(rawValue: rawType) else {
                throw QuantaError.malformed(reader.path, "\(what()) is an array of unknown value type \(rawType)")
            }
            let count = try reader.integer(UInt64.self, "length of \(what())")
            guard count <= UInt64(reader.remaining / elementType.minimumSize) else {
                throw QuantaError.malformed(reader.path, "array \(what()) claims \(count) elements of \(elementType.name), "
                                            + "more than the \(reader.remaining) bytes left can hold")
            }
            var elements: [GGUFValue] = []
            elements.reserveCapacity(Int(count))
            for i in 0..<Int(count) {
                if let element = element(&reader, type: elementType) {
                    elements.append(element)
                } else {  // The general path, to throw its error for this element.
                    elements.append(try value(&reader, type: elementType, what: "\(what())[\(i)]", depth: depth + 1))
                }
            }
            return .array(elementType, elements)
        }
    }

    /// One array element of a scalar or string type read without naming it (a vocabulary has
    /// tens of thousands), or nil, with `reader` unmoved, for nested arrays and any element
    /// `value` would refuse.
    private static func element(_ reader: inout ByteReader, type: GGUFValueType) -> GGUFValue? {
        switch type {
        case .uint8: return reader.take(UInt8.self).map { .uint8($0) }
        case .int8: return reader.take(Int8.self).map { .int8($0) }
        case .uint16: return reader.take(UInt16.self).map { .uint16($0) }
        case .int16: return reader.take(Int16.self).map { .int16($0) }
        case .uint32: return reader.take(UInt32.self).map { .uint32($0) }
        case .int32: return reader.take(Int32.self).map { .int32($0) }
        case .uint64: return reader.take(UInt64.self).map { .uint64($0) }
        case .int64: return reader.take(Int64.self).map { .int64($0) }
        case .float32: return reader.take(UInt32.self).map { .float32(Float(bitPattern: $0)) }
        case .float64: return reader.take(UInt64.self).map { .float64(Double(bitPattern: $0)) }
        case .bool:
            guard let byte = reader.peek(UInt8.self), byte <= 1 else { return nil }
            reader.take(1)
            return .bool(byte == 1)
        case .string:
            guard let length = reader.peek(UInt64.self), length <= UInt64(reader.remaining - 8) else { return nil }
            let raw = UnsafeRawBufferPointer(rebasing: reader.bytes[(reader.offset + 8)..<(reader.offset + 8 + Int(length))])
            guard let text = decodeUTF8(raw) else { return nil }
            reader.take(8 + raw.count)
            return .string(text)
        case .array: return nil
        }
    }

    /// The metadata value for `key`, or nil.
    public subscript(key: String) -> GGUFValue? {
        metadataIndex[key].map { metadata[$0].value }
    }

    /// The tensor named `name`, or nil when the file has none.
    public func tensor(_ name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    public func info(_ name: String) throws -> GGUFTensorInfo {
        guard let i = tensorIndex[name] else {
            throw QuantaError(.invalidArgument, "\(path): tensor '\(name)'", "no such tensor in the file")
        }
        return tensors[i]
    }

    /// The tensor's stored bytes, straight from the map.
    public func rawBytes(_ name: String) throws -> UnsafeRawBufferPointer {
        try rawBytes(info(name))
    }

    /// Drops the tensor's pages from resident memory (see `MappedFile.release`).
    public func release(_ info: GGUFTensorInfo) {
        file.release((dataOffset + info.offset)..<(dataOffset + info.offset + info.byteCount))
    }

    public func rawBytes(_ info: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        let start = dataOffset + info.offset
        return UnsafeRawBufferPointer(rebasing: file.bytes[start..<(start + info.byteCount)])
    }
}

extension String {
    /// Two lowercase hex digits.
    init(format2 byte: UInt8) {
        let digits = Array("0123456789abcdef")
        self = String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }
}
