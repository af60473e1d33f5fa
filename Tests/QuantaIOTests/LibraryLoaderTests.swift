import CLibraryLoader
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The loader behind the CBLAS and CHDF5 modules: a library that is not installed is reported
/// with the names tried, not a crash; one that is opens once and resolves its symbols.
final class LibraryLoaderTests: XCTestCase {
    /// A `quanta_library` that lives as long as the process (the loader keys its table by address).
    private func library(_ what: String, _ names: [String]) -> UnsafeMutablePointer<quanta_library> {
        let list = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: names.count + 1)
        for (i, name) in names.enumerated() { list[i] = UnsafePointer(strdup(name)) }
        list[names.count] = nil
        let library = UnsafeMutablePointer<quanta_library>.allocate(capacity: 1)
        library.initialize(to: quanta_library(what: strdup(what), names: list, hint: strdup("install it"), global: 0))
        return library
    }

    func testMissingLibraryIsReportedWithTheNamesTried() {
        let missing = library("Missing", ["libquanta-missing.so.9", "libquanta-missing.so"])
        XCTAssertNil(quanta_library_handle(missing))
        let error = String(cString: quanta_library_error(missing))
        XCTAssertTrue(error.contains("libquanta-missing.so.9") && error.contains("libquanta-missing.so:"), error)
        XCTAssertNil(quanta_library_handle(missing), "asking again gives the same answer")
    }

    func testInstalledLibraryOpensOnceAndResolvesSymbols() throws {
        #if os(Linux)
        let libm = library("libm", ["libquanta-missing.so.9", "libm.so.6"])
        let handle = try XCTUnwrap(quanta_library_handle(libm))
        XCTAssertEqual(quanta_library_handle(libm), handle)
        XCTAssertEqual(String(cString: quanta_library_error(libm)), "")
        typealias Unary = @convention(c) (Double) -> Double
        let sqrt = unsafeBitCast(quanta_library_symbol(libm, "sqrt"), to: Unary.self)
        XCTAssertEqual(sqrt(6.25), 2.5)
        #endif
    }
}
