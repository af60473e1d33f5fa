import ArgumentParser
import QuantaCore
import QuantaIO
import QuantaReport

/// `quanta inspect PATH`: what is inside a model folder, a safetensors, GGUF or HDF5 file.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show the architecture, parameters, tensors and metadata of a model or file.",
        discussion: """
            PATH is a Hugging Face model folder (config.json + safetensors), a .safetensors file, \
            a .gguf file or an HDF5 (.h5) store written by Quanta. Long metadata arrays (such as \
            tokenizer vocabularies) are shown by length and first elements.
            """
    )

    @Argument(help: "Model folder, .safetensors, .gguf or .h5 file.")
    var path: String

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() throws {
        try reportingFailures {
            let report = try Inspection.inspect(path)
            print(json ? report.json.serialized(indent: 2) : report.text)
        }
    }
}
