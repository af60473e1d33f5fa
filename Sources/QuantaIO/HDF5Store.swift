import CHDF5
import QuantaCore

/// Element types an HDF5 dataset of Quanta can hold.
public enum HDF5ElementType: String, Sendable {
    case float32, float64, int64
}

/// An attribute value stored on a dataset.
public enum HDF5Attribute: Equatable, Sendable {
    case string(String)
    case int64(Int64)
    case float64(Double)
}

/// A dataset's description as read from a file.
public struct HDF5DatasetInfo: Sendable, Equatable {
    public let name: String
    public let type: HDF5ElementType
    public let shape: [Int]
    public var elementCount: Int { shape.reduce(1, *) }
}

/// Typed element access for `HDF5Store`.
public protocol HDF5Element: Sendable {
    static var hdf5Type: HDF5ElementType { get }
}
extension Float: HDF5Element { public static var hdf5Type: HDF5ElementType { .float32 } }
extension Double: HDF5Element { public static var hdf5Type: HDF5ElementType { .float64 } }
extension Int64: HDF5Element { public static var hdf5Type: HDF5ElementType { .int64 } }

/// A flat store of named datasets in one HDF5 file: float32, float64 or int64 arrays of any
/// rank, chunked and deflate-compressed, each with string/integer/float attributes.
///
/// A store opened for writing goes to a temporary file that `close()` renames into place;
/// one opened for reading is read-only. Not thread-safe: use one store per thread.
public final class HDF5Store {
    public enum Mode { case read, create }

    public let path: String
    private let temporaryPath: String?
    private var file: hid_t

    public init(path: String, mode: Mode) throws {
        quanta_H5_silence_errors()
        self.path = path
        switch mode {
        case .read:
            guard FileSystem.kind(of: path) == .file else { throw QuantaError(.notFound, path, "no such file") }
            guard H5Fis_hdf5(path) > 0 else { throw QuantaError.malformed(path, "not an HDF5 file") }
            file = H5Fopen(path, quanta_H5F_ACC_RDONLY(), quanta_H5P_DEFAULT())
            temporaryPath = nil
        case .create:
            let temporary = path + ".tmp-\(getpid())"
            file = H5Fcreate(temporary, quanta_H5F_ACC_TRUNC(), quanta_H5P_DEFAULT(), quanta_H5P_DEFAULT())
            temporaryPath = temporary
        }
        guard file >= 0 else { throw QuantaError(.io, path, "HDF5 cannot open the file") }
    }

    /// Closes the file; a store being created is renamed onto `path` only now.
    public func close() throws {
        guard file >= 0 else { return }
        let status = H5Fclose(file)
        file = -1
        guard status >= 0 else { throw QuantaError(.io, path, "HDF5 failed to close the file") }
        if let temporaryPath {
            guard rename(temporaryPath, path) == 0 else {
                unlink(temporaryPath)
                throw QuantaError(.io, path, "cannot rename the finished file into place")
            }
        }
    }

    deinit {
        if file >= 0 {
            H5Fclose(file)
            if let temporaryPath { unlink(temporaryPath) }
        }
    }

    private static func memoryType(_ type: HDF5ElementType) -> hid_t {
        switch type {
        case .float32: quanta_H5T_NATIVE_FLOAT()
        case .float64: quanta_H5T_NATIVE_DOUBLE()
        case .int64: quanta_H5T_NATIVE_INT64()
        }
    }

    private static func fileType(_ type: HDF5ElementType) -> hid_t {
        switch type {
        case .float32: quanta_H5T_IEEE_F32LE()
        case .float64: quanta_H5T_IEEE_F64LE()
        case .int64: quanta_H5T_STD_I64LE()
        }
    }

    /// Writes `values` (row-major, `shape.product` elements) as dataset `name`, chunked by
    /// rows of about 1 MiB and compressed with shuffle + deflate at `compression` (0-9; 0 = off).
    public func write<T: HDF5Element>(_ name: String, _ values: [T], shape: [Int], compression: Int = 4,
                                      attributes: [(String, HDF5Attribute)] = []) throws {
        let subject = "\(path): dataset '\(name)'"
        guard temporaryPath != nil else { throw QuantaError(.invalidArgument, subject, "store is open for reading") }
        guard !name.isEmpty, !name.contains("/") else { throw QuantaError(.invalidArgument, subject, "name must be non-empty without '/'") }
        guard try Tensor<T>.elementCount(shape) == values.count, !shape.isEmpty else {
            throw QuantaError(.invalidArgument, subject, "shape \(shape) does not hold \(values.count) values")
        }
        guard H5Lexists(file, name, quanta_H5P_DEFAULT()) <= 0 else { throw QuantaError(.invalidArgument, subject, "already exists") }
        var dims = shape.map { hsize_t($0) }
        let space = H5Screate_simple(Int32(shape.count), &dims, nil)
        defer { H5Sclose(space) }
        let properties = H5Pcreate(quanta_H5P_DATASET_CREATE())
        defer { H5Pclose(properties) }
        if values.count > 0 {
            var chunk = dims
            let rowElements = shape.dropFirst().reduce(1, *)
            chunk[0] = hsize_t(max(1, min(shape[0], (1 << 18) / max(rowElements, 1))))
            for i in 1..<chunk.count where chunk[i] == 0 { chunk[i] = 1 }
            H5Pset_chunk(properties, Int32(chunk.count), &chunk)
            if compression > 0 {
                H5Pset_shuffle(properties)
                H5Pset_deflate(properties, UInt32(min(compression, 9)))
            }
        }
        let dataset = H5Dcreate2(file, name, HDF5Store.fileType(T.hdf5Type), space,
                                 quanta_H5P_DEFAULT(), properties, quanta_H5P_DEFAULT())
        guard dataset >= 0 else { throw QuantaError(.io, subject, "HDF5 cannot create the dataset") }
        defer { H5Dclose(dataset) }
        if values.count > 0 {
            let status = values.withUnsafeBytes {
                H5Dwrite(dataset, HDF5Store.memoryType(T.hdf5Type), quanta_H5S_ALL(), quanta_H5S_ALL(), quanta_H5P_DEFAULT(), $0.baseAddress)
            }
            guard status >= 0 else { throw QuantaError(.io, subject, "HDF5 failed to write the data") }
        }
        for (key, value) in attributes { try setAttribute(dataset, key, value, subject: subject) }
    }

    private func setAttribute(_ object: hid_t, _ key: String, _ value: HDF5Attribute, subject: String) throws {
        let space = H5Screate(H5S_SCALAR)
        defer { H5Sclose(space) }
        var status: herr_t = -1
        switch value {
        case let .string(text):
            let type = H5Tcopy(quanta_H5T_C_S1())
            defer { H5Tclose(type) }
            let bytes = Array(text.utf8)
            H5Tset_size(type, max(bytes.count, 1))
            H5Tset_cset(type, H5T_CSET_UTF8)
            let attribute = H5Acreate2(object, key, type, space, quanta_H5P_DEFAULT(), quanta_H5P_DEFAULT())
            guard attribute >= 0 else { break }
            defer { H5Aclose(attribute) }
            let padded = bytes.isEmpty ? [UInt8(0)] : bytes
            status = padded.withUnsafeBytes { H5Awrite(attribute, type, $0.baseAddress) }
        case let .int64(number):
            var v = number
            let attribute = H5Acreate2(object, key, quanta_H5T_STD_I64LE(), space, quanta_H5P_DEFAULT(), quanta_H5P_DEFAULT())
            guard attribute >= 0 else { break }
            defer { H5Aclose(attribute) }
            status = H5Awrite(attribute, quanta_H5T_NATIVE_INT64(), &v)
        case let .float64(number):
            var v = number
            let attribute = H5Acreate2(object, key, quanta_H5T_IEEE_F64LE(), space, quanta_H5P_DEFAULT(), quanta_H5P_DEFAULT())
            guard attribute >= 0 else { break }
            defer { H5Aclose(attribute) }
            status = H5Awrite(attribute, quanta_H5T_NATIVE_DOUBLE(), &v)
        }
        guard status >= 0 else { throw QuantaError(.io, subject, "HDF5 failed to write attribute '\(key)'") }
    }

    /// Names of the datasets at the root, sorted.
    public func datasetNames() throws -> [String] {
        var info = H5G_info_t()
        guard H5Gget_info(file, &info) >= 0 else { throw QuantaError.malformed(path, "cannot read the root group") }
        var names: [String] = []
        for i in 0..<info.nlinks {
            let length = H5Lget_name_by_idx(file, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, quanta_H5P_DEFAULT())
            guard length >= 0 else { continue }
            var buffer = [CChar](repeating: 0, count: Int(length) + 1)
            H5Lget_name_by_idx(file, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buffer, buffer.count, quanta_H5P_DEFAULT())
            let name = String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            var objectInfo = H5O_info_t()
            if H5Oget_info_by_name2(file, name, &objectInfo, UInt32(H5O_INFO_BASIC), quanta_H5P_DEFAULT()) >= 0,
               objectInfo.type == H5O_TYPE_DATASET {
                names.append(name)
            }
        }
        return names
    }

    private func open(_ name: String) throws -> hid_t {
        guard H5Lexists(file, name, quanta_H5P_DEFAULT()) > 0 else {
            throw QuantaError(.invalidArgument, "\(path): dataset '\(name)'", "no such dataset")
        }
        let dataset = H5Dopen2(file, name, quanta_H5P_DEFAULT())
        guard dataset >= 0 else { throw QuantaError.malformed("\(path): dataset '\(name)'", "HDF5 cannot open it") }
        return dataset
    }

    /// Type and shape of dataset `name`.
    public func info(_ name: String) throws -> HDF5DatasetInfo {
        let dataset = try open(name)
        defer { H5Dclose(dataset) }
        return try info(dataset, name: name)
    }

    private func info(_ dataset: hid_t, name: String) throws -> HDF5DatasetInfo {
        let subject = "\(path): dataset '\(name)'"
        let type = H5Dget_type(dataset)
        defer { H5Tclose(type) }
        let size = H5Tget_size(type)
        let elementType: HDF5ElementType
        switch (H5Tget_class(type), size) {
        case (H5T_FLOAT, 4): elementType = .float32
        case (H5T_FLOAT, 8): elementType = .float64
        case (H5T_INTEGER, 8) where H5Tget_sign(type) == H5T_SGN_2: elementType = .int64
        default: throw QuantaError.unsupported(subject, "element type is not float32, float64 or int64")
        }
        let space = H5Dget_space(dataset)
        defer { H5Sclose(space) }
        let rank = H5Sget_simple_extent_ndims(space)
        guard rank >= 0 else { throw QuantaError.malformed(subject, "cannot read its shape") }
        var dims = [hsize_t](repeating: 0, count: Int(rank))
        H5Sget_simple_extent_dims(space, &dims, nil)
        return HDF5DatasetInfo(name: name, type: elementType, shape: dims.map { Int($0) })
    }

    /// Reads dataset `name`; its stored type must be `T`'s.
    public func read<T: HDF5Element>(_ name: String, as _: T.Type = T.self) throws -> Tensor<T> {
        let dataset = try open(name)
        defer { H5Dclose(dataset) }
        let info = try info(dataset, name: name)
        guard info.type == T.hdf5Type else {
            throw QuantaError(.invalidArgument, "\(path): dataset '\(name)'", "holds \(info.type.rawValue), not \(T.hdf5Type.rawValue)")
        }
        let count = info.elementCount
        let storage = try [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 {
                let status = H5Dread(dataset, HDF5Store.memoryType(T.hdf5Type), quanta_H5S_ALL(), quanta_H5S_ALL(),
                                     quanta_H5P_DEFAULT(), UnsafeMutableRawPointer(buffer.baseAddress!))
                guard status >= 0 else { throw QuantaError.malformed("\(path): dataset '\(name)'", "HDF5 failed to read the data") }
            }
            initialized = count
        }
        return try Tensor(shape: info.shape, storage: storage)
    }

    /// The attributes of dataset `name`, in creation order... as HDF5 lists them (by name).
    public func attributes(of name: String) throws -> [(String, HDF5Attribute)] {
        let dataset = try open(name)
        defer { H5Dclose(dataset) }
        var objectInfo = H5O_info_t()
        H5Oget_info2(dataset, &objectInfo, UInt32(H5O_INFO_NUM_ATTRS))
        var result: [(String, HDF5Attribute)] = []
        for i in 0..<objectInfo.num_attrs {
            let attribute = H5Aopen_by_idx(dataset, ".", H5_INDEX_NAME, H5_ITER_INC, i, quanta_H5P_DEFAULT(), quanta_H5P_DEFAULT())
            guard attribute >= 0 else { continue }
            defer { H5Aclose(attribute) }
            let length = H5Aget_name(attribute, 0, nil)
            var nameBuffer = [CChar](repeating: 0, count: Int(length) + 1)
            H5Aget_name(attribute, nameBuffer.count, &nameBuffer)
            let key = String(decoding: nameBuffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let type = H5Aget_type(attribute)
            defer { H5Tclose(type) }
            switch H5Tget_class(type) {
            case H5T_STRING:
                let size = H5Tget_size(type)
                var buffer = [UInt8](repeating: 0, count: size)
                H5Aread(attribute, type, &buffer)
                let end = buffer.firstIndex(of: 0) ?? buffer.count
                result.append((key, .string(String(decoding: buffer[..<end], as: UTF8.self))))
            case H5T_INTEGER:
                var v: Int64 = 0
                H5Aread(attribute, quanta_H5T_NATIVE_INT64(), &v)
                result.append((key, .int64(v)))
            case H5T_FLOAT:
                var v: Double = 0
                H5Aread(attribute, quanta_H5T_NATIVE_DOUBLE(), &v)
                result.append((key, .float64(v)))
            default:
                continue
            }
        }
        return result
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
