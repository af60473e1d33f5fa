import QuantaCore
import QuantaIO

#if canImport(Glibc)
import Glibc
#endif

/// Writes a Hugging Face style folder atomically: `model.safetensors`, JSON files and copied
/// files go into a temporary folder beside `folder`, renamed into place when complete and
/// removed on failure. `folder` must not exist.
public enum FolderSink {
    public static func checkFree(_ folder: String) throws {
        guard FileSystem.kind(of: folder) == .missing else {
            throw QuantaError(.invalidArgument, folder, "already exists; choose a new output folder")
        }
    }

    public static func write(to folder: String, tensors: [SafetensorsWriter.Entry], metadata: [String: String],
                             json: [(name: String, json: JSONValue)], copies: [(from: String, name: String)] = []) throws {
        try checkFree(folder)
        let temporary = folder + ".tmp-\(getpid())"
        guard mkdir(temporary, 0o755) == 0 else {
            throw QuantaError(.io, temporary, "cannot create folder: \(String(cString: strerror(errno)))")
        }
        // An interruption removes what was placed in the folder, then the folder.
        var slots = [TemporaryFiles.register(folder: temporary)]
        defer { slots.forEach(TemporaryFiles.unregister) }
        do {
            slots.append(TemporaryFiles.register(file: temporary + "/model.safetensors"))
            try SafetensorsWriter.write(tensors, metadata: metadata, to: temporary + "/model.safetensors")
            var files = json.map { ($0.name, Array(($0.json.serialized(indent: 2) + "\n").utf8)) }
            for copy in copies { files.append((copy.name, try FileSystem.read(copy.from))) }
            for (name, bytes) in files {
                slots.append(TemporaryFiles.register(file: temporary + "/" + name))
                let writer = try AtomicFileWriter(path: temporary + "/" + name)
                try writer.write(bytes)
                try writer.commit()
            }
            guard rename(temporary, folder) == 0 else {
                throw QuantaError(.io, folder, "cannot move the finished folder into place: \(String(cString: strerror(errno)))")
            }
        } catch {
            for name in (try? FileSystem.contents(of: temporary)) ?? [] { unlink(temporary + "/" + name) }
            rmdir(temporary)
            throw error
        }
    }
}
