import Foundation
import GRPCCore
import Logging
import Testing
import VaneBundle
import VaneCore
import VaneProto
import VaneQuality
import VaneRuntime
import VaneServing
import VaneTestSupport
import GatekeeperService

@testable import TrainerService

/// The trainer's ImportModel over the shim: a LightGBM file becomes a bundle in the trainer's
/// bundle directory, the gatekeeper judges and blesses it on the OOF predictions it came with,
/// and one without them is refused a judgement.
@Suite("Trainer: ImportModel")
struct ModelImportServiceTests {
  typealias Trainer = Vane_V1_TrainerService.Client<AnyClientTransport>

  static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent()
    .appendingPathComponent("VaneModelsTests/Fixtures/lightgbm")

  static let mapping = """
    symbols: [BTCUSDT]
    interval: 1h
    classes: [DOWN, UP]
    horizon: 1
    id: lgbm-btc-imported
    columns: [rsi_14, natr_14, macd_hist_rel, bb_pctb_20, adx_14, plus_di_14, minus_di_14, mfi_14, stoch_k, stoch_d, willr_14, cci_20, roc_10]
    """

  /// Well-calibrated binary OOF predictions as a predictions CSV.
  static func oofCSV() -> String {
    let predictions = GatekeeperServiceTests.predictions(25_000, seed: 1)
    var csv = "label,DOWN,UP,fold\n"
    for i in 0 ..< Int(predictions.sampleCount) {
      csv +=
        "\(predictions.labels[i] == 1 ? "UP" : "DOWN"),\(predictions.values[2 * i]),\(predictions.values[2 * i + 1]),\(predictions.foldIds[i])\n"
    }
    return csv
  }

  @Test(
    "ImportModel writes a servable bundle, validate_only writes nothing, a second import of the id is ALREADY_EXISTS, bad input names its field"
  )
  func importOverTheShim() async throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-import-rpc-\(UUID().uuidString)"
    )
    defer { try? FileManager.default.removeItem(at: root) }
    let info = RuntimeInfo(
      kind: .trainer,
      configuredAddress: "127.0.0.1:0",
      dataDirectory: root.path,
      tls: false,
      adminAuth: .loopbackOnly
    )
    let trainer = try TrainerServiceImplementation(
      runtime: info,
      config: TrainerConfig(featureAddress: "127.0.0.1:1", gatekeeperAddress: "127.0.0.1:1"),
      logger: Logger(label: "test")
    )
    let model = try Data(contentsOf: Self.fixtures.appendingPathComponent("binary_nan.txt"))
    let oof = Self.oofCSV()
    try await withServer(.shim, services: [trainer]) { client, _ in
      let client = Trainer(wrapping: client)
      var request = Vane_V1_ImportModelRequest.with {
        $0.model = model
        $0.modelFileName = "binary_nan.txt"
        $0.mapping = Self.mapping
        $0.outOfFold = oof
        $0.validateOnly = true
      }
      let dry = try await client.importModel(request)
      #expect(
        dry.bundle.path.isEmpty && dry.bundle.bundleID == "lgbm-btc-imported"
          && dry.format == "lightgbm" && dry.blessable
      )
      #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("bundles").path))

      request.validateOnly = false
      let imported = try await client.importModel(request)
      let path = root.appendingPathComponent("bundles/lgbm-btc-imported.tar.gz").path
      #expect(
        imported.bundle.path == path && imported.bundle.manifestSha256.count == 64
          && imported.columns.count == 13 && imported.notes.count == 1
      )
      let bundle = try ModelBundle.open(path: path)
      #expect(
        bundle.manifestSHA256 == imported.bundle.manifestSha256
          && bundle.manifest.models.map(\.kind) == [.lightgbm]
      )
      #expect(try bundle.outOfFold().labels.count == 25_000)
      _ = try ServableModel(bundle: bundle)

      let again = await GatekeeperServiceTests.code { _ = try await client.importModel(request) }
      #expect(again?.0 == .alreadyExists && again?.1.contains("lgbm-btc-imported") == true)

      // The same file by path, without OOF, under another id: servable but not blessable.
      let byPath = try await client.importModel(
        .with {
          $0.modelPath = Self.fixtures.appendingPathComponent("binary_nan.txt").path
          $0.mapping = Self.mapping.replacingOccurrences(
            of: "id: lgbm-btc-imported",
            with: "id: lgbm-btc-plain"
          )
        }
      )
      #expect(!byPath.blessable && byPath.notes.contains { $0.contains("cannot judge or bless") })

      for (change, field): (@Sendable (inout Vane_V1_ImportModelRequest) -> Void, String) in [
        ({ $0.mapping = "symbols: [BTCUSDT]" }, "interval is required"),
        (
          { $0.mapping = Self.mapping.replacingOccurrences(of: "rsi_14, ", with: "") },
          "columns: 12 columns mapped; the model reads 13 features"
        ),
        ({ $0.model = Data("tree\nversion=v4\n".utf8) }, "model: lightgbm:"),
        ({ $0.outOfFold = "label,UP,DOWN\nUP,0.5,0.5\n" }, "out_of_fold: its class columns"),
        ({ $0.modelPath = "relative.txt" }, "model_path: give model or model_path, not both"),
        ({ $0.calibration = #"{"method": "magic"}"# }, "calibration: method 'magic'"),
      ] {
        var bad = request
        bad.mapping = bad.mapping.replacingOccurrences(
          of: "id: lgbm-btc-imported",
          with: "id: other"
        )
        change(&bad)
        let refused = await GatekeeperServiceTests.code { _ = try await client.importModel(bad) }
        #expect(
          refused?.0 == .invalidArgument && refused?.1.contains(field) == true,
          "\(String(describing: refused))"
        )
      }
    }

    // The gatekeeper judges the imported bundle on its OOF predictions and blesses it; the
    // one without them is refused a judgement. (Its bundle root is its data directory: the
    // trainer's here.)
    try await GatekeeperServiceTests.withGatekeeper(directory: root) { gatekeeper, _ in
      let path = root.appendingPathComponent("bundles/lgbm-btc-imported.tar.gz").path
      // The default policy's input gates need the scaled training inputs' statistics, which an
      // import does not have (they fail unmeasured): a policy without them judges it.
      let strict = try await gatekeeper.evaluate(.with { $0.bundle = .with { $0.path = path } })
      #expect(Set(strict.gates.filter { !$0.passed }.map(\.gate)) == ["input_mean", "input_std"])
      let text = QualityPolicy.defaultYAML
      let cut =
        text.range(of: "  - name: input_mean")!.lowerBound
        ..< text.range(of: "  - name: finite")!.lowerBound
      _ = try await gatekeeper.setPolicy(
        .with {
          $0.name = "imported"
          $0.text = text.replacingCharacters(in: cut, with: "")
        }
      )
      let report = try await gatekeeper.evaluate(
        .with {
          $0.bundle = .with { $0.path = path }
          $0.policyName = "imported"
        }
      )
      #expect(report.subject.sampleCount == 25_000 && report.metrics["auc"]! > 0.6)
      #expect(report.passed, "\(report.gates.filter { !$0.passed }.map(\.reason))")
      let verdict = try await gatekeeper.bless(
        .with {
          $0.reportID = report.id
          $0.bundlePath = path
        }
      )
      #expect(verdict.manifestSha256 == (try ModelBundle.open(path: path)).manifestSHA256)
      let plain = root.appendingPathComponent("bundles/lgbm-btc-plain.tar.gz").path
      let refused = await GatekeeperServiceTests.code {
        _ = try await gatekeeper.evaluate(.with { $0.bundle = .with { $0.path = plain } })
      }
      #expect(
        refused?.0 == .failedPrecondition
          && refused?.1.contains("no out-of-fold predictions") == true,
        "\(String(describing: refused))"
      )
    }
  }
}
