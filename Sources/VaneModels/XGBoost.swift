internal import CXGBoost
public import Foundation
public import VaneCore
internal import VaneMath

/// libxgboost, loaded once per process: the file `VANE_XGBOOST_LIBRARY` names; else the pip
/// xgboost wheel's (``wheelFile``: newer, and built with CUDA); else Debian's
/// `libxgboost.so.0`.
final class XGBoostLibrary: Sendable {
  // Immutable after loading; the library's functions are thread-safe for distinct handles.
  nonisolated(unsafe) let pointer: OpaquePointer
  /// Where it was found.
  let source: XGBoostLibraryInfo.Source

  private init(pointer: OpaquePointer, source: XGBoostLibraryInfo.Source) {
    self.pointer = pointer
    self.source = source
  }

  /// The wheel's library, inside site-packages.
  static let wheelFile = "xgboost/lib/libxgboost.so"

  /// The process's library, or why it could not be loaded.
  static let shared: Result<XGBoostLibrary, VaneError> = {
    let environment = ProcessInfo.processInfo.environment
    if let path = environment["VANE_XGBOOST_LIBRARY"], !path.isEmpty {
      // Named explicitly: that one or none.
      return XGBoostLibrary.open(path, source: .environment)
    }
    for path in PipWheels.files(XGBoostLibrary.wheelFile, roots: PipWheels.processRoots) {
      if case .success(let library) = XGBoostLibrary.open(path, source: .wheel) {
        return .success(library)
      }
    }
    return XGBoostLibrary.open(nil, source: .system)
  }()

  private static func open(
    _ path: String?,
    source: XGBoostLibraryInfo.Source
  ) -> Result<XGBoostLibrary, VaneError> {
    var error = [CChar](repeating: 0, count: 512)
    var library: OpaquePointer?
    let status =
      path.map { vane_xgb_open($0, &library, &error, error.count) }
      ?? vane_xgb_open(nil, &library, &error, error.count)
    guard status == 0, let library else {
      let message = String(
        decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) },
        as: UTF8.self
      )
      return .failure(
        VaneError(
          .failedPrecondition,
          "XGBoost is not available: \(message) (install libxgboost0 or the xgboost pip package, or set VANE_XGBOOST_LIBRARY)"
        )
      )
    }
    return .success(XGBoostLibrary(pointer: library, source: source))
  }

  static func load() throws -> XGBoostLibrary { try Self.shared.get() }

  /// What the library is: its version, the file it came from and whether it was built with
  /// CUDA.
  var info: XGBoostLibraryInfo {
    XGBoostLibraryInfo(
      source: self.source,
      version: self.version,
      path: vane_xgb_path(self.pointer).map { String(cString: $0) },
      usesCUDA: vane_xgb_build_info(self.pointer).map {
        XGBoostLibraryInfo.usesCUDA(buildInfo: String(cString: $0))
      } ?? false
    )
  }

  /// "major.minor.patch".
  var version: String {
    var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
    vane_xgb_version(self.pointer, &major, &minor, &patch)
    return "\(major).\(minor).\(patch)"
  }

  /// Throws the library's last error when `status` is not 0.
  func check(_ status: Int32, _ what: String) throws {
    guard status == 0 else {
      let message = vane_xgb_last_error(self.pointer).map { String(cString: $0) } ?? "unknown error"
      throw VaneError(.internalError, "XGBoost \(what): \(message)")
    }
  }
}

/// Which libxgboost this process trains with, and whether it can train on a GPU.
public struct XGBoostLibraryInfo: Sendable, Equatable {
  /// Where a library is found, in the order looked.
  public enum Source: String, Sendable {
    case environment = "VANE_XGBOOST_LIBRARY"
    case wheel = "the pip xgboost wheel"
    case system = "the system's libxgboost.so.0"
  }

  public var source: Source
  /// "major.minor.patch".
  public var version: String
  /// The file it was loaded from (nil when the loader does not say).
  public var path: String?
  /// Whether it was built with CUDA (its XGBuildInfo's `USE_CUDA`; false when it does not say).
  public var usesCUDA: Bool

  public init(source: Source = .system, version: String, path: String?, usesCUDA: Bool) {
    self.source = source
    self.version = version
    self.path = path
    self.usesCUDA = usesCUDA
  }

  /// "1.7.4 at /usr/lib/…/libxgboost.so.0 (the system's libxgboost.so.0), built without CUDA".
  public var description: String {
    "\(self.version) at \(self.path ?? "an unknown path") (\(self.source.rawValue)), built \(self.usesCUDA ? "with" : "without") CUDA"
  }

  /// Whether XGBuildInfo's JSON says `"USE_CUDA": true`; anything else (not JSON, over 64 KiB,
  /// not an object, no such key, a string) says no.
  static func usesCUDA(buildInfo: String) -> Bool {
    guard buildInfo.utf8.count <= 1 << 16,
      let object = try? JSONSerialization.jsonObject(with: Data(buildInfo.utf8)),
      let fields = object as? [String: Any],
      let flag = fields["USE_CUDA"] as? Bool
    else { return false }
    return flag
  }
}

/// A DMatrix, freed with its owner.
final class XGBoostMatrix {
  let library: XGBoostLibrary
  let handle: UnsafeMutableRawPointer

  /// A dense matrix from row-major `values` (`rows × columns`; NaN is missing), with labels and
  /// weights when given.
  init(
    library: XGBoostLibrary,
    values: [Double],
    rows: Int,
    columns: Int,
    labels: [Int]? = nil,
    weights: [Double]? = nil
  ) throws {
    precondition(values.count == rows * columns)
    self.library = library
    let floats = values.map(Float.init)
    var handle: UnsafeMutableRawPointer?
    try library.check(
      vane_xgb_matrix_create(library.pointer, floats, UInt64(rows), UInt64(columns), .nan, &handle),
      "creating a matrix"
    )
    self.handle = handle!
    if let labels { try self.set("label", labels.map(Float.init)) }
    if let weights { try self.set("weight", weights.map(Float.init)) }
  }

  func set(_ field: String, _ values: [Float]) throws {
    try self.library.check(
      vane_xgb_matrix_set_float_info(
        self.library.pointer,
        self.handle,
        field,
        values,
        UInt64(values.count)
      ),
      "setting \(field)"
    )
  }

  deinit { _ = vane_xgb_matrix_free(self.library.pointer, self.handle) }
}

/// A Booster, freed with its owner. Not for concurrent use.
final class XGBoostBooster {
  let library: XGBoostLibrary
  let handle: UnsafeMutableRawPointer

  private init(library: XGBoostLibrary, handle: UnsafeMutableRawPointer) {
    self.library = library
    self.handle = handle
  }

  /// A new booster holding the trees of rounds [0, rounds).
  func slice(rounds: Int) throws -> XGBoostBooster {
    var handle: UnsafeMutableRawPointer?
    try self.library.check(
      vane_xgb_booster_slice(self.library.pointer, self.handle, 0, Int32(rounds), &handle),
      "keeping \(rounds) rounds"
    )
    return XGBoostBooster(library: self.library, handle: handle!)
  }

  init(library: XGBoostLibrary, cache: [XGBoostMatrix] = []) throws {
    self.library = library
    var handle: UnsafeMutableRawPointer?
    let matrices: [UnsafeMutableRawPointer?] = cache.map(\.handle)
    try library.check(
      vane_xgb_booster_create(library.pointer, matrices, UInt64(matrices.count), &handle),
      "creating a booster"
    )
    self.handle = handle!
  }

  func set(_ name: String, _ value: String) throws {
    try self.library.check(
      vane_xgb_booster_set_param(self.library.pointer, self.handle, name, value),
      "parameter \(name)=\(value)"
    )
  }

  func update(iteration: Int, _ train: XGBoostMatrix) throws {
    try self.library.check(
      vane_xgb_booster_update(self.library.pointer, self.handle, Int32(iteration), train.handle),
      "round \(iteration)"
    )
  }

  /// The evaluation metric on `matrix` after `iteration` (the first metric of the line
  /// "[i]\tname-metric:value").
  func evaluate(iteration: Int, _ matrix: XGBoostMatrix, name: String) throws -> Double {
    var result: UnsafePointer<CChar>?
    let matrices: [UnsafeMutableRawPointer?] = [matrix.handle]
    try name.withCString { cName in
      var names: [UnsafePointer<CChar>?] = [cName]
      try self.library.check(
        vane_xgb_booster_eval(
          self.library.pointer,
          self.handle,
          Int32(iteration),
          matrices,
          &names,
          1,
          &result
        ),
        "evaluating"
      )
    }
    let line = result.map { String(cString: $0) } ?? ""
    guard
      let value = line.split(separator: ":").last.flatMap({
        Double($0.trimmingCharacters(in: .whitespaces))
      })
    else {
      throw VaneError(.internalError, "XGBoost evaluation: cannot read '\(line)'")
    }
    return value
  }

  /// Predictions over `matrix` from the trees of rounds [0, rounds) (all when nil), flattened.
  func predict(_ matrix: XGBoostMatrix, rounds: Int?) throws -> [Float] {
    let config =
      #"{"type": 0, "training": false, "iteration_begin": 0, "iteration_end": \#(rounds ?? 0), "strict_shape": false}"#
    var shape: UnsafePointer<UInt64>?
    var dimensions: UInt64 = 0
    var result: UnsafePointer<Float>?
    try self.library.check(
      vane_xgb_booster_predict(
        self.library.pointer,
        self.handle,
        matrix.handle,
        config,
        &shape,
        &dimensions,
        &result
      ),
      "predicting"
    )
    guard let shape, let result else { return [] }
    let count = (0 ..< Int(dimensions)).reduce(1) { $0 * Int(shape[$1]) }
    return Array(UnsafeBufferPointer(start: result, count: count))
  }

  /// The model as XGBoost JSON.
  func json() throws -> Data {
    var length: UInt64 = 0
    var bytes: UnsafePointer<CChar>?
    try self.library.check(
      vane_xgb_booster_save(self.library.pointer, self.handle, &length, &bytes),
      "saving"
    )
    guard let bytes else { return Data() }
    return Data(bytes: bytes, count: Int(length))
  }

  func load(_ json: Data) throws {
    try json.withUnsafeBytes { buffer in
      try self.library.check(
        vane_xgb_booster_load(
          self.library.pointer,
          self.handle,
          buffer.baseAddress,
          UInt64(buffer.count)
        ),
        "loading a model"
      )
    }
  }

  deinit { _ = vane_xgb_booster_free(self.library.pointer, self.handle) }
}

/// Gradient-boosted trees through libxgboost: hist method, early stopping on a validation
/// tail, thread count from the caller. Stored as XGBoost's own JSON.
public struct XGBoostModel: Sendable, Equatable {
  /// Hyperparameters (defaults as the trainer API documents them).
  public struct Parameters: Sendable, Equatable {
    public var rounds = 500
    public var maxDepth = 6
    public var learningRate = 0.05
    public var subsample = 0.8
    public var columnSampleByTree = 0.8
    public var minChildWeight = 1.0
    public var lambda = 1.0
    public var alpha = 0.0
    public var gamma = 0.0
    public var maxBin = 256
    /// Rounds without validation improvement before stopping (0: off).
    public var earlyStoppingRounds = 50
    public var treeMethod = "hist"
    /// Where XGBoost trains: "cpu", or "cuda" with a CUDA build of the library and a GPU
    /// (passed as XGBoost's `device` parameter only when not "cpu", which every version takes).
    public var device = "cpu"
    /// Threads (0: XGBoost's default).
    public var threads = 0
    public var seed: UInt64 = 0
    /// Further native parameters, e.g. "max_delta_step": "1".
    public var extra: [String: String] = [:]

    public init() {}

    /// The native parameters for `classCount` classes.
    func native(classCount: Int) -> [(String, String)] {
      var list: [(String, String)] = [
        ("booster", "gbtree"), ("tree_method", self.treeMethod), ("max_depth", "\(self.maxDepth)"),
        ("eta", "\(self.learningRate)"),
        ("subsample", "\(self.subsample)"), ("colsample_bytree", "\(self.columnSampleByTree)"),
        ("min_child_weight", "\(self.minChildWeight)"),
        ("lambda", "\(self.lambda)"), ("alpha", "\(self.alpha)"), ("gamma", "\(self.gamma)"),
        ("max_bin", "\(self.maxBin)"),
        ("seed", "\(self.seed % (1 << 31))"), ("verbosity", "0"),
      ]
      if self.threads > 0 { list.append(("nthread", "\(self.threads)")) }
      if self.device != "cpu" { list.append(("device", self.device)) }
      if classCount == 2 {
        list += [("objective", "binary:logistic"), ("eval_metric", "logloss")]
      } else {
        list += [
          ("objective", "multi:softprob"), ("num_class", "\(classCount)"),
          ("eval_metric", "mlogloss"),
        ]
      }
      list += self.extra.sorted { $0.key < $1.key }
      return list
    }
  }

  /// XGBoost's JSON model.
  public var json: Data
  public var classCount: Int
  public var featureCount: Int
  /// Rounds kept (the best validation round + 1 with early stopping; all rounds otherwise); the
  /// JSON holds exactly these.
  public var rounds: Int

  /// The loaded library's version, or nil when it is not available.
  public static var libraryVersion: String? { try? XGBoostLibrary.load().version }

  /// The library this process trains with (loaded once: `VANE_XGBOOST_LIBRARY`, else the pip
  /// wheel's, else Debian's `libxgboost.so.0`), or why there is none.
  public static let library: Result<XGBoostLibraryInfo, VaneError> = XGBoostLibrary.shared.map {
    $0.info
  }

  /// Why XGBoost cannot train on CUDA here (empty: it can): `library` built without CUDA or
  /// missing, no GPU among `gpus` (``CUDADevices/visible``).
  public static func cudaProblems(
    library: Result<XGBoostLibraryInfo, VaneError>,
    gpus: [String]
  ) -> [String] {
    var reasons: [String] = []
    switch library {
    case .success(let info) where !info.usesCUDA:
      reasons.append(
        "libxgboost \(info.description) (set VANE_XGBOOST_LIBRARY to a CUDA build: the pip xgboost wheel's lib/libxgboost.so is one)"
      )
    case .success: break
    case .failure(let error): reasons.append(error.message)
    }
    if gpus.isEmpty {
      reasons.append("no NVIDIA GPU is visible (\(CUDADevices.driverDirectory) lists none)")
    }
    return reasons
  }

  /// Trains on `features` (`count × featureCount`, NaN missing), with early stopping on
  /// `validation` when given and `parameters.earlyStoppingRounds > 0`.
  /// - Parameters:
  ///   - round: called after each round with the round and the validation loss (when
  ///     measured); return false to stop (cancellation).
  /// - Throws: FAILED_PRECONDITION when libxgboost cannot be loaded; INVALID_ARGUMENT for bad
  ///   shapes or labels; CANCELLED when `round` stopped it.
  public static func fit(
    features: [Double],
    count: Int,
    featureCount: Int,
    labels: [Int],
    classCount: Int,
    weights: [Double]? = nil,
    validation: (features: [Double], count: Int, labels: [Int])? = nil,
    parameters: Parameters,
    round: (Int, Double?) -> Bool = { _, _ in true }
  ) throws -> XGBoostModel {
    let library = try XGBoostLibrary.load()
    guard count > 0, featureCount > 0, features.count == count * featureCount, labels.count == count
    else {
      throw VaneError.invalidArgument(
        field: "features",
        "\(features.count) values and \(labels.count) labels for \(count) rows × \(featureCount) columns"
      )
    }
    if let bad = labels.firstIndex(where: { !(0 ..< classCount).contains($0) }) {
      throw VaneError.invalidArgument(
        field: "labels[\(bad)]",
        "\(labels[bad]) is not in 0..<\(classCount)"
      )
    }
    guard parameters.rounds > 0 else {
      throw VaneError.invalidArgument(field: "num_boost_rounds", "must be positive")
    }
    let train = try XGBoostMatrix(
      library: library,
      values: features,
      rows: count,
      columns: featureCount,
      labels: labels,
      weights: weights
    )
    let valid = try validation.map {
      try XGBoostMatrix(
        library: library,
        values: $0.features,
        rows: $0.count,
        columns: featureCount,
        labels: $0.labels
      )
    }
    let booster = try XGBoostBooster(library: library, cache: [train] + (valid.map { [$0] } ?? []))
    for (name, value) in parameters.native(classCount: classCount) { try booster.set(name, value) }
    var best = (loss: Double.infinity, round: -1)
    var kept = parameters.rounds
    var trained = 0
    for iteration in 0 ..< parameters.rounds {
      try booster.update(iteration: iteration, train)
      trained = iteration + 1
      var loss: Double?
      if let valid {
        let value = try booster.evaluate(iteration: iteration, valid, name: "valid")
        loss = value
        if value < best.loss { best = (value, iteration) }
      }
      guard round(iteration, loss) else {
        throw VaneError(.cancelled, "XGBoost training stopped at round \(iteration)")
      }
      if valid != nil, parameters.earlyStoppingRounds > 0,
        iteration - best.round >= parameters.earlyStoppingRounds
      {
        kept = best.round + 1
        break
      }
    }
    if valid != nil, parameters.earlyStoppingRounds > 0, best.round >= 0 { kept = best.round + 1 }
    // The model keeps only the rounds it uses, so its JSON predicts alike in any XGBoost.
    let model = kept < trained ? try booster.slice(rounds: kept) : booster
    return XGBoostModel(
      json: try model.json(),
      classCount: classCount,
      featureCount: featureCount,
      rounds: kept
    )
  }

  /// Class probabilities, `count × classCount`, from the kept rounds.
  public func probabilities(_ features: [Double], count: Int) throws -> [Double] {
    precondition(features.count == count * self.featureCount)
    let library = try XGBoostLibrary.load()
    let booster = try XGBoostBooster(library: library)
    try booster.load(self.json)
    let matrix = try XGBoostMatrix(
      library: library,
      values: features,
      rows: count,
      columns: self.featureCount
    )
    let raw = try booster.predict(matrix, rounds: self.rounds).map(Double.init)
    if self.classCount == 2 {
      return raw.flatMap { [1 - $0, $0] }
    }
    return raw
  }
}
