import QuantaCore
import QuantaIO
import TestSupport
import XCTest

final class GGUFMalformedTests: XCTestCase {
    func testTheValidFixtureReads() throws {
        let path = try TestSupport.temporaryFolder() + "/valid.gguf"
        try TestSupport.write(MalformedFixtures.validGGUF.bytes, to: path)
        let file = try GGUFFile(path: path)
        XCTAssertEqual(file.tensors, [GGUFTensorInfo(name: "w", dimensions: [32, 2], type: .f32, offset: 0)])
    }

    func testEachMalformedFileHasItsOwnError() throws {
        let folder = try TestSupport.temporaryFolder()
        var messages = Set<String>()
        for (name, bytes, message) in MalformedFixtures.gguf {
            let path = folder + "/\(name).gguf"
            try TestSupport.write(bytes, to: path)
            XCTAssertThrowsError(try GGUFFile(path: path), name) { error in
                XCTAssertEqual((error as? QuantaError)?.kind, name == "version" ? .unsupported : .malformed, name)
                XCTAssertEqual("\(error)", "\(path): \(message)", name)
            }
            messages.insert(message)
        }
        XCTAssertEqual(messages.count, MalformedFixtures.gguf.count)
    }
}
