#if canImport(Glibc)
import Glibc
#endif

@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

nonisolated(unsafe) private var harness: ((UnsafeRawBufferPointer) -> Void)?

/// Runs libFuzzer's driver (its command-line options, corpus folders, crash files) with
/// `body` as the function under test. `body` must not crash, trap, leak or hang on any input.
public func fuzzMain(_ body: @escaping (UnsafeRawBufferPointer) -> Void) -> Never {
    harness = body
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    let code = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        harness!(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }
    exit(code)
}
