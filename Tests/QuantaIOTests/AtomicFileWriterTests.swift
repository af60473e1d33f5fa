import Foundation
import QuantaCore
@testable import QuantaIO
import XCTest

/// `AtomicFileWriter.copy`: bytes copied by the kernel land between the writes around them;
/// an unreadable source falls back to the given bytes; a short source is an error.
final class AtomicFileWriterTests: XCTestCase {
    func folder() throws -> String {
        let path = NSTemporaryDirectory() + "quanta-atomic-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testCopiedBytesLandBetweenWrites() throws {
        let dir = try folder(), source = dir + "/source.bin", output = dir + "/out.bin"
        let data = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 % 251) }
        try Data(data).write(to: URL(fileURLWithPath: source))
        let large = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let writer = try AtomicFileWriter(path: output)
        try writer.write([1, 2, 3])
        try data.withUnsafeBytes { try writer.copy(UnsafeRawBufferPointer(rebasing: $0[1000..<201_000]), from: source, at: 1000) }
        try writer.write(large)
        try data.withUnsafeBytes { try writer.copy(UnsafeRawBufferPointer(rebasing: $0[7..<9]), from: dir + "/missing.bin", at: 7) }
        try writer.writeZeros(5)
        XCTAssertEqual(writer.offset, 3 + 200_000 + 70_000 + 2 + 5)
        try writer.commit()
        let expected = [1, 2, 3] + data[1000..<201_000] + large + data[7..<9] + [0, 0, 0, 0, 0]
        XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: output))), expected)
    }

    func testShortSourceIsAnError() throws {
        let dir = try folder(), source = dir + "/short.bin", output = dir + "/out.bin"
        try Data([UInt8](repeating: 9, count: 100)).write(to: URL(fileURLWithPath: source))
        let claimed = [UInt8](repeating: 9, count: 150)
        let writer = try AtomicFileWriter(path: output)
        XCTAssertThrowsError(try claimed.withUnsafeBytes { try writer.copy($0, from: source, at: 0) }) {
            XCTAssertEqual(($0 as? QuantaError)?.description, "\(output): copy from \(source) ended 50 bytes early")
        }
        writer.abandon()
        XCTAssertFalse(FileManager.default.fileExists(atPath: output))
    }

    /// A source on another file system (tmpfs against the temporary folder's disk) goes through
    /// sendfile: the same bytes, and the same error for a short source.
    func testCopyAcrossFileSystems() throws {
        #if os(Linux)
        let dir = try folder(), output = dir + "/out.bin"
        var shm = stat(), tmp = stat()
        guard stat("/dev/shm", &shm) == 0, stat(dir, &tmp) == 0, shm.st_dev != tmp.st_dev else {
            throw XCTSkip("/dev/shm is missing or on the temporary folder's file system")
        }
        let source = "/dev/shm/quanta-atomic-\(UUID().uuidString.prefix(8)).bin"
        addTeardownBlock { unlink(source) }
        // Larger than the copy buffer, so the copy takes several reads.
        let data = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 % 253) }
        try Data(data).write(to: URL(fileURLWithPath: source))
        let writer = try AtomicFileWriter(path: output)
        try writer.write([9])
        try data.withUnsafeBytes { try writer.copy(UnsafeRawBufferPointer(rebasing: $0[5..<2_500_005]), from: source, at: 5) }
        try writer.write([8])
        try writer.commit()
        XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: output))), [9] + data[5..<2_500_005] + [8])

        let short = try AtomicFileWriter(path: output)
        let claimed = [UInt8](repeating: 0, count: 3_000_100)
        XCTAssertThrowsError(try claimed.withUnsafeBytes { try short.copy($0, from: source, at: 0) }) {
            XCTAssertEqual(($0 as? QuantaError)?.description, "\(output): copy from \(source) ended 100 bytes early")
        }
        short.abandon()
        #endif
    }
}
