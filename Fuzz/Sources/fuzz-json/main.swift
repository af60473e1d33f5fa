import FuzzSupport
import QuantaIO

// The JSON parser behind every config, tokenizer, index and report file: any bytes either
// parse or throw, and what parses serializes to text that parses to the same value.
fuzzMain { bytes in
    guard let value = try? JSONParser.parse(bytes) else { return }
    let text = value.serialized()
    guard let again = try? JSONParser.parse(Array(text.utf8)) else { fatalError("serialized JSON does not parse: \(text)") }
    precondition(again == value, "JSON round trip changed the value: \(text)")
}
