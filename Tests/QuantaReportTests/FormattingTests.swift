import QuantaReport
import XCTest

final class FormattingTests: XCTestCase {
    func testFixedAndGrouped() {
        XCTAssertEqual(fixed(3.14159, 2), "3.14")
        XCTAssertEqual(fixed(-0.004, 2), "0.00")
        XCTAssertEqual(fixed(-1.005, 1), "-1.0")
        XCTAssertEqual(fixed(2.5, 0), "3")
        XCTAssertEqual(fixed(1234.5678, 0), "1235")
        XCTAssertEqual(fixed(0.000123, 6), "0.000123")
        XCTAssertEqual(fixed(.infinity, 2), "inf")
        XCTAssertEqual(grouped(1234567), "1,234,567")
        XCTAssertEqual(grouped(-999), "-999")
        XCTAssertEqual(megabytes(27_276_288), "27.28 MB")
    }

    /// Found by the report fuzzer's rendering: a number past Int64 once scaled trapped.
    func testFixedBeyondInt64() {
        XCTAssertEqual(fixed(1e300, 4), "1e+300")
        XCTAssertEqual(fixed(-9.3e18, 0), "-9.3e+18")
        XCTAssertEqual(fixed(9.3e17, 1), "9.3e+17")
        XCTAssertEqual(fixed(9.2e17, 1), "920000000000000000.0")
        XCTAssertEqual(megabytes(Int.max), "9223372036854.78 MB")
    }

    /// A report read from a file renders whatever numbers it holds.
    func testReportWithExtremeNumbersRenders() {
        var report = ComparisonReport()
        var row = ComparisonReport.Row(scheme: "rtn:Q4_0", method: "rtn", format: "Q4_0", calibration: "", evaluation: "e", runtime: "fp32")
        row.perplexity = 1e300
        row.bytes = Int.max
        row.meanKLD = 5e-324
        report.rows = [row]
        report.evaluationTexts = [ComparisonReport.Input(name: "e", path: "e.txt", sha256: "00")]
        let markdown = report.markdown
        XCTAssertTrue(markdown.contains("| 9223372036854.776 | 0.000 | 1e+300 | 0.000 | 0.000 | 5e-324 |"), markdown)
        XCTAssertTrue(report.html.contains("<td>1e+300</td>"), report.html)
    }
}
