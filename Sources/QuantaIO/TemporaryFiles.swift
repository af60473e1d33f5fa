#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What an interrupted process leaves behind, removed when SIGINT, SIGTERM or SIGHUP arrives:
/// unfinished outputs (files written under a temporary name, temporary folders with what was
/// placed in them) and child processes still running. The handler unlinks the files, removes
/// the folders (emptied by then), sends SIGTERM to the children and exits with 128 + the signal
/// number (130 for Ctrl-C, 143 for SIGTERM). It only calls async-signal-safe functions on
/// C strings registered beforehand.
public enum TemporaryFiles {
    /// What a slot holds.
    enum Kind: Int32 { case free = 0, file, folder, process }

    static let capacity = 1024
    /// Bytes of a slot's path buffer (PATH_MAX with its NUL); longer paths are not registered.
    static let pathCapacity = Int(PATH_MAX)
    nonisolated(unsafe) static let paths: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> = {
        let p = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: capacity)
        p.initialize(repeating: nil, count: capacity)
        return p
    }()
    nonisolated(unsafe) static let kinds: UnsafeMutablePointer<Int32> = {
        let p = UnsafeMutablePointer<Int32>.allocate(capacity: capacity)
        p.initialize(repeating: Kind.free.rawValue, count: capacity)
        return p
    }()
    nonisolated(unsafe) static let pids: UnsafeMutablePointer<pid_t> = {
        let p = UnsafeMutablePointer<pid_t>.allocate(capacity: capacity)
        p.initialize(repeating: 0, count: capacity)
        return p
    }()
    nonisolated(unsafe) static let lock: UnsafeMutablePointer<pthread_mutex_t> = {
        let p = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(p, nil)
        return p
    }()

    /// A registration, to pass back to `unregister`.
    public struct Slot: Sendable {
        let index: Int
    }

    static func claim(_ kind: Kind, path: String?, pid: pid_t = 0) -> Slot? {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        let bytes = path.map { Array($0.utf8CString) } ?? [0]
        guard bytes.count <= pathCapacity else { return nil }
        for i in 0..<capacity where kinds[i] == Kind.free.rawValue {
            // Each slot keeps one buffer for good, reused by later claims: never freed, since
            // the handler may be reading it, and never growing with the number of outputs.
            if paths[i] == nil { paths[i] = .allocate(capacity: pathCapacity) }
            bytes.withUnsafeBufferPointer { paths[i]!.update(from: $0.baseAddress!, count: $0.count) }
            pids[i] = pid
            kinds[i] = kind.rawValue
            return Slot(index: i)
        }
        return nil
    }

    /// Registers a file to unlink if the process is interrupted (nil when the table is full).
    public static func register(file path: String) -> Slot? { claim(.file, path: path) }

    /// Registers a folder to remove if the process is interrupted; what is placed in it must be
    /// registered as files too.
    public static func register(folder path: String) -> Slot? { claim(.folder, path: path) }

    /// Registers a child process to terminate if this one is interrupted.
    public static func register(process pid: pid_t) -> Slot? { claim(.process, path: nil, pid: pid) }

    /// The path or process is finished (renamed into place, removed, exited).
    public static func unregister(_ slot: Slot?) {
        guard let slot else { return }
        pthread_mutex_lock(lock)
        kinds[slot.index] = Kind.free.rawValue
        pthread_mutex_unlock(lock)
    }

    /// Installs the handler for SIGINT, SIGTERM and SIGHUP (once, at startup), and the same
    /// clean-up at `exit` (e.g. a library that cannot be loaded in the middle of the work).
    public static func installSignalHandlers() {
        _ = (paths, kinds, pids, lock)  // initialized here, never inside the handler
        atexit { TemporaryFiles.cleanUp() }
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { signal in
                TemporaryFiles.cleanUp()
                _exit(128 + signal)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            sigaction(signal, &action, nil)
        }
    }

    /// Children first, then files, then folders.
    static func cleanUp() {
        for i in 0..<capacity where kinds[i] == Kind.process.rawValue && pids[i] > 0 { kill(pids[i], SIGTERM) }
        for i in 0..<capacity where kinds[i] == Kind.file.rawValue { if let p = paths[i], p[0] != 0 { unlink(p) } }
        for i in stride(from: capacity - 1, through: 0, by: -1) where kinds[i] == Kind.folder.rawValue { if let p = paths[i], p[0] != 0 { rmdir(p) } }
    }
}
