import QuantaIO
import TestSupport
import XCTest

final class JSONTests: XCTestCase {
    private func parse(_ text: String) throws -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

    func testParsesKeepingOrderAndExactIntegers() throws {
        let value = try parse(#" {"b": [1, -2.5e3, true, null], "a": {"x": "\u00e9\ud83d\ude00\n"}, "n": 9007199254740993} "#)
        XCTAssertEqual(value.objectValue?.map(\.0), ["b", "a", "n"])
        XCTAssertEqual(value["b"], .array([.integer(1), .number(-2500), .bool(true), .null]))
        XCTAssertEqual(value["a"]?["x"], .string("é\u{1F600}\n"))
        XCTAssertEqual(value["n"]?.intValue, 9_007_199_254_740_993)
    }

    func testErrorsGiveReasonAndOffset() {
        let cases: [(String, String)] = [
            ("{\"a\" 1}", "expected ':' after key 'a' at byte 5"),
            ("[1, 2", "expected ',' or ']' in array at byte 5"),
            ("{\"a\":1,\"a\":2}", "duplicate key 'a' at byte 7"),
            ("\"abc", "unterminated string at byte 4"),
            ("\"\\ud800\"", "unpaired surrogate in \\u escape at byte 7"),
            ("01", "unexpected data after the JSON value at byte 1"),
            ("tru", "invalid literal, expected 'true' at byte 3"),
            ("\"a\tb\"", "unescaped control character in string at byte 2"),
            ("", "unexpected end of JSON at byte 0"),
            (String(repeating: "[", count: 600), "JSON nested deeper than 512 levels at byte 512"),
            // Found by Fuzz/Sources/fuzz-json: an overflowing number became infinity and serialized as null.
            ("[1, 666E666]", "number '666E666' is out of the range of a 64-bit float at byte 4"),
            ("-1e309", "number '-1e309' is out of the range of a 64-bit float at byte 0"),
        ]
        for (text, message) in cases {
            XCTAssertThrowsError(try parse(text), text) { error in XCTAssertEqual("\(error)", message, text) }
        }
    }

    /// Compact output escapes as serde_json (and Python's json with ensure_ascii=False) do.
    func testSerializationMatchesPythonJSON() throws {
        let value = JSONValue.object([("k\"ey", .string("tab\t nl\n bell\u{07} é \u{1F600} \\")), ("v", .array([.integer(-3), .bool(false), .null]))])
        let output = try TestSupport.oracle("""
            import json
            print(json.dumps({"k\\"ey": "tab\\t nl\\n bell\\u0007 é \\U0001F600 \\\\", "v": [-3, False, None]}, separators=(",", ":"), ensure_ascii=False))
            """)
        XCTAssertEqual(value.serialized(), output.trimmingCharacters(in: .newlines))
        XCTAssertEqual(try parse(value.serialized()), value)
    }
}

final class FormattingTests: XCTestCase {
}
