import QuantaCore
import QuantaIO
import TestSupport
import XCTest

/// Every promise of the safetensors format, broken one at a time: each gives its own message.
final class SafetensorsMalformedTests: XCTestCase {
    func testEachMalformedFileHasItsOwnError() throws {
        let folder = try TestSupport.temporaryFolder()
        var messages = Set<String>()
        for (name, bytes, message) in MalformedFixtures.safetensors {
            let path = folder + "/\(name).safetensors"
            try TestSupport.write(bytes, to: path)
            XCTAssertThrowsError(try SafetensorsFile(path: path), name) { error in
                XCTAssertEqual((error as? QuantaError)?.kind, .malformed, name)
                XCTAssertEqual("\(error)", "\(path): \(message)", name)
            }
            messages.insert(message)
        }
        XCTAssertEqual(messages.count, MalformedFixtures.safetensors.count)
    }

    func testEmptyTensorsMayShareAnOffset() throws {
        let folder = try TestSupport.temporaryFolder()
        let path = folder + "/empty.safetensors"
        try TestSupport.write(MalformedFixtures.file(
            header: #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
            dataBytes: 4), to: path)
        XCTAssertEqual(try SafetensorsFile(path: path).tensors.map(\.name), ["a", "b"])
    }
}
