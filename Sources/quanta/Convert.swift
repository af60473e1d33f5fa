import ArgumentParser
import QuantaAlgorithms
import QuantaCore
import QuantaIO
import QuantaModel
import QuantaReport

/// `quanta convert IN OUT_DIR`: a GGUF or a quantized checkpoint folder to an fp32 Hugging Face folder.
struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a GGUF (\(ArchitectureRegistry.ggufArchitectures.joined(separator: ", "))) or a GPTQ/MLX checkpoint folder into a Hugging Face folder (fp32 safetensors, config and tokenizer).",
        discussion: """
            Quantized tensors are dequantized to fp32, q/k rows are returned to the Hugging Face order and \
            the tokenizer is rebuilt from the GGUF vocabulary and merges, so GGUF-only models become normal \
            inputs of every Quanta command. A GPTQ (v1) or MLX (affine) folder is dequantized the same way. \
            OUT_DIR must not exist; it appears only when complete.
            """
    )

    @Argument(help: "Input GGUF file or quantized checkpoint folder.") var input: String
    @Argument(help: "Output folder (must not exist).") var output: String
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        try reportingFailures {
            try FileSystem.checkOutput(output, option: "OUT", inputs: [input], folder: true)
            let bar = ProgressBar(enabled: !json, verbose: false)
            let progress = { (index: Int, count: Int, name: String) in bar.update(index, of: count, name) }
            let summary = FileSystem.kind(of: input) == .folder
                ? try HuggingFaceExport.convert(folder: input, to: output, progress: progress)
                : try HuggingFaceExport.convert(gguf: input, to: output, progress: progress)
            bar.finish()
            if json {
                print(JSONValue.object([
                    ("output", .string(output)), ("tensor_count", .integer(Int64(summary.tensorCount))),
                    ("parameter_count", .integer(Int64(summary.parameterCount))), ("bytes", .integer(Int64(summary.bytes))),
                    ("seconds", .number((summary.seconds * 1000).rounded() / 1000)),
                ]).serialized(indent: 2))
            } else {
                print("wrote \(output): \(summary.tensorCount) tensors, \(grouped(summary.parameterCount)) parameters, "
                      + "\(megabytes(summary.bytes)) of fp32 safetensors in \(fixed(summary.seconds, 2)) s")
            }
        }
    }
}
