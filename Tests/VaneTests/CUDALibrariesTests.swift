import Foundation
import Testing
import VaneCore

@testable import VaneMath

/// Where the CUDA libraries are looked for, and what a machine without them (or without a GPU)
/// is told.
@Suite("CUDA libraries: where they are looked for and what is reported")
struct CUDALibrariesTests {
  static func scratch() throws -> String {
    let path = FileManager.default.temporaryDirectory
      .appendingPathComponent("vane-cuda-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
  }

  static func touch(_ path: String) throws {
    try FileManager.default.createDirectory(
      atPath: (path as NSString).deletingLastPathComponent,
      withIntermediateDirectories: true
    )
    #expect(FileManager.default.createFile(atPath: path, contents: Data("not a library".utf8)))
  }

  @Test("pyenv's selected Pythons are roots: PYENV_VERSION, else its version file")
  func pyenvRoots() throws {
    let root = try Self.scratch()
    defer { try? FileManager.default.removeItem(atPath: root) }
    for version in ["3.11.7", "3.12.1"] {
      try FileManager.default.createDirectory(
        atPath: "\(root)/versions/\(version)/lib",
        withIntermediateDirectories: true
      )
    }
    // Comments, "system", a version not installed and a path are passed over.
    try "# chosen by pyenv global\n3.12.1\nsystem\n3.9.0\n../../etc\n3.11.7\n"
      .write(toFile: "\(root)/version", atomically: true, encoding: .utf8)
    #expect(
      PipWheels.roots(environment: ["PYENV_ROOT": root], home: nil) == [
        "\(root)/versions/3.12.1/lib", "\(root)/versions/3.11.7/lib", "/usr/local/lib",
      ]
    )
    #expect(
      PipWheels.roots(environment: ["PYENV_ROOT": root, "PYENV_VERSION": "3.11.7"], home: nil)
        == ["\(root)/versions/3.11.7/lib", "/usr/local/lib"]
    )
    // Without pyenv: none of its roots.
    #expect(
      PipWheels.roots(environment: [:], home: "\(root)/nobody") == [
        "\(root)/nobody/.local/lib", "/usr/local/lib",
      ]
    )
  }

  @Test(
    "Each library's file: CUDA 13's shared wheel directory, CUDA 12's one per package",
    arguments: [
      (CUDALibraries.Kind.runtime, 13, "nvidia/cu13/lib/libcudart.so.13"),
      (.blas, 13, "nvidia/cu13/lib/libcublas.so.13"),
      (.nvrtc, 13, "nvidia/cu13/lib/libnvrtc.so.13"),
      (.runtime, 12, "nvidia/cuda_runtime/lib/libcudart.so.12"),
      (.blas, 12, "nvidia/cublas/lib/libcublas.so.12"),
      (.nvrtc, 12, "nvidia/cuda_nvrtc/lib/libnvrtc.so.12"),
    ]
  )
  func wheelFiles(kind: CUDALibraries.Kind, major: Int, file: String) {
    #expect(kind.wheelFile(major: major) == file)
  }

  @Test("Candidates: the wheels found, then the soname; a named directory alone")
  func candidates() throws {
    let root = try Self.scratch()
    defer { try? FileManager.default.removeItem(atPath: root) }
    let wheel = "\(root)/lib/python3.11/site-packages/nvidia/cuda_runtime/lib/libcudart.so.12"
    try Self.touch(wheel)
    #expect(
      CUDALibraries.candidates(.runtime, major: 12, directory: nil, roots: ["\(root)/lib"])
        == [wheel, "libcudart.so.12"]
    )
    #expect(
      CUDALibraries.candidates(
        .nvrtc,
        major: 13,
        directory: "/opt/cuda/lib64",
        roots: ["\(root)/lib"]
      )
        == ["/opt/cuda/lib64/libnvrtc.so.13"]
    )
  }

  @Test("A directory without a loadable runtime is reported with the file and the loader's reason")
  func missingRuntime() throws {
    let root = try Self.scratch()
    defer { try? FileManager.default.removeItem(atPath: root) }
    try Self.touch("\(root)/libcudart.so.12")
    let loaded = CUDALibraries.load(directory: root, roots: [])
    guard case .failure(let error) = loaded.runtime else {
      Issue.record("a file that is not a library loaded")
      return
    }
    #expect(error.code == .failedPrecondition)
    #expect(error.message.contains("(VANE_CUDA_LIBRARY_PATH)"))
    #expect(error.message.contains("\(root)/libcudart.so.12"))
    #expect(loaded.summary.count == 3)
    #expect(loaded.summary[1] == "cuBLAS: not looked for: no CUDA runtime")
  }

  @Test(
    "Without a GPU the runtime loads and says why there is no device",
    .enabled(
      if: (try? CUDALibraries.shared.runtime.get()) != nil,
      "no CUDA runtime (pip nvidia-cuda-runtime-cu12)"
    ),
    .enabled(if: CUDADevices.visible.isEmpty, "a GPU is visible")
  )
  func noDevice() throws {
    let runtime = try CUDALibraries.shared.runtime.get()
    #expect(["12", "13"].contains(runtime.version.split(separator: ".").first.map(String.init)))
    #expect(runtime.path?.contains("libcudart.so.") == true)
    guard case .failure(let error) = runtime.devices else {
      Issue.record("devices counted without a GPU")
      return
    }
    #expect(error.message.hasPrefix("CUDA counting devices: cudaError"))
  }

  @Test(
    "Opening a GPU where there is none fails, naming what is missing",
    .enabled(if: CUDADevices.visible.isEmpty, "a GPU is visible")
  )
  func noGPU() throws {
    let error = #expect(throws: VaneError.self) { _ = try CUDADevice() }
    #expect(error?.code == .failedPrecondition)
    let message = error?.message ?? ""
    // The first thing missing: the runtime, cuBLAS, NVRTC, or (all present) a device.
    #expect(
      message.contains("no CUDA runtime") || message.contains("install the nvidia-")
        || message.hasPrefix("CUDA counting devices: cudaError"),
      "\(message)"
    )
  }
}
