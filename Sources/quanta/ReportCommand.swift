import ArgumentParser
import QuantaCore
import QuantaIO
import QuantaReport

/// `quanta report merge PARTS... --out DIR`: join the partial reports of a sharded comparison.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Work with comparison reports.",
        subcommands: [Merge.self]
    )

    struct Merge: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "merge",
            abstract: "Merge the partial reports of `quanta compare --shard` into the report a single run writes."
        )

        @Argument(help: "Partial report.json files.") var parts: [String]
        @Option(help: "Report folder to write (report.json, report.md, report.html).") var out: String

        func validate() throws {
            guard !parts.isEmpty else { throw ValidationError("give the partial reports") }
        }

        func run() throws {
            try reportingFailures {
                let merged = try ComparisonReport.merge(try parts.map { ($0, try ComparisonReport.read($0)) })
                try merged.write(to: out)
                print("wrote \(FileSystem.join(out, "report.json")): \(merged.rows.count) rows from \(parts.count) parts")
            }
        }
    }
}
