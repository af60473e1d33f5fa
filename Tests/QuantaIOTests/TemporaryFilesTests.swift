@testable import QuantaIO
import XCTest

final class TemporaryFilesTests: XCTestCase {
    /// Found by Fuzz/Sources/fuzz-logits (LeakSanitizer): every registration used to strdup its
    /// path and never free it, so a long process leaked one string per output written.
    func testSlotsReuseTheirPathBuffer() throws {
        let first = try XCTUnwrap(TemporaryFiles.register(file: "/tmp/quanta-a.tmp-1"))
        let buffer = TemporaryFiles.paths[first.index]
        XCTAssertEqual(String(cString: try XCTUnwrap(buffer)), "/tmp/quanta-a.tmp-1")
        TemporaryFiles.unregister(first)
        let second = try XCTUnwrap(TemporaryFiles.register(file: "/tmp/quanta-longer-name.tmp-2"))
        defer { TemporaryFiles.unregister(second) }
        XCTAssertEqual(second.index, first.index)
        XCTAssertEqual(TemporaryFiles.paths[second.index], buffer)
        XCTAssertEqual(String(cString: try XCTUnwrap(buffer)), "/tmp/quanta-longer-name.tmp-2")
    }

    func testPathsLongerThanPathMaxAreNotRegistered() {
        XCTAssertNil(TemporaryFiles.register(file: "/" + String(repeating: "x", count: Int(PATH_MAX))))
        XCTAssertNotNil(TemporaryFiles.register(file: "/" + String(repeating: "x", count: Int(PATH_MAX) - 2)).map { TemporaryFiles.unregister($0); return $0 })
    }
}
