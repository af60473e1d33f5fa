#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import QuantaCore

extension FileSystem {
    /// Checks, before any work, that `output` can be written and destroys nothing: it must not
    /// resolve to one of `inputs` (through symlinks or hard links: same device and inode) nor to
    /// a file already inside an input folder (a new file beside the model's is allowed, as
    /// llama.cpp's converter writes one); a file output must not be an existing folder and a folder
    /// output must not exist; its parent folder must exist and be writable. Throws
    /// `.invalidArgument` (exit 64) naming `option` and the path.
    public static func checkOutput(_ output: String, option: String, inputs: [String], folder: Bool = false) throws {
        func refuse(_ why: String) -> QuantaError { QuantaError(.invalidArgument, "\(option) \(output)", why) }
        let existing = kind(of: output)
        if folder {
            guard existing == .missing else { throw refuse("already exists; choose a new output folder") }
        } else if existing == .folder {
            throw refuse("is a folder; give a file path")
        }
        let parent = output.contains("/") ? String(output[..<output.lastIndex(of: "/")!]) : "."
        let parentPath = parent.isEmpty ? "/" : parent
        guard kind(of: parentPath) == .folder else { throw refuse("its folder \(parentPath) does not exist") }
        guard access(parentPath, W_OK) == 0 else { throw refuse("its folder \(parentPath) is not writable") }
        var target = stat()
        let outputExists = stat(output, &target) == 0
        let resolvedParent = realPath(parentPath)
        for input in inputs where !input.isEmpty {
            var source = stat()
            guard stat(input, &source) == 0 else { continue }
            if outputExists && source.st_dev == target.st_dev && source.st_ino == target.st_ino {
                throw refuse("is the input \(input); writing it would destroy the input")
            }
            if outputExists, (source.st_mode & S_IFMT) == S_IFDIR, let inputFolder = realPath(input), let resolvedParent,
               resolvedParent == inputFolder || resolvedParent.hasPrefix(inputFolder + "/") {
                throw refuse("is a file of the input folder \(input); writing it would change the input")
            }
        }
    }

    /// The canonical absolute path (symlinks resolved), nil when it cannot be resolved.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
