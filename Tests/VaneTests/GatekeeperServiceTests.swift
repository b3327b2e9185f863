import Foundation
import GRPCCore
import SwiftProtobuf
import Testing
import VaneBundle
import VaneCore
import VaneProto
import VaneRuntime
import VaneTestSupport
import GatekeeperService

/// The gatekeeper over the wire: calibration, evaluation of inline and bundle subjects against
/// stored policies, reports, blessings and their verification.
@Suite("Gatekeeper service")
struct GatekeeperServiceTests {
  typealias Client = Vane_V1_GatekeeperService.Client<AnyClientTransport>

  /// Runs `body` against a gatekeeper whose data directory is `directory` (a fresh one when nil).
  static func withGatekeeper<R: Sendable>(
    _ transport: TransportKind = .inProcess,
    directory: URL? = nil,
    _ body: @Sendable (Client, URL) async throws -> R
  ) async throws -> R {
    let fresh = directory == nil
    let directory =
      directory
      ?? FileManager.default.temporaryDirectory.appendingPathComponent(
        "vane-gate-\(UUID().uuidString)"
      )
    defer { if fresh { try? FileManager.default.removeItem(at: directory) } }
    let info = RuntimeInfo(
      kind: .gatekeeper,
      configuredAddress: "127.0.0.1:0",
      dataDirectory: directory.path,
      tls: false,
      adminAuth: .loopbackOnly
    )
    return try await withServer(
      transport,
      services: [try GatekeeperServiceImplementation(runtime: info)]
    ) { client, _ in
      try await body(Client(wrapping: client), directory)
    }
  }

  /// n binary samples with outcomes drawn from σ(z); the model's logit is `logit(z, u)`.
  static func predictions(
    _ n: Int,
    seed: UInt64,
    logit: (Double, Double) -> Double = { z, _ in z }
  ) -> Vane_V1_Predictions {
    var rng = SplitMix64(seed: seed)
    var values: [Double] = [], labels: [Int32] = [], folds: [Int32] = []
    for i in 0 ..< n {
      let z = Double.random(in: -2 ... 2, using: &rng)
      labels.append(Double.random(in: 0 ..< 1, using: &rng) < 1 / (1 + exp(-z)) ? 1 : 0)
      let p = 1 / (1 + exp(-logit(z, Double.random(in: 0 ..< 1, using: &rng))))
      values += [1 - p, p]
      folds.append(Int32(i * 5 / n))
    }
    return .with {
      $0.sampleCount = UInt32(n)
      $0.classes = ["DOWN", "UP"]
      $0.values = values
      $0.labels = labels
      $0.foldIds = folds
    }
  }

  static let inputs = Vane_V1_InputSummary.with {
    $0.columns = ["ret_1h", "rsi_14"]
    $0.mean = [0.01, -0.02]
    $0.std = [1.02, 0.97]
  }

  static func inline(
    _ predictions: Vane_V1_Predictions,
    manifest: String = "",
    interval: String = "1h"
  ) -> Vane_V1_EvaluateRequest {
    .with {
      $0.inline = .with {
        $0.predictions = predictions
        $0.manifestSha256 = manifest
        $0.interval = interval
        $0.inputs = Self.inputs
        $0.label = "test"
      }
    }
  }

  static func code(_ body: () async throws -> Void) async -> (RPCError.Code, String)? {
    do {
      try await body()
      return nil
    } catch let error as RPCError {
      return (error.code, error.message)
    } catch {
      return (.unknown, "\(error)")
    }
  }

  static let manifest = String(repeating: "ab", count: 32)

  @Test(
    "Evaluate → stored report → Bless → VerifyBlessing, over both transports",
    arguments: TransportKind.allCases
  )
  func evaluateBlessVerify(transport: TransportKind) async throws {
    try await Self.withGatekeeper(transport) { client, _ in
      let report = try await client.evaluate(
        Self.inline(Self.predictions(25_000, seed: 1), manifest: Self.manifest)
      )
      #expect(report.passed, "\(report.gates.filter { !$0.passed }.map(\.reason))")
      #expect(
        !report.id.isEmpty && report.policyName == "default" && report.subject.sampleCount == 25_000
      )
      #expect(
        report.gates.map(\.gate) == [
          "base_auc", "stacked_auc", "oof_samples", "overconfidence", "class_share_min",
          "class_share_max", "logit_range", "input_mean", "input_std", "finite",
        ]
      )
      #expect(
        report.folds.count == 5 && report.reliability.map(\.target) == ["top_label", "DOWN", "UP"]
      )
      #expect(report.metrics["auc"]! > 0.6 && report.metrics["n"] == 25_000)
      #expect(try await client.getReport(.with { $0.reportID = report.id }) == report)

      let verdict = try await client.bless(
        .with {
          $0.reportID = report.id
          $0.manifestSha256 = Self.manifest
        }
      )
      #expect(
        verdict.manifestSha256 == Self.manifest && verdict.reportID == report.id
          && verdict.signature.count == 64
      )
      let valid = try await client.verifyBlessing(
        .with {
          $0.verdict = verdict
          $0.manifestSha256 = Self.manifest
        }
      )
      #expect(valid.valid && valid.failure == .unspecified)
      let other = try await client.verifyBlessing(
        .with {
          $0.verdict = verdict
          $0.manifestSha256 = String(repeating: "cd", count: 32)
        }
      )
      #expect(!other.valid && other.failure == .subjectMismatch)
      var forged = verdict
      forged.policyName = "lenient"
      #expect(
        try await client.verifyBlessing(.with { $0.verdict = forged }).failure == .statementMismatch
      )
      forged = verdict
      forged.signature[5] ^= 1
      #expect(
        try await client.verifyBlessing(.with { $0.verdict = forged }).failure == .badSignature
      )
    }
  }

  @Test("A failing report names its gate, and cannot be blessed; a dry run is not stored")
  func failing() async throws {
    try await Self.withGatekeeper { client, _ in
      let overconfident = try await client.evaluate(
        Self.inline(Self.predictions(25_000, seed: 2) { z, _ in z * 12 }, manifest: Self.manifest)
      )
      #expect(!overconfident.passed)
      let gate = try #require(overconfident.gates.first { $0.gate == "overconfidence" })
      #expect(
        !gate.passed && gate.reason.contains("overconfident") && gate.value > 0.1
          && gate.threshold == 0.1 && gate.comparison == .lessThan
      )
      let refused = await Self.code {
        _ = try await client.bless(
          .with {
            $0.reportID = overconfident.id
            $0.manifestSha256 = Self.manifest
          }
        )
      }
      #expect(refused?.0 == .failedPrecondition && refused?.1.contains("overconfidence") == true)

      var dry = Self.inline(Self.predictions(25_000, seed: 3))
      dry.dryRun = true
      let report = try await client.evaluate(dry)
      #expect(report.id.isEmpty && report.passed)
      let listed = try await client.listReports(.init())
      #expect(listed.reports.map(\.id) == [overconfident.id])
      // Details only on request.
      #expect(listed.reports[0].reliability.isEmpty && listed.reports[0].folds.isEmpty)
      #expect(
        try await client.listReports(.with { $0.includeDetails = true }).reports[0].reliability
          .count == 3
      )
      #expect(try await client.listReports(.with { $0.passed = true }).reports.isEmpty)
      // A passing report that names no manifest cannot back a blessing either.
      let unnamed = try await client.evaluate(Self.inline(Self.predictions(25_000, seed: 3)))
      let noManifest = await Self.code {
        _ = try await client.bless(
          .with {
            $0.reportID = unnamed.id
            $0.manifestSha256 = Self.manifest
          }
        )
      }
      #expect(
        noManifest?.0 == .failedPrecondition
          && noManifest?.1.contains("names no bundle manifest") == true
      )
    }
  }

  @Test("Bad requests are refused naming the field")
  func badRequests() async throws {
    try await Self.withGatekeeper { client, directory in
      var short = Self.predictions(100, seed: 4)
      short.labels.removeLast()
      var outOfRange = Self.predictions(100, seed: 4)
      outOfRange.labels[7] = 2
      var notSummingToOne = Self.predictions(100, seed: 4)
      notSummingToOne.values[6] = 0.9
      notSummingToOne.values[7] = 0.9
      let cases: [(Vane_V1_EvaluateRequest, RPCError.Code, String)] = [
        (.init(), .invalidArgument, "subject"),
        (Self.inline(short), .invalidArgument, "inline.predictions.labels"),
        (Self.inline(outOfRange), .invalidArgument, "inline.predictions.labels[7]"),
        (Self.inline(notSummingToOne), .invalidArgument, "inline.predictions.values[6...]"),
        (
          Self.inline(Self.predictions(100, seed: 4), interval: "2h"), .invalidArgument,
          "inline.interval"
        ),
        (
          .with {
            $0.inline = Self.inline(Self.predictions(100, seed: 4)).inline
            $0.policyName = "nope"
          }, .notFound, "policy 'nope'"
        ),
        (
          .with {
            $0.inline = Self.inline(Self.predictions(100, seed: 4)).inline
            $0.baselineReportID = "r0"
          }, .notFound, "report 'r0'"
        ),
        (.with { $0.bundle.path = "relative/bundle.tar.gz" }, .invalidArgument, "bundle.path"),
        (
          .with { $0.bundle.path = directory.appendingPathComponent("nonexistent.tar.gz").path },
          .notFound, "does not exist"
        ),
        // Outside the bundle roots: refused unopened, saying nothing of what is there.
        (
          .with { $0.bundle.path = "/nonexistent/bundle.tar.gz" }, .permissionDenied,
          "--bundle-root"
        ),
        (.with { $0.bundle.path = "/etc" }, .permissionDenied, "--bundle-root"),
        (
          .with { $0.bundle.path = directory.appendingPathComponent("../../etc").path },
          .permissionDenied, "--bundle-root"
        ),
        (
          .with { $0.bundle.path = directory.appendingPathComponent("escape").path },
          .permissionDenied, "--bundle-root"
        ),
      ]
      try FileManager.default.createSymbolicLink(
        atPath: directory.appendingPathComponent("escape").path,
        withDestinationPath: "/etc"
      )
      for (request, code, text) in cases {
        let error = await Self.code { _ = try await client.evaluate(request) }
        #expect(
          error?.0 == code && error?.1.contains(text) == true,
          "\(text): \(String(describing: error))"
        )
        #expect(
          error?.1.contains("rc2.d") != true && error?.1.contains("passwd") != true,
          "\(String(describing: error))"
        )
      }
    }
  }

  @Test(
    "Calibrate: AUTO tries each method by cross-validated NLL; cross-fit reports honest after-metrics; refusals"
  )
  func calibrate() async throws {
    try await Self.withGatekeeper { client, _ in
      let overconfident = Self.predictions(5_000, seed: 5) { z, _ in 3 * z }
      let auto = try await client.calibrate(
        .with {
          $0.predictions = overconfident
          $0.crossFit = true
        }
      )
      #expect(auto.candidates.map(\.method) == [.temperature, .platt, .isotonic])
      #expect(auto.candidates.filter(\.selected).map(\.method) == [auto.calibration.method])
      #expect(
        auto.afterIsCrossFitted
          && auto.metricsAfter["log_loss"]! < auto.metricsBefore["log_loss"]! - 0.05
      )
      #expect(auto.metricsAfter["ece"]! < auto.metricsBefore["ece"]!)
      #expect(
        auto.reliabilityBefore.count == 3 && auto.calibration.classes == ["DOWN", "UP"]
          && auto.calibration.sampleCount == 5_000
      )
      let temperature = try await client.calibrate(
        .with {
          $0.predictions = overconfident
          $0.method = .temperature
        }
      )
      let parameters =
        try JSONSerialization.jsonObject(with: Data(temperature.calibration.parametersJson.utf8))
        as? [String: Double]
      #expect(
        abs((parameters?["temperature"] ?? 0) - 3) < 0.3,
        "\(temperature.calibration.parametersJson)"
      )
      #expect(temperature.candidates.isEmpty && !temperature.afterIsCrossFitted)

      var three = Vane_V1_Predictions.with {
        $0.sampleCount = 60
        $0.classes = ["DOWN", "HOLD", "UP"]
      }
      for i in 0 ..< 60 {
        three.values += [0.2, 0.3, 0.5]
        three.labels.append(Int32(i % 3))
      }
      var nan = Self.predictions(100, seed: 6)
      nan.values[10] = .nan
      nan.values[11] = .nan
      let cases: [(Vane_V1_CalibrateRequest, String)] = [
        (.with { $0.predictions = Self.predictions(49, seed: 6) }, "at least 50 samples"),
        (
          .with {
            $0.predictions = three
            $0.method = .platt
          }, "Platt scaling is for binary"
        ),
        (.with { $0.predictions = nan }, "NaN or infinite"),
        (
          .with {
            $0.predictions = Self.predictions(500, seed: 6)
            $0.method = .isotonic
          }, "at least 1000 samples"
        ),
        (.init(), "predictions"),
      ]
      for (request, text) in cases {
        let error = await Self.code { _ = try await client.calibrate(request) }
        #expect(
          error?.0 == .invalidArgument && error?.1.contains(text) == true,
          "\(text): \(String(describing: error))"
        )
      }
    }
  }

  @Test(
    "Policies: the default one, SetPolicy with line:column errors and optimistic locking, evaluation under a new one"
  )
  func policies() async throws {
    try await Self.withGatekeeper { client, _ in
      let initial = try await client.getPolicy(.init())
      #expect(initial.name == "default" && initial.isDefault && initial.gates.count == 10)
      #expect(
        initial.gates.first { $0.name == "oof_samples" }?.intervalThresholds == [
          "1h": 20_000, "4h": 8_000,
        ]
      )
      let bad = await Self.code {
        _ = try await client.setPolicy(
          .with {
            $0.name = "strict"
            $0.text = "name: s\ngates:\n  - {name: a, metric: aucc, op: '>=', threshold: 0.5}\n"
          }
        )
      }
      #expect(
        bad?.0 == .invalidArgument
          && bad?.1.contains("text:3:23: gates[0].metric: unknown metric 'aucc'") == true,
        "\(String(describing: bad))"
      )
      let text = """
        name: strict
        gates:
          - {name: auc, metric: auc, op: ">=", threshold: 0.9}
          - {name: vs_prod, metric: log_loss, op: "<=", threshold: 0.001, reference: baseline_delta, skip_without_baseline: true}
        """
      let strict = try await client.setPolicy(
        .with {
          $0.name = "strict"
          $0.text = text
        }
      )
      #expect(
        strict.format == .yaml && !strict.isDefault
          && strict.gates.map(\.name) == ["auc", "vs_prod"]
          && strict.gates[1].reference == .baselineDelta
      )
      let stale = await Self.code {
        _ = try await client.setPolicy(
          .with {
            $0.name = "strict"
            $0.text = text
            $0.expectedSha256 = initial.sha256
          }
        )
      }
      #expect(stale?.0 == .aborted)
      #expect(try await client.listPolicies(.init()).policies.map(\.name) == ["default", "strict"])

      var request = Self.inline(Self.predictions(25_000, seed: 7))
      request.policyName = "strict"
      let first = try await client.evaluate(request)
      #expect(
        !first.passed && first.gates[0].reason.contains("chance") && first.gates[1].skipped
          && first.policyName == "strict"
      )
      // Against a stored baseline report, the relative gate is checked (and passes: same data).
      request.baselineReportID = first.id
      let second = try await client.evaluate(request)
      #expect(
        second.gates[1].passed && !second.gates[1].skipped && second.baselineReportID == first.id
          && second.gates[1].comparedValue == 0
      )
    }
  }

  /// A bundle of a stacked model: the meta-learner's OOF predictions as logits (temperature 2
  /// too confident), two base models, a temperature calibration, input summary.
  static func writeBundle(
    to path: String,
    id: String = "btcusdt-1h-test",
    calibrate: Bool = true
  ) throws -> String {
    let meta = Self.predictions(25_000, seed: 8) { z, _ in 2 * z }
    let weak = Self.predictions(25_000, seed: 8) { _, u in u - 0.5 }
    let labels = meta.labels.map(Int.init)
    let logits = stride(from: 0, to: meta.values.count, by: 2).flatMap { i -> [Double] in
      let p = meta.values[i + 1]
      return [0, log(p / (1 - p))]
    }
    let oof = OutOfFold(
      labels: labels,
      foldIds: meta.foldIds.map(Int.init),
      final: "stack",
      models: [
        "stack": .init(values: logits, valuesAreLogits: true),
        "xgb": .init(values: meta.values, valuesAreLogits: false),
        "weak": .init(values: weak.values, valuesAreLogits: false),
      ],
      inputs: .init(columns: ["a", "b"], mean: [0.01, 0.02], std: [1.01, 0.99])
    )
    let manifest = BundleManifest(
      id: id,
      created: "2026-11-22T00:00:00Z",
      symbols: ["BTCUSDT"],
      interval: "1h",
      task: .init(kind: "binary", classes: ["DOWN", "UP"], horizons: [1]),
      featureSet: .init(id: "v1", sha256: "00", columns: ["a", "b"]),
      models: [.init(name: "stack", kind: .stack, file: "models/stack.json", role: .meta)],
      calibration: calibrate
        ? .init(method: "temperature", parameters: #"{"temperature":2}"#) : nil,
      outOfFold: .init(file: "reports/oof.json")
    )
    return try ModelBundle.write(
      manifest,
      files: ["models/stack.json": Data("{}".utf8), "reports/oof.json": try oof.encoded()],
      to: path
    ).sha256
  }

  @Test(
    "A bundle is evaluated from its stored OOF predictions, calibrated; blessed by path; a changed bundle no longer verifies"
  )
  func bundle() async throws {
    try await Self.withGatekeeper { client, directory in
      let path = directory.appendingPathComponent("bundle.tar.gz").path
      let hash = try Self.writeBundle(to: path)
      let report = try await client.evaluate(.with { $0.bundle.path = path })
      #expect(
        report.subject.kind == .bundle && report.subject.manifestSha256 == hash
          && report.subject.bundleID == "btcusdt-1h-test"
      )
      #expect(
        report.metrics["base_auc/xgb"] != nil
          && report.metrics["base_auc_min"] == report.metrics["base_auc/weak"]
      )
      // The weak base model fails base_auc (named), the calibrated stack passes the rest.
      let base = try #require(report.gates.first { $0.gate == "base_auc" })
      #expect(!base.passed && base.reason.contains("base model weak"), "\(base.reason)")
      let others = report.gates.filter { $0.gate != "base_auc" }
      let allPassed = others.allSatisfy(\.passed)
      #expect(allPassed, "\(others.map(\.reason))")
      #expect(report.metrics["max_abs_logit"] == nil || report.metrics["max_abs_logit"]! < 15)
      // Uncalibrated, the same stack is 2× too confident: a worse ECE.
      let raw = directory.appendingPathComponent("raw.tar.gz").path
      _ = try Self.writeBundle(to: raw, calibrate: false)
      let uncalibrated = try await client.evaluate(
        .with {
          $0.bundle.path = raw
          $0.dryRun = true
        }
      )
      #expect(uncalibrated.metrics["ece"]! > report.metrics["ece"]! + 0.02)

      // Bless under a policy the bundle passes, by path.
      _ = try await client.setPolicy(
        .with {
          $0.name = "stack-only"
          $0.text =
            "gates:\n  - {name: auc, metric: auc, op: '>=', threshold: 0.58}\n  - {name: cal, metric: ece, op: '<=', threshold: 0.03}\n"
        }
      )
      let passing = try await client.evaluate(
        .with {
          $0.bundle.path = path
          $0.policyName = "stack-only"
        }
      )
      #expect(passing.passed && passing.policyName == "stack-only")
      let verdict = try await client.bless(
        .with {
          $0.reportID = passing.id
          $0.bundlePath = path
        }
      )
      #expect(verdict.bundleID == "btcusdt-1h-test" && verdict.manifestSha256 == hash)
      #expect(
        try await client.verifyBlessing(
          .with {
            $0.verdict = verdict
            $0.bundlePath = path
          }
        ).valid
      )
      // Rebuilt with another id: another manifest hash, so neither Bless nor the verdict covers it.
      _ = try Self.writeBundle(to: path, id: "btcusdt-1h-other")
      let moved = try await client.verifyBlessing(
        .with {
          $0.verdict = verdict
          $0.bundlePath = path
        }
      )
      #expect(
        !moved.valid && moved.failure == .subjectMismatch && moved.subjectManifestSha256 != hash
      )
      let stale = await Self.code {
        _ = try await client.bless(
          .with {
            $0.reportID = passing.id
            $0.bundlePath = path
          }
        )
      }
      #expect(stale?.0 == .failedPrecondition && stale?.1.contains("changed") == true)
    }
  }

  @Test("Reports, policies and the signing key survive a restart; the key file is private")
  func restart() async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-gate-\(UUID().uuidString)"
    )
    defer { try? FileManager.default.removeItem(at: directory) }
    let (id, verdict) = try await Self.withGatekeeper(directory: directory) { client, _ in
      let report = try await client.evaluate(
        Self.inline(Self.predictions(25_000, seed: 1), manifest: Self.manifest)
      )
      return (
        report.id,
        try await client.bless(
          .with {
            $0.reportID = report.id
            $0.manifestSha256 = Self.manifest
          }
        )
      )
    }
    let mode =
      try FileManager.default.attributesOfItem(
        atPath: directory.appendingPathComponent("blessing.key").path
      )[.posixPermissions] as? NSNumber
    #expect(mode?.intValue == 0o600)
    try await Self.withGatekeeper(directory: directory) { client, _ in
      let report = try await client.getReport(.with { $0.reportID = id })
      let check = try await client.verifyBlessing(.with { $0.verdict = verdict })
      #expect(report.passed && check.valid)
    }
  }

  @Test(
    "Another gatekeeper trusts a verdict only once the signer's blessing.pub is in its trusted_keys (key rotation)"
  )
  func trustedKeys() async throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-gate-keys-\(UUID().uuidString)"
    )
    defer { try? FileManager.default.removeItem(at: root) }
    let (signer, checker) = (root.appendingPathComponent("a"), root.appendingPathComponent("b"))
    let verdict = try await Self.withGatekeeper(directory: signer) { client, _ in
      let report = try await client.evaluate(
        Self.inline(Self.predictions(25_000, seed: 1), manifest: Self.manifest)
      )
      return try await client.bless(
        .with {
          $0.reportID = report.id
          $0.manifestSha256 = Self.manifest
        }
      )
    }
    let unknown = try await Self.withGatekeeper(directory: checker) { client, _ in
      try await client.verifyBlessing(
        .with {
          $0.verdict = verdict
          $0.manifestSha256 = Self.manifest
        }
      )
    }
    #expect(!unknown.valid && unknown.failure == .unknownKey)
    let trusted = checker.appendingPathComponent("trusted_keys")
    try FileManager.default.createDirectory(at: trusted, withIntermediateDirectories: true)
    try FileManager.default.copyItem(
      at: signer.appendingPathComponent("blessing.pub"),
      to: trusted.appendingPathComponent("a.pub")
    )
    let valid = try await Self.withGatekeeper(directory: checker) { client, _ in
      try await client.verifyBlessing(
        .with {
          $0.verdict = verdict
          $0.manifestSha256 = Self.manifest
        }
      )
    }
    #expect(valid.valid, "\(valid.message)")
  }
}
