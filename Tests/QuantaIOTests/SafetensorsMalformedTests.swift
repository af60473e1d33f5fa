import QuantaCore
import QuantaIO
import TestSupport
import XCTest

/// Every promise of the safetensors format, broken one at a time: each gives its own message.
final class SafetensorsMalformedTests: XCTestCase {
    /// A file from a header string and a data area of `dataBytes` bytes.
    static func file(header: String, dataBytes: Int, headerLength: UInt64? = nil) -> [UInt8] {
        var writer = ByteWriter()
        let json = Array(header.utf8)
        writer.integer(headerLength ?? UInt64(json.count))
        writer.raw(json)
        writer.zeros(dataBytes)
        return writer.bytes
    }

    static let cases: [(name: String, bytes: [UInt8], message: String)] = [
        ("truncated", [1, 2, 3], "file is 3 bytes, too short for the 8-byte header length"),
        ("header-past-end", file(header: "{}", dataBytes: 0, headerLength: 50), "header length 50 runs past the end of the file (10 bytes)"),
        ("header-too-large", file(header: "{}", dataBytes: 0, headerLength: 200_000_000), "header length 200000000 exceeds the 100 MB limit"),
        ("invalid-utf8", file(header: "{\"a\u{FFFD}\":1}", dataBytes: 0).enumerated().map { $0.offset == 11 ? 0xFF : $0.element },
         "header is not valid UTF-8 (byte 11)"),
        ("not-json", file(header: "{\"a\": [1, 2}", dataBytes: 0), "header is not valid JSON: expected ',' or ']' in array at byte 19"),
        ("not-object-start", file(header: "[1]", dataBytes: 0), "header does not start with '{'"),
        ("unknown-dtype", file(header: #"{"w":{"dtype":"F12","shape":[2],"data_offsets":[0,8]}}"#, dataBytes: 8),
         "tensor 'w': unknown dtype 'F12'"),
        ("shape-size-mismatch", file(header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, dataBytes: 8),
         "tensor 'w': shape [3] of F32 needs 12 bytes but data_offsets span 8"),
        ("overlap", file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, dataBytes: 12),
         "tensors 'a' and 'b' overlap (byte 4 of the data area is used twice)"),
        ("gap", file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#, dataBytes: 12),
         "gap in the data area: bytes 4..<8 belong to no tensor"),
        ("past-data-area", file(header: #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, dataBytes: 8),
         "tensor 'a' ends at byte 16, past the data area of 8 bytes"),
        ("trailing-bytes", file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, dataBytes: 12),
         "data area has 12 bytes but the tensors cover 4"),
        ("duplicate-name", file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, dataBytes: 8),
         "header is not valid JSON: duplicate key 'a' at byte 62"),
        ("metadata-not-strings", file(header: #"{"__metadata__":{"n":1}}"#, dataBytes: 0), "__metadata__ value of 'n' is not a string"),
        ("offsets-reversed", file(header: #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}"#, dataBytes: 4),
         "tensor 'a': data_offsets [4, 0] end before they begin"),
        ("negative-shape", file(header: #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, dataBytes: 4),
         "tensor 'a': shape holds -1, not a non-negative integer"),
        ("missing-offsets", file(header: #"{"a":{"dtype":"F32","shape":[1]}}"#, dataBytes: 4),
         "tensor 'a': data_offsets must be two non-negative integers [begin, end]"),
    ]

    func testEachMalformedFileHasItsOwnError() throws {
        let folder = try TestSupport.temporaryFolder()
        var messages = Set<String>()
        for (name, bytes, message) in SafetensorsMalformedTests.cases {
            let path = folder + "/\(name).safetensors"
            try TestSupport.write(bytes, to: path)
            XCTAssertThrowsError(try SafetensorsFile(path: path), name) { error in
                XCTAssertEqual((error as? QuantaError)?.kind, .malformed, name)
                XCTAssertEqual("\(error)", "\(path): \(message)", name)
            }
            messages.insert(message)
        }
        XCTAssertEqual(messages.count, SafetensorsMalformedTests.cases.count)
    }

    func testEmptyTensorsMayShareAnOffset() throws {
        let folder = try TestSupport.temporaryFolder()
        let path = folder + "/empty.safetensors"
        try TestSupport.write(SafetensorsMalformedTests.file(
            header: #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
            dataBytes: 4), to: path)
        XCTAssertEqual(try SafetensorsFile(path: path).tensors.map(\.name), ["a", "b"])
    }
}
