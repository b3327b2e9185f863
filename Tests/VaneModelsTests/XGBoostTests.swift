import Foundation
import Testing
import VaneCore
import VaneMath

@testable import VaneModels

/// The C-API binding against the Python xgboost package of the same version as the library
/// loaded (same parameters, same data): `Fixtures/xgboost_reference_VERSION.json`, made by
/// `scripts/xgboost_fixture.py` (1.7.4: Debian's; 3.2.0: the pip wheel's).
@Suite("XGBoost through its C API")
struct XGBoostTests {
  struct Case: Decodable, Sendable {
    var name: String
    var classes: Int
    var rounds: Int
    var early_stopping_rounds: Int
    var params: [String: String]
    var columns: Int
    var features: [Double?]
    var labels: [Int]
    var train_rows: Int
    var valid_rows: Int
    var test_rows: Int
    var kept_rounds: Int
    var test_probabilities: [Double]
  }

  struct File: Decodable, Sendable {
    var xgboost_version: String
    var cases: [Case]
  }

  /// The reference made with the loaded library's version (nil: no library, or none made).
  static let fixture: File? = {
    guard let version = XGBoostModel.libraryVersion else { return nil }
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
      "Fixtures/xgboost_reference_\(version).json"
    )
    guard let data = try? Data(contentsOf: url) else { return nil }
    return try! JSONDecoder().decode(File.self, from: data)
  }()

  static func parameters(_ c: Case) -> XGBoostModel.Parameters {
    var p = XGBoostModel.Parameters()
    p.rounds = c.rounds
    p.earlyStoppingRounds = c.early_stopping_rounds
    p.maxDepth = Int(c.params["max_depth"]!)!
    p.learningRate = Double(c.params["eta"]!)!
    p.subsample = Double(c.params["subsample"]!)!
    p.columnSampleByTree = Double(c.params["colsample_bytree"]!)!
    p.seed = UInt64(c.params["seed"]!)!
    p.threads = Int(c.params["nthread"]!)!
    return p
  }

  @Test("The library loads, and there is a reference made with its version")
  func version() throws {
    let version = try #require(XGBoostModel.libraryVersion, "libxgboost did not load")
    let fixture = try #require(
      Self.fixture,
      "no Fixtures/xgboost_reference_\(version).json: make it with scripts/xgboost_fixture.py and xgboost==\(version)"
    )
    #expect(fixture.xgboost_version == version)
  }

  @Test(
    "Same native parameters, same kept rounds, same probabilities as Python's xgboost",
    arguments: XGBoostTests.fixture?.cases.map(\.name) ?? []
  )
  func matchesPython(name: String) throws {
    let c = try #require(Self.fixture?.cases.first { $0.name == name })
    #expect(
      Self.parameters(c).native(classCount: c.classes).reduce(into: [String: String]()) {
        $0[$1.0] = $1.1
      } == c.params
    )
    let x = c.features.map { $0 ?? .nan }
    let w = c.columns
    func rows(_ range: Range<Int>) -> [Double] {
      Array(x[(range.lowerBound * w) ..< (range.upperBound * w)])
    }
    let train = 0 ..< c.train_rows, valid = c.train_rows ..< (c.train_rows + c.valid_rows)
    let test = valid.upperBound ..< (valid.upperBound + c.test_rows)
    var losses: [Double] = []
    let model = try XGBoostModel.fit(
      features: rows(train),
      count: train.count,
      featureCount: w,
      labels: Array(c.labels[train]),
      classCount: c.classes,
      validation: (rows(valid), valid.count, Array(c.labels[valid])),
      parameters: Self.parameters(c)
    ) { _, loss in
      losses.append(loss ?? .nan)
      return true
    }
    #expect(model.rounds == c.kept_rounds)
    // The saved JSON holds exactly the kept rounds' trees (one per class per round; one for binary).
    let document = try #require(
      try JSONSerialization.jsonObject(with: model.json) as? [String: Any]
    )
    let learner = try #require(document["learner"] as? [String: Any])
    let booster = try #require(learner["gradient_booster"] as? [String: Any])
    let trees = try #require((booster["model"] as? [String: Any])?["trees"] as? [Any])
    #expect(
      trees.count == c.kept_rounds * (c.classes == 2 ? 1 : c.classes),
      "\(trees.count) trees for \(c.kept_rounds) rounds"
    )
    let p = try model.probabilities(rows(test), count: test.count)
    #expect(p.count == c.test_probabilities.count)
    let worst = zip(p, c.test_probabilities).map { abs($0 - $1) }.max() ?? .infinity
    #expect(worst < 1e-6, "largest difference \(worst)")
    let finite = losses.allSatisfy(\.isFinite)
    #expect(finite)
  }

  @Test("Training stops when asked, and bad labels are refused naming the field")
  func stopAndRefuse() throws {
    let c = try #require(Self.fixture?.cases.first)
    let x = Array(c.features.prefix(100 * c.columns).map { $0 ?? .nan })
    #expect {
      _ = try XGBoostModel.fit(
        features: x,
        count: 100,
        featureCount: c.columns,
        labels: Array(c.labels.prefix(100)),
        classCount: 2,
        parameters: .init()
      ) { round, _ in round < 3 }
    } throws: {
      ($0 as? VaneError)?.code == .cancelled
    }
    var labels = Array(c.labels.prefix(100))
    labels[4] = 7
    #expect {
      _ = try XGBoostModel.fit(
        features: x,
        count: 100,
        featureCount: c.columns,
        labels: labels,
        classCount: 2,
        parameters: .init()
      )
    } throws: {
      ($0 as? VaneError)?.message.hasPrefix("labels[4]") == true
    }
  }
}

@Suite("XGBoost's library and device")
struct XGBoostLibraryTests {
  @Test(
    "USE_CUDA is read from XGBuildInfo's JSON; anything else says no",
    arguments: [
      (#"{"USE_CUDA": true, "USE_NCCL": true}"#, true),
      (#"{"USE_CUDA": false}"#, false),
      (#"{"USE_OPENMP": true}"#, false),
      (#"{"USE_CUDA": "true"}"#, false),
      (#"[true]"#, false),
      ("USE_CUDA: true", false),
      ("", false),
      (#"{"USE_CUDA": true, "pad": ""# + String(repeating: "x", count: 70_000) + #""}"#, false),
    ]
  )
  func buildInfo(text: String, cuda: Bool) {
    #expect(XGBoostLibraryInfo.usesCUDA(buildInfo: text) == cuda)
  }

  @Test(
    "The loaded library says its version and the file it came from",
    .enabled(if: XGBoostModel.libraryVersion != nil, "libxgboost is not installed")
  )
  func loaded() throws {
    let info = try XGBoostModel.library.get()
    #expect(info.version == XGBoostModel.libraryVersion)
    let path = try #require(info.path)
    #expect(path.contains("libxgboost"))
    #expect(FileManager.default.fileExists(atPath: path))
    #expect(
      info.description.hasPrefix("\(info.version) at \(path) (\(info.source.rawValue)), built with")
    )
  }

  @Test(
    "The pip wheel's library is looked for in the virtual environment, then the user's and the system's site directories, newest Python first"
  )
  func wheelSearch() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-wheels-\(UUID().uuidString)"
    )
    defer { try? FileManager.default.removeItem(at: root) }
    let venv = root.appendingPathComponent("venv").path,
      home = root.appendingPathComponent("home").path
    let files = [
      "\(venv)/lib/python3.9/site-packages/xgboost/lib/libxgboost.so",
      "\(venv)/lib/python3.11/site-packages/xgboost/lib/libxgboost.so",
      "\(home)/.local/lib/python3.11/dist-packages/xgboost/lib/libxgboost.so",
    ]
    for file in files {
      try FileManager.default.createDirectory(
        atPath: (file as NSString).deletingLastPathComponent,
        withIntermediateDirectories: true
      )
      #expect(FileManager.default.createFile(atPath: file, contents: Data()))
    }
    // A Python directory without the package, and a name that is not a Python's.
    try FileManager.default.createDirectory(
      atPath: "\(venv)/lib/python3.12/site-packages",
      withIntermediateDirectories: true
    )
    try FileManager.default.createDirectory(
      atPath: "\(venv)/lib/pythonX/site-packages/xgboost/lib",
      withIntermediateDirectories: true
    )
    let roots = PipWheels.roots(environment: ["VIRTUAL_ENV": venv], home: home)
    #expect(roots == ["\(venv)/lib", "\(home)/.local/lib", "/usr/local/lib"])
    #expect(
      PipWheels.files(XGBoostLibrary.wheelFile, roots: Array(roots.prefix(2))) == [
        files[1], files[0], files[2],
      ]
    )
    #expect(PipWheels.roots(environment: [:], home: nil) == ["/usr/local/lib"])
  }

  @Test("device=cuda reaches XGBoost only when asked; CPU training passes no device")
  func deviceParameter() {
    var parameters = XGBoostModel.Parameters()
    #expect(!parameters.native(classCount: 2).contains { $0.0 == "device" })
    parameters.device = "cuda"
    #expect(parameters.native(classCount: 3).contains { $0 == ("device", "cuda") })
  }

  @Test(
    "On a GPU: XGBoost trains with device=cuda and answers as on the CPU, within float32 histogram tolerance",
    .enabled(
      if: ((try? XGBoostModel.library.get())?.usesCUDA ?? false) && !CUDADevices.visible.isEmpty,
      "needs a CUDA build of libxgboost (the pip xgboost wheel's, or VANE_XGBOOST_LIBRARY) and a visible NVIDIA GPU"
    )
  )
  func trainsOnGPU() throws {
    var random = SeededRandom(seed: 5)
    let count = 2_000, width = 8
    let features = (0 ..< count * width).map { _ in Double.random(in: -1 ... 1, using: &random) }
    let labels = (0 ..< count).map {
      features[$0 * width] + 0.5 * features[$0 * width + 1] > 0 ? 1 : 0
    }
    var parameters = XGBoostModel.Parameters()
    parameters.rounds = 50
    parameters.earlyStoppingRounds = 0
    parameters.subsample = 1
    parameters.columnSampleByTree = 1
    func fit(_ device: String) throws -> [Double] {
      var p = parameters
      p.device = device
      let model = try XGBoostModel.fit(
        features: features,
        count: count,
        featureCount: width,
        labels: labels,
        classCount: 2,
        validation: nil,
        parameters: p
      ) { _, _ in true }
      return try model.probabilities(features, count: count)
    }
    let cpu = try fit("cpu"), gpu = try fit("cuda"), again = try fit("cuda")
    #expect(gpu == again, "the same seed gives the same model on the GPU run to run")
    let worst = zip(cpu, gpu).map { abs($0 - $1) }.max() ?? .infinity
    #expect(worst < 1e-3, "largest CPU/GPU difference \(worst)")
  }
}
