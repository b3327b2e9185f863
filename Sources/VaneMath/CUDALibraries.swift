internal import CCUDA
public import VaneCore
internal import Foundation

/// NVIDIA's CUDA runtime, cuBLAS and NVRTC as this process finds them, loaded once: from the
/// directory `VANE_CUDA_LIBRARY_PATH` names (that one or none), else the pip wheels' files
/// (`nvidia/cu13/lib` of CUDA 13's wheels, `nvidia/cuda_runtime/lib`, `nvidia/cublas/lib` and
/// `nvidia/cuda_nvrtc/lib` of CUDA 12's), else the dynamic loader's path. All three come from
/// one CUDA major version, the newest whose runtime is found.
///
/// Loading needs no GPU: a machine without one reports the libraries and, from the runtime,
/// why there is no device. Nothing here is loaded until asked.
public enum CUDALibraries {
  /// The CUDA major versions looked for, newest first.
  static let majors = [13, 12]

  /// One library's sonames and, per major version, its file inside site-packages.
  enum Kind: String, Sendable, CaseIterable {
    case runtime = "CUDA runtime"
    case blas = "cuBLAS"
    case nvrtc = "NVRTC"

    func soname(major: Int) -> String {
      switch self {
      case .runtime: "libcudart.so.\(major)"
      case .blas: "libcublas.so.\(major)"
      case .nvrtc: "libnvrtc.so.\(major)"
      }
    }

    /// Inside site-packages: CUDA 13's wheels share one directory, CUDA 12's have one each.
    func wheelFile(major: Int) -> String {
      if major >= 13 { return "nvidia/cu\(major)/lib/\(self.soname(major: major))" }
      let package =
        switch self {
        case .runtime: "cuda_runtime"
        case .blas: "cublas"
        case .nvrtc: "cuda_nvrtc"
        }
      return "nvidia/\(package)/lib/\(self.soname(major: major))"
    }
  }

  /// Where to look for `kind` of `major`, in order: the directory the setting names (alone,
  /// when set), else the wheels under `roots`, then the soname for the dynamic loader.
  static func candidates(
    _ kind: Kind,
    major: Int,
    directory: String?,
    roots: [String]
  ) -> [String] {
    if let directory { return ["\(directory)/\(kind.soname(major: major))"] }
    return PipWheels.files(kind.wheelFile(major: major), roots: roots) + [kind.soname(major: major)]
  }

  /// The setting that names a directory holding the libraries (a CUDA toolkit's `lib64`).
  public static let directorySetting = "VANE_CUDA_LIBRARY_PATH"

  /// What was found, loaded once per process.
  public static let shared: Loaded = Self.load(
    directory: ProcessInfo.processInfo.environment[Self.directorySetting].flatMap {
      $0.isEmpty ? nil : $0
    },
    roots: PipWheels.processRoots
  )

  /// The libraries found (each one or why not), from one major version.
  public struct Loaded: Sendable {
    public let runtime: Result<CUDARuntime, VaneError>
    public let blas: Result<CUBLASLibrary, VaneError>
    public let nvrtc: Result<NVRTC, VaneError>

    /// One line per library: its version and file, or why it is missing.
    public var summary: [String] {
      func line<T>(
        _ kind: Kind,
        _ result: Result<T, VaneError>,
        _ describe: (T) -> String
      )
        -> String
      {
        switch result {
        case .success(let library): "\(kind.rawValue): \(describe(library))"
        case .failure(let error): "\(kind.rawValue): \(error.message)"
        }
      }
      return [
        line(.runtime, self.runtime) { $0.description },
        line(.blas, self.blas) { $0.description },
        line(.nvrtc, self.nvrtc) { $0.description },
      ]
    }
  }

  static func load(directory: String?, roots: [String]) -> Loaded {
    var failures: [String] = []
    for major in Self.majors {
      var runtime: CUDARuntime?
      for path in Self.candidates(.runtime, major: major, directory: directory, roots: roots) {
        switch CUDARuntime.open(path) {
        case .success(let library): runtime = library
        case .failure(let error): failures.append(error.message)
        }
        if runtime != nil { break }
      }
      guard let runtime else { continue }
      func first<T>(
        _ kind: Kind,
        _ open: (String) -> Result<T, VaneError>
      ) -> Result<
        T, VaneError
      > {
        var reasons: [String] = []
        for path in Self.candidates(kind, major: major, directory: directory, roots: roots) {
          switch open(path) {
          case .success(let library): return .success(library)
          case .failure(let error): reasons.append(error.message)
          }
        }
        return .failure(
          VaneError(
            .failedPrecondition,
            "not found for CUDA \(major) (\(reasons.joined(separator: "; "))); install the nvidia-\(kind == .blas ? "cublas" : "cuda-nvrtc")-cu\(major) pip package"
          )
        )
      }
      return Loaded(
        runtime: .success(runtime),
        blas: first(.blas, CUBLASLibrary.open),
        nvrtc: first(.nvrtc, NVRTC.open)
      )
    }
    let place =
      directory.map { "in \($0) (\(Self.directorySetting))" }
      ?? "in a pip wheel (nvidia-cuda-runtime-cu12 or cu13) or on the loader's path"
    let missing = VaneError(
      .failedPrecondition,
      "no CUDA runtime \(place): \(failures.last ?? "nothing to load")"
    )
    let skipped = VaneError(.failedPrecondition, "not looked for: no CUDA runtime")
    return Loaded(runtime: .failure(missing), blas: .failure(skipped), nvrtc: .failure(skipped))
  }

  /// Runs one of the shim's opens (`vane_cudart_open`, …) on `path`: the handle, or the
  /// reason it wrote.
  static func open(
    _ path: String,
    _ open: (
      UnsafePointer<CChar>?, UnsafeMutablePointer<OpaquePointer?>?, UnsafeMutablePointer<CChar>?,
      Int
    ) -> Int32
  ) -> Result<OpaquePointer, VaneError> {
    var buffer = [CChar](repeating: 0, count: 512)
    var library: OpaquePointer?
    guard open(path, &library, &buffer, buffer.count) == 0, let library else {
      let reason = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
      return .failure(VaneError(.failedPrecondition, String(decoding: reason, as: UTF8.self)))
    }
    return .success(library)
  }
}

/// The CUDA runtime library (`libcudart`), loaded for the process's lifetime.
public final class CUDARuntime: Sendable, CustomStringConvertible {
  // Immutable after loading; the runtime's entry points are thread-safe.
  nonisolated(unsafe) let pointer: OpaquePointer

  private init(pointer: OpaquePointer) { self.pointer = pointer }

  static func open(_ path: String) -> Result<CUDARuntime, VaneError> {
    CUDALibraries.open(path, vane_cudart_open).map { CUDARuntime(pointer: $0) }
  }

  /// The file it was loaded from.
  public var path: String? { vane_cudart_path(self.pointer).map { String(cString: $0) } }

  /// "major.minor" of a CUDA version number (1000·major + 10·minor).
  static func version(_ number: Int32) -> String { "\(number / 1000).\(number % 1000 / 10)" }

  /// The runtime's CUDA version ("12.9").
  public var version: String {
    var number: Int32 = 0
    _ = vane_cudart_runtime_version(self.pointer, &number)
    return Self.version(number)
  }

  /// The CUDA version the installed driver supports; nil without a driver.
  public var driverVersion: String? {
    var number: Int32 = 0
    guard vane_cudart_driver_version(self.pointer, &number) == 0, number > 0 else { return nil }
    return Self.version(number)
  }

  /// How many GPUs the runtime can use, or the runtime's reason for none (its error name and
  /// message: no driver, no device).
  public var devices: Result<Int, VaneError> {
    var count: Int32 = 0
    let status = vane_cudart_device_count(self.pointer, &count)
    guard status == 0 else { return .failure(self.error(status, "counting devices")) }
    return .success(Int(count))
  }

  /// A cudaError_t as a `VaneError` naming the call.
  func error(_ status: Int32, _ what: String) -> VaneError {
    let name =
      vane_cudart_error_name(self.pointer, status).map { String(cString: $0) } ?? "\(status)"
    let message = vane_cudart_error_string(self.pointer, status).map { String(cString: $0) } ?? ""
    return VaneError(.failedPrecondition, "CUDA \(what): \(name): \(message)")
  }

  public var description: String {
    let devices: String =
      switch self.devices {
      case .success(let count): "\(count) device\(count == 1 ? "" : "s")"
      case .failure(let error): error.message
      }
    return
      "\(self.version) at \(self.path ?? "?"), driver \(self.driverVersion ?? "none"); \(devices)"
  }
}

/// cuBLAS (`libcublas`), loaded for the process's lifetime.
public final class CUBLASLibrary: Sendable, CustomStringConvertible {
  nonisolated(unsafe) let pointer: OpaquePointer

  private init(pointer: OpaquePointer) { self.pointer = pointer }

  static func open(_ path: String) -> Result<CUBLASLibrary, VaneError> {
    CUDALibraries.open(path, vane_cublas_open).map { CUBLASLibrary(pointer: $0) }
  }

  public var path: String? { vane_cublas_path(self.pointer).map { String(cString: $0) } }

  /// "major.minor.patch" (cublasGetProperty, no GPU needed).
  public var version: String {
    var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
    guard vane_cublas_version(self.pointer, &major, &minor, &patch) == 0 else { return "?" }
    return "\(major).\(minor).\(patch)"
  }

  public var description: String { "\(self.version) at \(self.path ?? "?")" }
}

/// NVRTC (`libnvrtc`): CUDA C++ compiled to PTX at run time, no GPU or toolkit needed.
public final class NVRTC: Sendable, CustomStringConvertible {
  nonisolated(unsafe) let pointer: OpaquePointer

  private init(pointer: OpaquePointer) { self.pointer = pointer }

  static func open(_ path: String) -> Result<NVRTC, VaneError> {
    CUDALibraries.open(path, vane_nvrtc_open).map { NVRTC(pointer: $0) }
  }

  public var path: String? { vane_nvrtc_path(self.pointer).map { String(cString: $0) } }

  /// "major.minor".
  public var version: String {
    var major: Int32 = 0, minor: Int32 = 0
    guard vane_nvrtc_version(self.pointer, &major, &minor) == 0 else { return "?" }
    return "\(major).\(minor)"
  }

  public var description: String { "\(self.version) at \(self.path ?? "?")" }

  /// PTX and NVRTC's log for `source`.
  public struct Compiled: Sendable {
    public var ptx: String
    public var log: String
  }

  /// Compiles CUDA C++ `source` (called `name` in messages) with `options` to PTX.
  /// - Throws: INVALID_ARGUMENT with NVRTC's result and log when it does not compile.
  public func compile(_ source: String, name: String, options: [String]) throws -> Compiled {
    var ptx: UnsafeMutablePointer<CChar>?
    var log: UnsafeMutablePointer<CChar>?
    var length = 0
    defer {
      free(ptx)
      free(log)
    }
    let cOptions = options.map { strdup($0) }
    defer { cOptions.forEach { free($0) } }
    let status = cOptions.map { UnsafePointer($0) }.withUnsafeBufferPointer { options in
      vane_nvrtc_compile(
        self.pointer,
        source,
        name,
        options.baseAddress,
        Int32(options.count),
        &ptx,
        &length,
        &log
      )
    }
    let text = log.map { String(cString: $0) } ?? ""
    guard status == 0, let ptx else {
      let reason = vane_nvrtc_error_string(self.pointer, status).map { String(cString: $0) }
      throw VaneError.invalidArgument(
        field: name,
        "NVRTC \(reason ?? "error \(status)"): \(String(text.prefix(4000)))"
      )
    }
    return Compiled(ptx: String(cString: ptx), log: text)
  }
}
