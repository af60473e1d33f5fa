import FuzzSupport
import QuantaCalibration
import QuantaCore
import QuantaIO
import QuantaModel

// A calibration statistics file (`quanta calibrate --out`, read by `--stats`): provenance
// attributes, one group per linear input with counts, sums and Gram matrices; then what the
// quantizers take from it (Gram matrices, the importance matrix for the model's tensors).
let config = try! ArchitectureRegistry.config(hf: JSONParser.parse(Array("""
    {"model_type": "llama", "hidden_size": 4, "intermediate_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
     "num_key_value_heads": 1, "vocab_size": 16, "rms_norm_eps": 1e-5, "max_position_embeddings": 64}
    """.utf8)), path: "config.json")

let provenanceAttributes: [(String, HDF5Attribute)] = [
    ("format", HDF5Attribute.string(StatisticsWriter.format)), ("quanta_version", .string("0.1.0")), ("created", .string("2026-11-30T00:00:00Z")),
    ("model_path", .string("m")), ("model_type", .string("llama")), ("model_sha256", .string("00")), ("data_path", .string("d.txt")),
    ("data_sha256", .string("11")), ("sampler", .string("random")), ("seed", .int64(0)), ("samples", .int64(2)),
    ("sequence_length", .int64(8)), ("add_bos", .int64(1)), ("hessian", .string("full")), ("tokens", .int64(16)),
]
func provenance() -> [HDF5Item] { provenanceAttributes.map { HDF5Item.root($0.0, $0.1) } }

func input(_ name: String, layer: Int64, kind: String, columns: Int, weights: String, gram: Bool) -> [HDF5Item] {
    let values = (0..<columns).map { Double($0) + 0.5 }
    var items: [HDF5Item] = [
        .group(name, [("tokens", .int64(16)), ("columns", .int64(Int64(columns))), ("layer", .int64(layer)), ("input", .string(kind)),
                      ("weights", .string(weights))]),
        .dataset("\(name)/sum_squares", .f64(values), shape: [columns], []),
        .dataset("\(name)/sum_abs", .f64(values), shape: [columns], []),
        .dataset("\(name)/max_abs", .f32(values.map(Float.init)), shape: [columns], []),
    ]
    if gram { items.append(.dataset("\(name)/gram", .f64((0..<columns * columns).map { Double($0 % 5) }), shape: [columns, columns], [])) }
    return items
}

// Built per input: arrays held by a global through Swift's multi-payload enums carry tag bits
// in their pointers, which LeakSanitizer does not follow (it would report them as leaks).
func valid() -> [HDF5Item] {
    provenance()
    + input("blk.0.attn_qkv", layer: 0, kind: "attn_qkv", columns: 4, weights: "blk.0.attn_q.weight,blk.0.attn_k.weight,blk.0.attn_v.weight", gram: true)
    + input("blk.1.ffn_down", layer: 1, kind: "ffn_down", columns: 8, weights: "blk.1.ffn_down.weight", gram: false)
    + input("output", layer: -1, kind: "output", columns: 4, weights: "output.weight", gram: true)
}
let names = ["format", "tokens", "columns", "layer", "input", "weights", "samples", "sequence_length", "seed", "add_bos", "hessian",
             "blk.0.attn_qkv", "blk.0.attn_qkv/gram", "blk.0.attn_qkv/sum_squares", "output/gram", "output/sum_squares", "blk.7.ffn_down",
             "blk.7.ffn_down/sum_squares", "blk.1.ffn_down/gram"]

fuzzMain { bytes in
    var fuzz = FuzzBytes(bytes)
    let path = Scratch.path("stats.h5")
    HDF5Fuzz.write(HDF5Fuzz.mutate(valid(), names: names, with: &fuzz), to: path)
    guard let file = try? StatisticsFile(path: path) else { return }
    for input in file.inputs {
        precondition(input.sumSquares.count == input.columns, "\(input.name): sums do not match columns")
        if let gram = try? file.gram(input) { precondition(gram.count == input.columns * input.columns, "\(input.name): Gram size") }
    }
    let matrix = file.importanceMatrix(config: config)
    for entry in matrix.entries { precondition(entry.sums.count == entry.columns * max(entry.counts.count, 1), "\(entry.name): sums size") }
}
