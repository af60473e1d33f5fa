import FuzzSupport
import QuantaCore
import QuantaIO

// model.safetensors.index.json next to two real shards: the index's weight map must name
// shards inside the folder and agree with what the shards hold.
let shards: [(String, String)] = [
    ("model-00001-of-00002.safetensors", #"{"a.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"I32","shape":[1],"data_offsets":[16,20]}}"#),
    ("model-00002-of-00002.safetensors", #"{"__metadata__":{"format":"pt"},"c.weight":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]}}"#),
]
for (name, header) in shards {
    var bytes = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { Array($0) } + Array(header.utf8)
    bytes += (0..<20).map { UInt8($0 * 13 & 0x7F) }
    let dataLength = name.hasPrefix("model-00001") ? 20 : 6
    Scratch.write(Array(bytes.prefix(8 + header.utf8.count + dataLength)), to: name)
}

fuzzMain { bytes in
    let path = Scratch.write(bytes, to: "model.safetensors.index.json")
    guard let collection = try? SafetensorsCollection(index: path) else { return }
    readAllTensors(collection.tensors.map(\.info), float: { try collection.floatTensor($0) },
                   integer: { try readIntegerTensor($0, from: collection) })
}
