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
}
