import BenchSupport
import QuantaAlgorithms
import QuantaCore
import QuantaFormats
import QuantaIO
import QuantaModel
import QuantaReport

#if canImport(Glibc)
import Glibc
#endif

// Quantization throughput per type, in MB/s of fp32 input, on real weights.
// Usage: quanta-bench [MODEL_FOLDER ...] [--threads N] [--repeat R]
//        quanta-bench versus [--runs N] --command CMD [--command CMD ...]   (see Versus.swift)
// Prints, per model and type: the single-thread reference path, the threaded path used by
// `quanta quantize`, and their ratio, all measured in this run.

if CommandLine.arguments.dropFirst().first == "versus" {
    exit(Versus.run(Array(CommandLine.arguments.dropFirst(2))))
}

var folders: [String] = []
var threads = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
var repeats = 3
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--threads": threads = Int(arguments.next() ?? "") ?? threads
    case "--repeat": repeats = Int(arguments.next() ?? "") ?? repeats
    default: folders.append(argument)
    }
}
if folders.isEmpty { folders = ["Models/austen-llama"] }

/// Every 2-D weight of the model as (values, row length), in GGUF layout.
func weights(_ folder: String) throws -> [([Float], Int)] {
    let source = try HuggingFaceSource(path: folder)
    return try source.tensors.filter { $0.dimensions.count == 2 }.map { (try source.values($0.name), $0.dimensions[0]) }
}

do {
    for folder in folders {
        let tensors = try weights(folder)
        let megabytes = Double(tensors.reduce(0) { $0 + $1.0.count * 4 }) / 1e6
        print("\(folder): \(tensors.count) matrices, \(fixed(megabytes, 1)) MB fp32, \(threads) threads, best of \(repeats)")
        print("type     reference MB/s   threaded MB/s   ratio")
        for type in Quantization.quantizableTypes where type != .f32 {
            let usable = tensors.filter { $0.1 % type.blockSize == 0 }
            let mb = Double(usable.reduce(0) { $0 + $1.0.count * 4 }) / 1e6
            let reference = try fastest(repeats) { for (values, row) in usable { _ = try Quantization.quantize(type, values, rowLength: row, threads: 1) } }
            let threaded = try fastest(repeats) { for (values, row) in usable { _ = try Quantization.quantize(type, values, rowLength: row, threads: threads) } }
            print("\(type.name.padded(8)) \(fixed(mb / reference, 1).leftPadded(14)) \(fixed(mb / threaded, 1).leftPadded(15)) \(fixed(reference / threaded, 2).leftPadded(7))")
        }
    }
} catch {
    print("quanta-bench: \(error)")
    exit(1)
}
