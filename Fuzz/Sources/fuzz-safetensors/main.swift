import FuzzSupport
import QuantaIO

// A .safetensors file: header length, JSON header, dtypes, shapes and data offsets. Anything
// either opens (and then every tensor reads) or throws; nothing outside the file is read.
fuzzMain { bytes in
    let path = Scratch.write(bytes, to: "model.safetensors")
    guard let file = try? SafetensorsCollection(file: path) else { return }
    readAllTensors(file.tensors.map(\.info), float: { try file.floatTensor($0) },
                   integer: { try readIntegerTensor($0, from: file) })
}
