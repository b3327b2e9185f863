import Foundation
import Testing
import VaneCore
import VaneMath
import VaneMathAVX512

/// The AVX-512 build of the LSTM cell (sixteen lanes) against the AVX2 build (eight): the same
/// arithmetic lane by lane, so equal bit for bit, for hidden sizes with and without a tail and
/// both gate orders. Runs only on a CPU with AVX-512.
@Suite("AVX-512 kernels", .enabled(if: CPUFeatures.current.avx512))
struct WideLanesTests {
  struct Case: Sendable, CustomStringConvertible {
    var hidden: Int
    var order: Logistic.LSTMGateOrder
    var description: String { "hidden \(hidden), \(order)" }
  }

  @Test(
    "The sixteen-lane LSTM cell equals the eight-lane one bit for bit",
    arguments: [3, 8, 16, 24, 64, 70].flatMap { hidden in
      [
        Case(hidden: hidden, order: .inputForgetCellOutput),
        Case(hidden: hidden, order: .inputOutputForgetCell),
      ]
    }
  )
  func lstmCell(_ c: Case) {
    var random = SeededRandom(
      seed: UInt64(c.hidden * 2 + (c.order == .inputForgetCellOutput ? 0 : 1))
    )
    func values(_ count: Int, _ scale: Double) -> [Float] {
      (0 ..< count).map { _ in Float(Double.random(in: -scale ... scale, using: &random)) }
    }
    let H = c.hidden
    // Wide enough to reach both tanh branches and the sigmoid's clamp.
    let gates = values(4 * H, 12), bias = values(4 * H, 1), previous = values(H, 3)
    func run(_ wide: Bool, keep: Bool = true) -> [Float] {
      var row = gates, cell = previous
      var cellTanh = [Float](repeating: 0, count: H), output = cellTanh
      row.withUnsafeMutableBufferPointer { row in
        cell.withUnsafeMutableBufferPointer { cell in
          cellTanh.withUnsafeMutableBufferPointer { cellTanh in
            output.withUnsafeMutableBufferPointer { output in
              let kernel = wide ? LogisticAVX512.lstmCell : Logistic.lstmCell
              kernel(
                row.baseAddress!,
                bias,
                H,
                cell.baseAddress!,
                cell.baseAddress!,
                cellTanh.baseAddress!,
                output.baseAddress!,
                c.order,
                keep
              )
            }
          }
        }
      }
      return row + cell + cellTanh + output
    }
    let narrow = run(false), wide = run(true)
    #expect(narrow.map(\.bitPattern) == wide.map(\.bitPattern))
    // Inference: the same cell and output, the gates and tanh(c) left as they were.
    for wideLanes in [false, true] {
      let inference = run(wideLanes, keep: false)
      let kept =
        (gates + Array(narrow[(4 * H) ..< (5 * H)]) + [Float](repeating: 0, count: H)
          + Array(narrow[(6 * H)...]))
      #expect(inference.map(\.bitPattern) == kept.map(\.bitPattern))
    }
  }

  struct Shape: Sendable, CustomStringConvertible {
    var rows: Int
    var columns: Int
    var descending: Bool
    var description: String { "\(rows) × \(columns)\(descending ? ", descending" : "")" }
  }

  /// Column counts for every path of the sixteen-lane kernel: whole passes of two blocks, a
  /// block left over, a tail of whole lane groups and single columns, and a tail alone.
  @Test(
    "The sixteen-lane row combination equals the eight-lane one bit for bit",
    arguments: [(64, 256), (17, 256), (16, 64), (48, 192), (6, 96), (5, 200), (3, 40), (1, 7)]
      .flatMap { rows, columns in
        [false, true].map { Shape(rows: rows, columns: columns, descending: $0) }
      }
  )
  func rowCombination(_ shape: Shape) {
    var random = SeededRandom(seed: UInt64(shape.rows * 1_000 + shape.columns))
    let a = (0 ..< shape.rows * shape.columns).map { _ in
      Float(Double.random(in: -1 ... 1, using: &random))
    }
    let x = (0 ..< shape.rows).map { _ in Float(Double.random(in: -2 ... 2, using: &random)) }
    let blocked = AlignedFloats(count: a.count) { out in
      BLAS.rowBlocked(a, rows: shape.rows, columns: shape.columns, into: out.baseAddress!)
    }
    func run(_ wide: Bool) -> [Float] {
      var y = [Float](repeating: .nan, count: shape.columns)
      blocked.withUnsafeBufferPointer { blocked in
        y.withUnsafeMutableBufferPointer { y in
          let kernel = wide ? BLASAVX512.rowCombination : BLAS.rowCombination
          kernel(
            x,
            blocked.baseAddress!,
            shape.rows,
            shape.columns,
            y.baseAddress!,
            shape.descending
          )
        }
      }
      return y
    }
    let narrow = run(false), wide = run(true)
    #expect(narrow.map(\.bitPattern) == wide.map(\.bitPattern))
    // And both are the product, in double within float rounding.
    let exact = (0 ..< shape.columns).map { j in
      (0 ..< shape.rows).reduce(0.0) { $0 + Double(x[$1]) * Double(a[$1 * shape.columns + j]) }
    }
    #expect(zip(wide, exact).allSatisfy { abs(Double($0) - $1) <= 1e-5 * Double(shape.rows) })
  }
}

/// The AVX-512 module must not define a shared (weak) function that another module could also
/// define: the linker keeps one copy of such a symbol for the whole program, and an AVX-512
/// copy would stop a CPU without it. Its weak symbols are its own (mangled with its name) or
/// the runtime's small helpers, which must hold no vector instructions. Reads the objects of
/// the build the tests run from.
@Suite("AVX-512 module isolation", .enabled(if: AVX512Objects.list != nil))
struct WideLanesIsolationTests {
  static func tool(_ name: String) -> String? { AVX512Objects.tool(name) }

  static func output(_ tool: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: Self.tool(tool)!)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
  }

  @Test("Weak symbols are the module's own, or runtime helpers with no vector instructions")
  func weakSymbols() throws {
    for object in try #require(AVX512Objects.list) {
      let symbols = try Self.output("nm", ["--defined-only", object.path])
        .split(separator: "\n").compactMap { line -> String? in
          let fields = line.split(separator: " ")
          return fields.count == 3 && fields[1] == "W" ? String(fields[2]) : nil
        }
      for symbol in symbols where !symbol.contains("14VaneMathAVX512") {
        let helper =
          symbol.hasPrefix("__swift_instantiateConcreteTypeFromMangledName")
          || symbol.hasSuffix("Wl")
        #expect(helper, "\(object.lastPathComponent) defines the shared symbol \(symbol)")
        let code = try Self.output("objdump", ["-d", "--disassemble=\(symbol)", object.path])
        #expect(!code.contains("mm"), "\(symbol) holds vector instructions:\n\(code)")
      }
    }
  }
}

/// The object files of VaneMathAVX512 in the build the tests run from (nil when there are none
/// or nm and objdump are missing).
enum AVX512Objects {
  static let list: [URL]? = {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .deletingLastPathComponent().deletingLastPathComponent()
    guard tool("nm") != nil, tool("objdump") != nil else { return nil }
    for configuration in ["debug", "release"] {
      let directory = root.appendingPathComponent(".build/\(configuration)/VaneMathAVX512.build")
      let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
      let objects = files.filter { $0.hasSuffix(".o") }.map { directory.appendingPathComponent($0) }
      if !objects.isEmpty { return objects }
    }
    return nil
  }()

  static func tool(_ name: String) -> String? {
    ["/usr/bin/", "/bin/"].map { $0 + name }.first {
      FileManager.default.isExecutableFile(atPath: $0)
    }
  }
}
