import QuantaCore
import QuantaIO
import QuantaModel

/// Calibration text: a plain UTF-8 file (one document) or JSON lines (`{"text": ...}` per line,
/// one document each; `.jsonl` / `.json` files, or any file whose first non-blank line is a JSON object).
public struct CalibrationData: Sendable {
    public let path: String
    public let documents: [String]
    /// Whether the file was read as JSON lines.
    public let isJSONLines: Bool
    /// sha256 of the file's bytes (lowercase hex).
    public let sha256: String

    public init(path: String) throws {
        self.path = path
        let bytes = try FileSystem.read(path)
        guard let text = String(validating: bytes, as: UTF8.self) else { throw QuantaError.malformed(path, "is not valid UTF-8") }
        var hasher = SHA256()
        hasher.update(bytes)
        sha256 = SHA256.hex(hasher.finalize())
        let lower = path.lowercased()
        // The first non-blank line starts with "{" exactly when the first non-space character is one.
        isJSONLines = lower.hasSuffix(".jsonl") || lower.hasSuffix(".json") || text.utf8.first { ![9, 10, 11, 12, 13, 32].contains($0) } == UInt8(ascii: "{")
        if isJSONLines {
            var documents: [String] = []
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            where !line.allSatisfy(\.isWhitespace) {
                let value: JSONValue
                do { value = try JSONParser.parse(Array(line.utf8)) } catch {
                    throw QuantaError.malformed("\(path): line \(number + 1)", "not valid JSON: \(error)")
                }
                guard let document = value["text"]?.stringValue else {
                    throw QuantaError.malformed("\(path): line \(number + 1)", "has no string \"text\" member")
                }
                documents.append(document)
            }
            self.documents = documents
        } else {
            documents = [text]
        }
        guard !documents.isEmpty else { throw QuantaError.malformed(path, "holds no text") }
    }
}
