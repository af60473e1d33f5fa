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

/// A store of named datasets in one HDF5 file, at the root or one level down in groups
/// ("group/dataset"): float32, float64 or int64 arrays of any rank, chunked and
/// deflate-compressed, with string/integer/float attributes on datasets, groups and the root.
///
/// A store opened for writing goes to a temporary file that `close()` renames into place;
/// one opened for reading is read-only. Only hard links are followed: soft and external links
/// are neither listed nor opened. Not thread-safe: use one store per thread.
public final class HDF5Store {
    public enum Mode { case read, create }

    /// Longest group, dataset or attribute name read from a file, in bytes.
    static let maxNameBytes = 4096
    /// Longest string attribute value read from a file, in bytes.
    static let maxStringBytes = 1 << 24

    public let path: String
    private let temporaryPath: String?
    private var slot: TemporaryFiles.Slot?
    private var file: hid_t

    public init(path: String, mode: Mode) throws {
        if let error = quanta_hdf5_load_error() {
            throw QuantaError(.unsupported, path, "HDF5 cannot be loaded (\(String(cString: error))); install it: bash Scripts/setup.sh, or apt-get install libhdf5-dev")
        }
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
            slot = TemporaryFiles.register(file: temporary)
            file = H5Fcreate(temporary, quanta_H5F_ACC_TRUNC(), quanta_H5P_DEFAULT(), quanta_H5P_DEFAULT())
            temporaryPath = temporary
        }
        guard file >= 0 else {
            TemporaryFiles.unregister(slot)
            throw QuantaError(.io, path, "HDF5 cannot open the file")
        }
    }

    /// Closes the file; a store being created is renamed onto `path` only now.
    public func close() throws {
        guard file >= 0 else { return }
        let status = H5Fclose(file)
        file = -1
        guard status >= 0 else { throw QuantaError(.io, path, "HDF5 failed to close the file") }
        defer { TemporaryFiles.unregister(slot) }
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
            TemporaryFiles.unregister(slot)
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

    // MARK: Names

    /// A group or dataset name inside one group: non-empty, no '/', not '.', no NUL.
    private static func isLinkName<S: StringProtocol>(_ name: S) -> Bool {
        !name.isEmpty && name != "." && !name.utf8.contains(UInt8(ascii: "/")) && !name.utf8.contains(0)
    }

    private func datasetSubject(_ name: String) -> String { "\(path): dataset '\(name)'" }
    private func groupSubject(_ name: String) -> String { "\(path): group '\(name)'" }
    private var rootSubject: String { "\(path): root group" }

    /// Splits a dataset path "dataset" or "group/dataset" into its group (nil: the root) and
    /// its name in that group.
    private func splitDatasetPath(_ name: String) throws -> (group: String?, leaf: String) {
        let parts = name.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count <= 2, parts.allSatisfy(HDF5Store.isLinkName) else {
            throw QuantaError(.invalidArgument, datasetSubject(name), "name must be 'dataset' or 'group/dataset', each part non-empty and not '.'")
        }
        return parts.count == 2 ? (String(parts[0]), String(parts[1])) : (nil, name)
    }

    private func checkGroupName(_ name: String) throws {
        guard HDF5Store.isLinkName(name) else {
            throw QuantaError(.invalidArgument, groupSubject(name), "name must be non-empty, without '/' and not '.'")
        }
    }

    /// Keys must be non-empty, without NUL, each given once.
    private static func checkAttributes(_ attributes: [(String, HDF5Attribute)], subject: String) throws {
        var seen = Set<String>()
        for (key, _) in attributes {
            guard !key.isEmpty, !key.utf8.contains(0) else {
                throw QuantaError(.invalidArgument, subject, "attribute key '\(key)' must be non-empty without NUL")
            }
            guard seen.insert(key).inserted else { throw QuantaError(.invalidArgument, subject, "attribute '\(key)' is given twice") }
        }
    }

    /// The kind of object `name` (a valid link name) in `location` names through a hard
    /// link; nil when there is no such link, or it is soft or external.
    private func objectType(_ name: String, in location: hid_t) -> H5O_type_t? {
        guard quanta_H5L_is_hard(location, name) > 0 else { return nil }
        var info = H5O_info_t()
        guard H5Oget_info_by_name2(location, name, &info, UInt32(H5O_INFO_BASIC), quanta_H5P_DEFAULT()) >= 0 else { return nil }
        return info.type
    }

    /// Runs `body` on the root (group nil) or on root group `group`; `missing` when that group
    /// does not exist.
    private func inGroup<R>(_ group: String?, missing: @autoclosure () -> QuantaError, _ body: (hid_t) throws -> R) throws -> R {
        guard let group else { return try body(file) }
        guard HDF5Store.isLinkName(group), objectType(group, in: file) == H5O_TYPE_GROUP else { throw missing() }
        let id = H5Gopen2(file, group, quanta_H5P_DEFAULT())
        guard id >= 0 else { throw QuantaError.malformed(groupSubject(group), "HDF5 cannot open it") }
        defer { H5Gclose(id) }
        return try body(id)
    }

    /// Runs `body` on the root group itself (an object that carries attributes).
    private func inRoot<R>(_ body: (hid_t) throws -> R) throws -> R {
        let root = H5Gopen2(file, "/", quanta_H5P_DEFAULT())
        guard root >= 0 else { throw QuantaError.malformed(rootSubject, "HDF5 cannot open it") }
        defer { H5Gclose(root) }
        return try body(root)
    }

    // MARK: Writing

    /// Writes `values` (row-major, `shape.product` elements) as dataset `name` ("dataset" at the
    /// root, or "group/dataset" in a group made by `createGroup`), chunked by rows of about
    /// 1 MiB and compressed with shuffle + deflate at `compression` (0-9; 0 = off).
    public func write<T: HDF5Element>(_ name: String, _ values: [T], shape: [Int], compression: Int = 4,
                                      attributes: [(String, HDF5Attribute)] = []) throws {
        let subject = datasetSubject(name)
        guard temporaryPath != nil else { throw QuantaError(.invalidArgument, subject, "store is open for reading") }
        let (group, leaf) = try splitDatasetPath(name)
        guard try Tensor<T>.elementCount(shape) == values.count, !shape.isEmpty else {
            throw QuantaError(.invalidArgument, subject, "shape \(shape) does not hold \(values.count) values")
        }
        try HDF5Store.checkAttributes(attributes, subject: subject)
        try inGroup(group, missing: QuantaError(.invalidArgument, subject, "no such group '\(group ?? "")'")) { location in
            guard H5Lexists(location, leaf, quanta_H5P_DEFAULT()) <= 0 else { throw QuantaError(.invalidArgument, subject, "already exists") }
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
            let dataset = H5Dcreate2(location, leaf, HDF5Store.fileType(T.hdf5Type), space,
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
    }

    /// Creates group `name` at the root (non-empty, no '/'), with attributes; error if it exists.
    public func createGroup(_ name: String, attributes: [(String, HDF5Attribute)] = []) throws {
        let subject = groupSubject(name)
        guard temporaryPath != nil else { throw QuantaError(.invalidArgument, subject, "store is open for reading") }
        try checkGroupName(name)
        try HDF5Store.checkAttributes(attributes, subject: subject)
        guard H5Lexists(file, name, quanta_H5P_DEFAULT()) <= 0 else { throw QuantaError(.invalidArgument, subject, "already exists") }
        let group = H5Gcreate2(file, name, quanta_H5P_DEFAULT(), quanta_H5P_DEFAULT(), quanta_H5P_DEFAULT())
        guard group >= 0 else { throw QuantaError(.io, subject, "HDF5 cannot create the group") }
        defer { H5Gclose(group) }
        for (key, value) in attributes { try setAttribute(group, key, value, subject: subject) }
    }

    /// Attributes on the file's root group (write: create mode only; replaces a key that exists).
    public func setRootAttributes(_ attributes: [(String, HDF5Attribute)]) throws {
        let subject = rootSubject
        guard temporaryPath != nil else { throw QuantaError(.invalidArgument, subject, "store is open for reading") }
        for (key, _) in attributes where key.isEmpty || key.utf8.contains(0) {
            throw QuantaError(.invalidArgument, subject, "attribute key '\(key)' must be non-empty without NUL")
        }
        try inRoot { root in
            for (key, value) in attributes {
                if H5Aexists(root, key) > 0, H5Adelete(root, key) < 0 {
                    throw QuantaError(.io, subject, "HDF5 failed to replace attribute '\(key)'")
                }
                try setAttribute(root, key, value, subject: subject)
            }
        }
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

    // MARK: Listing

    /// Names of the datasets at the root, sorted.
    public func datasetNames() throws -> [String] {
        try children(of: file, subject: path, what: "the root group", type: H5O_TYPE_DATASET)
    }

    /// Sorted names of the groups at the root.
    public func groupNames() throws -> [String] {
        try children(of: file, subject: path, what: "the root group", type: H5O_TYPE_GROUP)
    }

    /// Sorted names of the datasets inside group `group`.
    public func datasetNames(in group: String) throws -> [String] {
        let subject = groupSubject(group)
        return try inGroup(group, missing: QuantaError(.invalidArgument, subject, "no such group")) { location in
            try children(of: location, subject: subject, what: "the group", type: H5O_TYPE_DATASET)
        }
    }

    /// The names of the objects of kind `type` that `location` holds through hard links, in
    /// HDF5's name order (sorted by bytes). Each name is checked before it sizes a buffer.
    private func children(of location: hid_t, subject: String, what: String, type wanted: H5O_type_t) throws -> [String] {
        var info = H5G_info_t()
        guard H5Gget_info(location, &info) >= 0 else { throw QuantaError.malformed(subject, "cannot read \(what)") }
        var names: [String] = []
        for i in 0..<info.nlinks {
            let hard = quanta_H5L_is_hard_by_idx(location, i)
            guard hard >= 0 else { throw QuantaError.malformed(subject, "cannot read link \(i) of \(what)") }
            guard hard == 1 else { continue }
            let length = H5Lget_name_by_idx(location, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, quanta_H5P_DEFAULT())
            guard length > 0, length <= HDF5Store.maxNameBytes else {
                throw QuantaError.malformed(subject, "link \(i) of \(what) has a name of \(length) bytes (1...\(HDF5Store.maxNameBytes) allowed)")
            }
            var buffer = [CChar](repeating: 0, count: Int(length) + 1)
            guard H5Lget_name_by_idx(location, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buffer, buffer.count, quanta_H5P_DEFAULT()) == length,
                  let name = String(validating: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self),
                  HDF5Store.isLinkName(name)
            else { throw QuantaError.malformed(subject, "link \(i) of \(what) has no valid UTF-8 name") }
            var objectInfo = H5O_info_t()
            guard H5Oget_info_by_idx2(location, ".", H5_INDEX_NAME, H5_ITER_INC, i, &objectInfo,
                                      UInt32(H5O_INFO_BASIC), quanta_H5P_DEFAULT()) >= 0 else {
                throw QuantaError.malformed(subject, "cannot read object '\(name)'")
            }
            if objectInfo.type == wanted { names.append(name) }
        }
        return names
    }

    // MARK: Reading

    private func open(_ name: String) throws -> hid_t {
        let subject = datasetSubject(name)
        let (group, leaf) = try splitDatasetPath(name)
        let missing = QuantaError(.invalidArgument, subject, "no such dataset")
        return try inGroup(group, missing: missing) { location in
            switch objectType(leaf, in: location) {
            case nil: throw missing
            case H5O_TYPE_DATASET?: break
            default: throw QuantaError(.invalidArgument, subject, "is not a dataset")
            }
            let dataset = H5Dopen2(location, leaf, quanta_H5P_DEFAULT())
            guard dataset >= 0 else { throw QuantaError.malformed(subject, "HDF5 cannot open it") }
            return dataset
        }
    }

    /// Type and shape of dataset `name` ("dataset" or "group/dataset").
    public func info(_ name: String) throws -> HDF5DatasetInfo {
        let dataset = try open(name)
        defer { H5Dclose(dataset) }
        return try info(dataset, name: name)
    }

    private func info(_ dataset: hid_t, name: String) throws -> HDF5DatasetInfo {
        let subject = datasetSubject(name)
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
        guard rank >= 0, rank <= 32 else { throw QuantaError.malformed(subject, "cannot read its shape") }
        var dims = [hsize_t](repeating: 0, count: Int(rank))
        guard H5Sget_simple_extent_dims(space, &dims, nil) == rank else { throw QuantaError.malformed(subject, "cannot read its shape") }
        // Every element count and byte size (8 bytes an element at most) must fit an Int.
        var count = 1
        for extent in dims {
            let (product, overflow) = count.multipliedReportingOverflow(by: Int(clamping: extent))
            guard extent <= hsize_t(Int.max), !overflow, product <= Int.max / 8 else {
                throw QuantaError.malformed(subject, "shape \(dims) is too large")
            }
            count = product
        }
        return HDF5DatasetInfo(name: name, type: elementType, shape: dims.map { Int($0) })
    }

    /// Reads dataset `name` ("dataset" or "group/dataset"); its stored type must be `T`'s.
    public func read<T: HDF5Element>(_ name: String, as _: T.Type = T.self) throws -> Tensor<T> {
        let dataset = try open(name)
        defer { H5Dclose(dataset) }
        let info = try info(dataset, name: name)
        guard info.type == T.hdf5Type else {
            throw QuantaError(.invalidArgument, datasetSubject(name), "holds \(info.type.rawValue), not \(T.hdf5Type.rawValue)")
        }
        let count = info.elementCount
        // A small file can declare a huge dataset (chunks never written, or compressed): the
        // size must be one the stored bytes can hold, deflate expanding them 1032:1 at most.
        let bytes = UInt64(count * MemoryLayout<T>.size), stored = UInt64(H5Dget_storage_size(dataset))
        let (limit, overflow) = stored.multipliedReportingOverflow(by: 1100)
        guard bytes <= 1 << 20 || overflow || bytes <= limit else {
            throw QuantaError.malformed(datasetSubject(name), "shape \(info.shape) needs \(bytes) bytes but the file stores only \(stored) for it")
        }
        let storage = try [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 {
                let status = H5Dread(dataset, HDF5Store.memoryType(T.hdf5Type), quanta_H5S_ALL(), quanta_H5S_ALL(),
                                     quanta_H5P_DEFAULT(), UnsafeMutableRawPointer(buffer.baseAddress!))
                guard status >= 0 else { throw QuantaError.malformed(datasetSubject(name), "HDF5 failed to read the data") }
            }
            initialized = count
        }
        return try Tensor(shape: info.shape, storage: storage)
    }

    /// The attributes of dataset `name` ("dataset" or "group/dataset"), sorted by key.
    public func attributes(of name: String) throws -> [(String, HDF5Attribute)] {
        let dataset = try open(name)
        defer { H5Dclose(dataset) }
        return try readAttributes(dataset, subject: datasetSubject(name))
    }

    /// Attributes of group `name`, sorted by key.
    public func attributes(ofGroup name: String) throws -> [(String, HDF5Attribute)] {
        let subject = groupSubject(name)
        return try inGroup(name, missing: QuantaError(.invalidArgument, subject, "no such group")) { group in
            try readAttributes(group, subject: subject)
        }
    }

    /// Attributes of the file's root group, sorted by key.
    public func rootAttributes() throws -> [(String, HDF5Attribute)] {
        try inRoot { root in try readAttributes(root, subject: rootSubject) }
    }

    /// The scalar string, integer and float attributes of `object` in HDF5's name order;
    /// attributes of other types or shapes are left out. Keys and string lengths are checked
    /// before they size a buffer.
    private func readAttributes(_ object: hid_t, subject: String) throws -> [(String, HDF5Attribute)] {
        var objectInfo = H5O_info_t()
        guard H5Oget_info2(object, &objectInfo, UInt32(H5O_INFO_NUM_ATTRS)) >= 0 else {
            throw QuantaError.malformed(subject, "cannot read its attributes")
        }
        var result: [(String, HDF5Attribute)] = []
        for i in 0..<objectInfo.num_attrs {
            let attribute = H5Aopen_by_idx(object, ".", H5_INDEX_NAME, H5_ITER_INC, i, quanta_H5P_DEFAULT(), quanta_H5P_DEFAULT())
            guard attribute >= 0 else { continue }
            defer { H5Aclose(attribute) }
            let length = H5Aget_name(attribute, 0, nil)
            guard length > 0, length <= HDF5Store.maxNameBytes else {
                throw QuantaError.malformed(subject, "attribute \(i) has a name of \(length) bytes (1...\(HDF5Store.maxNameBytes) allowed)")
            }
            var nameBuffer = [CChar](repeating: 0, count: Int(length) + 1)
            guard H5Aget_name(attribute, nameBuffer.count, &nameBuffer) == length else {
                throw QuantaError.malformed(subject, "cannot read the name of attribute \(i)")
            }
            let key = String(decoding: nameBuffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let space = H5Aget_space(attribute)
            defer { H5Sclose(space) }
            guard space >= 0, H5Sget_simple_extent_type(space) == H5S_SCALAR else { continue }
            let type = H5Aget_type(attribute)
            defer { H5Tclose(type) }
            let unreadable = QuantaError.malformed(subject, "cannot read attribute '\(key)'")
            switch H5Tget_class(type) {
            case H5T_STRING:
                result.append((key, .string(try readString(attribute, type: type, key: key, subject: subject))))
            case H5T_INTEGER:
                var v: Int64 = 0
                guard H5Aread(attribute, quanta_H5T_NATIVE_INT64(), &v) >= 0 else { throw unreadable }
                result.append((key, .int64(v)))
            case H5T_FLOAT:
                var v: Double = 0
                guard H5Aread(attribute, quanta_H5T_NATIVE_DOUBLE(), &v) >= 0 else { throw unreadable }
                result.append((key, .float64(v)))
            default:
                continue
            }
        }
        return result
    }

    /// A scalar string attribute, fixed-length (as Quanta writes them) or variable-length (as
    /// h5py writes `str` values); its text ends at the first NUL.
    private func readString(_ attribute: hid_t, type: hid_t, key: String, subject: String) throws -> String {
        let unreadable = QuantaError.malformed(subject, "cannot read attribute '\(key)'")
        let tooLong = QuantaError.malformed(subject, "attribute '\(key)' is longer than \(HDF5Store.maxStringBytes) bytes")
        if H5Tis_variable_str(type) > 0 {
            let memoryType = H5Tcopy(quanta_H5T_C_S1())
            defer { H5Tclose(memoryType) }
            guard H5Tset_size(memoryType, quanta_H5T_VARIABLE()) >= 0, H5Tset_cset(memoryType, H5Tget_cset(type)) >= 0 else { throw unreadable }
            var text: UnsafeMutablePointer<CChar>? = nil
            guard H5Aread(attribute, memoryType, &text) >= 0 else { throw unreadable }
            guard let text else { return "" }
            defer { H5free_memory(text) }
            let count = strnlen(text, HDF5Store.maxStringBytes + 1)
            guard count <= HDF5Store.maxStringBytes else { throw tooLong }
            return text.withMemoryRebound(to: UInt8.self, capacity: count) {
                String(decoding: UnsafeBufferPointer(start: $0, count: count), as: UTF8.self)
            }
        }
        let size = H5Tget_size(type)
        guard size > 0 else { throw unreadable }
        guard size <= HDF5Store.maxStringBytes else { throw tooLong }
        var buffer = [UInt8](repeating: 0, count: size)
        guard H5Aread(attribute, type, &buffer) >= 0 else { throw unreadable }
        let end = buffer.firstIndex(of: 0) ?? buffer.count
        return String(decoding: buffer[..<end], as: UTF8.self)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
