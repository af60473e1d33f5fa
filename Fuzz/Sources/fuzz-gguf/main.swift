import FuzzSupport
import QuantaCore
import QuantaFormats
import QuantaIO

// A GGUF file: header, metadata of every value type, tensor infos, alignment and offsets;
// then every tensor's bytes decoded by its block format.
fuzzMain { bytes in
    let path = Scratch.write(bytes, to: "model.gguf")
    guard let file = try? GGUFFile(path: path) else { return }
    for (_, value) in file.metadata { _ = value.summary() }
    for info in file.tensors {
        let raw = file.rawBytes(info)
        precondition(raw.count == info.byteCount, "\(info.name): \(raw.count) bytes for \(info.byteCount)")
        if let values = try? Quantization.dequantize(info.type, raw, count: info.elementCount) {
            precondition(values.count == info.elementCount, "\(info.name): wrong value count")
        }
    }
}
