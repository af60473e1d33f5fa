#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import QuantaCore

/// A read-only memory map of a whole file. The bytes stay valid while the object lives.
public final class MappedFile: @unchecked Sendable {
    /// The path it was opened with (used in error messages).
    public let path: String
    /// The file's bytes; empty (and unmapped) for an empty file.
    public let bytes: UnsafeRawBufferPointer
    private let mapping: UnsafeMutableRawPointer?

    /// Maps `path` read-only. Throws `.notFound` when it does not exist and `.io` when it
    /// cannot be opened or mapped.
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw QuantaError(.notFound, path, "no such file") }
            throw QuantaError(.io, path, "cannot open: \(String(cString: strerror(code)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw QuantaError(.io, path, "cannot stat: \(String(cString: strerror(errno)))")
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            throw QuantaError(.invalidArgument, path, "is a folder, not a file")
        }
        let size = Int(info.st_size)
        if size == 0 {
            mapping = nil
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let pointer = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let pointer, pointer != MAP_FAILED else {
            throw QuantaError(.io, path, "cannot map \(size) bytes: \(String(cString: strerror(errno)))")
        }
        mapping = pointer
        bytes = UnsafeRawBufferPointer(start: pointer, count: size)
    }

    public var count: Int { bytes.count }

    /// Tells the kernel the pages covering `range` (byte offsets) are no longer needed, so
    /// streaming through a large file keeps resident memory near one tensor. The bytes stay
    /// readable: they are read from the file again if touched.
    public func release(_ range: Range<Int>) {
        guard let mapping, !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (range.lowerBound + page - 1) / page * page
        let end = min(range.upperBound, bytes.count) / page * page
        guard end > start else { return }
        madvise(mapping + start, end - start, MADV_DONTNEED)
    }

    deinit {
        if let mapping { munmap(mapping, bytes.count) }
    }
}

/// File system helpers used across readers and writers.
public enum FileSystem {
    public enum Kind { case file, folder, missing }

    /// Whether `path` is a regular file, a folder or absent.
    public static func kind(of path: String) -> Kind {
        var info = stat()
        guard stat(path, &info) == 0 else { return .missing }
        return (info.st_mode & S_IFMT) == S_IFDIR ? .folder : .file
    }

    /// Names of the entries of a folder, sorted.
    public static func contents(of folder: String) throws -> [String] {
        guard let dir = opendir(folder) else {
            throw QuantaError(.io, folder, "cannot list folder: \(String(cString: strerror(errno)))")
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Joins path components with "/".
    public static func join(_ folder: String, _ name: String) -> String {
        folder.hasSuffix("/") ? folder + name : folder + "/" + name
    }

    /// Creates `path` and its missing parents; an existing folder is fine, a file there is an error.
    public static func createFolder(_ path: String) throws {
        switch kind(of: path) {
        case .folder: return
        case .file: throw QuantaError(.invalidArgument, path, "exists and is not a folder")
        case .missing:
            let parent = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
            if !parent.isEmpty && kind(of: parent) == .missing { try createFolder(parent) }
            guard mkdir(path, 0o755) == 0 || errno == EEXIST else {
                throw QuantaError(.io, path, "cannot create folder: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// A new empty folder under $TMPDIR (or /tmp) whose name starts with `prefix`.
    public static func temporaryFolder(prefix: String) throws -> String {
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array(join(base, prefix + "-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw QuantaError(.io, base, "cannot create a temporary folder: \(String(cString: strerror(errno)))") }
        return String(cString: made)
    }

    /// Removes a file, or a folder with everything in it (symbolic links are removed, not followed).
    public static func remove(_ path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            for name in try contents(of: path) { try remove(join(path, name)) }
            guard rmdir(path) == 0 else { throw QuantaError(.io, path, "cannot remove: \(String(cString: strerror(errno)))") }
        } else {
            guard unlink(path) == 0 else { throw QuantaError(.io, path, "cannot remove: \(String(cString: strerror(errno)))") }
        }
    }

    /// Bytes of a file, or of every file in a folder tree.
    public static func size(_ path: String) throws -> Int {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw QuantaError(.notFound, path, "does not exist") }
        guard (info.st_mode & S_IFMT) == S_IFDIR else { return Int(info.st_size) }
        return try contents(of: path).reduce(0) { $0 + (try size(join(path, $1))) }
    }

    /// The whole file as bytes.
    public static func read(_ path: String) throws -> [UInt8] {
        let file = try MappedFile(path: path)
        return Array(file.bytes)
    }
}
