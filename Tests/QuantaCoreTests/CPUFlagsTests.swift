import Foundation
import QuantaCore
import XCTest

final class CPUFlagsTests: XCTestCase {
    /// The first `flags` line's words after the colon, tabs and the newline dropped; a file
    /// without one gives nil.
    func testReadsTheFirstFlagsLine() throws {
        let path = NSTemporaryDirectory() + "quanta-cpuinfo-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let text = "processor\t: 0\nmodel name\t: Test CPU with flags in its name\nflags\t\t: fpu avx2 fma  avx512f\nflags\t\t: sse\n"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertEqual(CPUFlags.read(path: path), ["fpu", "avx2", "fma", "avx512f"])
        try "processor\t: 0\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertNil(CPUFlags.read(path: path))
        XCTAssertNil(CPUFlags.read(path: path + ".missing"))
    }
}
