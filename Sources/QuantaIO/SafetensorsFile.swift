import QuantaCore

/// Where one tensor lives in a safetensors file.
public struct SafetensorsTensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    /// Row-major shape, outermost first (torch layout: `[out_features, in_features]`).
    public let shape: [Int]
    /// Byte range relative to the start of the data area.
    public let dataRange: Range<Int>

    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { dataRange.count }
}

/// A memory-mapped safetensors file, fully validated when opened.
///
/// Checks: header length below 100 MB and inside the file; header valid UTF-8 and valid JSON
/// without duplicate keys; every dtype known; `shape x dtype size` equal to the byte span;
/// spans inside the data area, non-overlapping and covering it without gaps;
/// `__metadata__` a map of strings.
public final class SafetensorsFile: @unchecked Sendable {
    /// Header lengths at or above this are refused (the reference implementation's limit).
    public static let maximumHeaderLength = 100_000_000

    public let path: String
    /// Tensors in file order (ascending data offset).
    public let tensors: [SafetensorsTensorInfo]
    /// The `__metadata__` map, in file order.
    public let metadata: [(String, String)]
    private let file: MappedFile
    private let dataStart: Int
    private let index: [String: Int]

    public convenience init(path: String) throws {
        try self.init(file: try MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        self.path = file.path
        let path = file.path
        let bytes = file.bytes
        guard bytes.count >= 8 else {
            throw QuantaError.malformed(path, "file is \(bytes.count) bytes, too short for the 8-byte header length")
        }
        let headerLength = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard headerLength < UInt64(SafetensorsFile.maximumHeaderLength) else {
            throw QuantaError.malformed(path, "header length \(headerLength) exceeds the 100 MB limit")
        }
        guard Int(headerLength) <= bytes.count - 8 else {
            throw QuantaError.malformed(path, "header length \(headerLength) runs past the end of the file "
                                        + "(\(bytes.count) bytes)")
        }
        let header = UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + Int(headerLength))])
        if let bad = firstInvalidUTF8(header) {
            throw QuantaError.malformed(path, "header is not valid UTF-8 (byte \(8 + bad))")
        }
        guard header.first == UInt8(ascii: "{") else {
            throw QuantaError.malformed(path, "header does not start with '{'")
        }
        let json: JSONValue
        do {
            json = try JSONParser.parse(header)
        } catch {
            throw QuantaError.malformed(path, "header is not valid JSON: \(error.reason) at byte \(8 + error.offset)")
        }
        guard case let .object(members) = json else {
            throw QuantaError.malformed(path, "header is not a JSON object")
        }
        dataStart = 8 + Int(headerLength)
        let dataSize = bytes.count - dataStart
        var metadata: [(String, String)] = []
        var tensors: [SafetensorsTensorInfo] = []
        for (name, value) in members {
            if name == "__metadata__" {
                guard case let .object(entries) = value else {
                    throw QuantaError.malformed(path, "__metadata__ is not a JSON object")
                }
                for (key, entry) in entries {
                    guard let text = entry.stringValue else {
                        throw QuantaError.malformed(path, "__metadata__ value of '\(key)' is not a string")
                    }
                    metadata.append((key, text))
                }
                continue
            }
            tensors.append(try SafetensorsFile.tensorInfo(name: name, value: value, path: path))
        }
        tensors.sort { ($0.dataRange.lowerBound, $0.dataRange.upperBound) < ($1.dataRange.lowerBound, $1.dataRange.upperBound) }
        var covered = 0
        var previous: String?
        for tensor in tensors {
            let range = tensor.dataRange
            if range.lowerBound < covered, let previous {
                throw QuantaError.malformed(path, "tensors '\(previous)' and '\(tensor.name)' overlap "
                                            + "(byte \(range.lowerBound) of the data area is used twice)")
            }
            if range.lowerBound > covered {
                throw QuantaError.malformed(path, "gap in the data area: bytes \(covered)..<\(range.lowerBound) "
                                            + "belong to no tensor")
            }
            if range.upperBound > dataSize {
                throw QuantaError.malformed(path, "tensor '\(tensor.name)' ends at byte \(range.upperBound), "
                                            + "past the data area of \(dataSize) bytes")
            }
            covered = max(covered, range.upperBound)
            if !range.isEmpty { previous = tensor.name }
        }
        if covered != dataSize {
            throw QuantaError.malformed(path, "data area has \(dataSize) bytes but the tensors cover \(covered)")
        }
        self.tensors = tensors
        self.metadata = metadata
        self.index = Dictionary(uniqueKeysWithValues: tensors.enumerated().map { ($1.name, $0) })
    }

    private static func tensorInfo(name: String, value: JSONValue, path: String) throws -> SafetensorsTensorInfo {
        let subject = "\(path): tensor '\(name)'"
        guard case .object = value else { throw QuantaError.malformed(subject, "entry is not a JSON object") }
        guard let dtypeName = value["dtype"]?.stringValue else {
            throw QuantaError.malformed(subject, "missing string field 'dtype'")
        }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw QuantaError.malformed(subject, "unknown dtype '\(dtypeName)'")
        }
        guard let shapeValues = value["shape"]?.arrayValue else {
            throw QuantaError.malformed(subject, "missing array field 'shape'")
        }
        var shape: [Int] = []
        for extent in shapeValues {
            guard let e = extent.intValue, e >= 0 else {
                throw QuantaError.malformed(subject, "shape holds \(extent.serialized()), not a non-negative integer")
            }
            shape.append(e)
        }
        guard let offsets = value["data_offsets"]?.arrayValue, offsets.count == 2,
              let begin = offsets[0].intValue, let end = offsets[1].intValue, begin >= 0, end >= 0 else {
            throw QuantaError.malformed(subject, "data_offsets must be two non-negative integers [begin, end]")
        }
        guard begin <= end else {
            throw QuantaError.malformed(subject, "data_offsets [\(begin), \(end)] end before they begin")
        }
        var bytes = dtype.byteSize
        for extent in shape {
            let (product, overflow) = bytes.multipliedReportingOverflow(by: extent)
            guard !overflow else { throw QuantaError.malformed(subject, "shape \(shape) overflows") }
            bytes = product
        }
        guard bytes == end - begin else {
            throw QuantaError.malformed(subject, "shape \(shape) of \(dtype.rawValue) needs \(bytes) bytes "
                                        + "but data_offsets span \(end - begin)")
        }
        return SafetensorsTensorInfo(name: name, dtype: dtype, shape: shape, dataRange: begin..<end)
    }

    /// The tensor named `name`, or a `.notFound`-free `.invalidArgument` error naming it.
    public func info(_ name: String) throws -> SafetensorsTensorInfo {
        guard let i = index[name] else {
            throw QuantaError(.invalidArgument, "\(path): tensor '\(name)'", "no such tensor in the file")
        }
        return tensors[i]
    }

    public func contains(_ name: String) -> Bool { index[name] != nil }

    /// The tensor's bytes, straight from the map (valid while this object lives).
    public func rawBytes(_ name: String) throws -> UnsafeRawBufferPointer {
        let info = try info(name)
        return UnsafeRawBufferPointer(rebasing: file.bytes[(dataStart + info.dataRange.lowerBound)..<(dataStart + info.dataRange.upperBound)])
    }

    /// Drops the tensor's pages from resident memory (see `MappedFile.release`).
    public func release(_ name: String) {
        guard let info = try? info(name) else { return }
        file.release((dataStart + info.dataRange.lowerBound)..<(dataStart + info.dataRange.upperBound))
    }

    /// An F32, F16, BF16 or F64 tensor as fp32 values.
    public func floatTensor(_ name: String) throws -> Tensor<Float> {
        let info = try info(name)
        guard info.dtype.isFloatingPoint else {
            throw QuantaError(.unsupported, "\(path): tensor '\(name)'",
                              "dtype \(info.dtype.rawValue) is not a floating-point type; read it as integers")
        }
        let raw = try rawBytes(name)
        let count = info.elementCount
        var values = [Float](repeating: 0, count: count)
        values.withUnsafeMutableBufferPointer { out in
            let dst = out.baseAddress!
            switch info.dtype {
            case .f32:
                if count > 0 { _ = memcpy(dst, raw.baseAddress!, count * 4) }
            case .f16, .bf16:
                let halves = UnsafeMutablePointer<UInt16>.allocate(capacity: max(count, 1))
                defer { halves.deallocate() }
                if count > 0 { _ = memcpy(halves, raw.baseAddress!, count * 2) }
                for i in 0..<count { halves[i] = UInt16(littleEndian: halves[i]) }
                if info.dtype == .f16 {
                    HalfConversion.f16ToFloat(halves, dst, count: count)
                } else {
                    HalfConversion.bf16ToFloat(halves, dst, count: count)
                }
            case .f64:
                for i in 0..<count {
                    dst[i] = Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))))
                }
            default: break
            }
        }
        return try Tensor(shape: info.shape, storage: values)
    }

    /// An integer tensor (I8, U8, I16, U16, I32, U32, I64, U64, BOOL) as raw values of type `T`,
    /// which must have the dtype's width and signedness.
    public func integerTensor<T: FixedWidthInteger & Sendable>(_ name: String, as _: T.Type = T.self) throws -> Tensor<T> {
        let info = try info(name)
        let expected: DType? = switch (T.bitWidth, T.isSigned) {
        case (8, true): .i8
        case (8, false): info.dtype == .bool ? .bool : .u8
        case (16, true): .i16
        case (16, false): .u16
        case (32, true): .i32
        case (32, false): .u32
        case (64, true): .i64
        case (64, false): .u64
        default: nil
        }
        guard info.dtype == expected else {
            throw QuantaError(.unsupported, "\(path): tensor '\(name)'",
                              "dtype \(info.dtype.rawValue) cannot be read as \(T.self)")
        }
        let raw = try rawBytes(name)
        let values = (0..<info.elementCount).map { T(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self)) }
        return try Tensor(shape: info.shape, storage: values)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
