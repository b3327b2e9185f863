internal import CCUDA
internal import VaneCore
internal import Foundation
internal import Synchronization

/// One GPU for training: device memory, the training kernels (``CUDAKernels``, compiled by
/// NVRTC for this GPU and loaded once) and a cuBLAS handle. Work goes to CUDA's default
/// stream in the order it is issued; a copy back to the host waits for what came before.
///
/// Not thread-safe: one training loop uses one device at a time, from one thread.
public final class CUDADevice {
  let runtime: CUDARuntime
  let blas: CUBLASLibrary
  public let ordinal: Int
  /// "compute_XY" of the device, as NVRTC was asked for.
  public let architecture: String
  private let library: UnsafeMutableRawPointer
  private let kernels: [String: UnsafeMutableRawPointer]
  private let handle: UnsafeMutableRawPointer

  /// Opens GPU `ordinal`: compiles and loads the kernels and creates a cuBLAS handle.
  /// - Throws: FAILED_PRECONDITION naming what is missing (a library, a device) or what CUDA
  ///   answered; INVALID_ARGUMENT when NVRTC refuses the kernels.
  public init(ordinal: Int = 0, libraries: CUDALibraries.Loaded = CUDALibraries.shared) throws {
    let runtime = try libraries.runtime.get()
    let blas = try libraries.blas.get()
    let nvrtc = try libraries.nvrtc.get()
    let count = try runtime.devices.get()
    guard ordinal >= 0, ordinal < count else {
      throw VaneError(
        .failedPrecondition,
        "CUDA device \(ordinal) does not exist (\(count) visible)"
      )
    }
    try runtime.check(
      vane_cudart_set_device(runtime.pointer, Int32(ordinal)),
      "selecting device \(ordinal)"
    )
    var major: Int32 = 0, minor: Int32 = 0
    try runtime.check(
      vane_cudart_capability(runtime.pointer, Int32(ordinal), &major, &minor),
      "reading device \(ordinal)'s compute capability"
    )
    let architecture = "compute_\(major)\(minor)"
    let ptx = try Self.ptx(nvrtc, architecture: architecture)
    var library: UnsafeMutableRawPointer?
    try runtime.check(
      vane_cudart_library_load(runtime.pointer, ptx, &library),
      "loading the kernels for \(architecture)"
    )
    guard let library else { throw VaneError(.internalError, "CUDA loaded no kernel library") }
    var kernels: [String: UnsafeMutableRawPointer] = [:]
    for name in CUDAKernels.names {
      var kernel: UnsafeMutableRawPointer?
      let status = vane_cudart_library_kernel(runtime.pointer, library, name, &kernel)
      guard status == 0, let kernel else {
        _ = vane_cudart_library_unload(runtime.pointer, library)
        throw runtime.error(status, "finding kernel \(name)")
      }
      kernels[name] = kernel
    }
    var handle: UnsafeMutableRawPointer?
    let status = vane_cublas_create(blas.pointer, &handle)
    guard status == 0, let handle else {
      _ = vane_cudart_library_unload(runtime.pointer, library)
      throw VaneError(
        .failedPrecondition,
        "cuBLAS could not start on device \(ordinal): status \(status)"
      )
    }
    self.runtime = runtime
    self.blas = blas
    self.ordinal = ordinal
    self.architecture = architecture
    self.library = library
    self.kernels = kernels
    self.handle = handle
  }

  /// The kernels' PTX per architecture, compiled once per process (a walk-forward opens a
  /// device per fold; NVRTC takes a fraction of a second each time).
  private static let compiled = Mutex<[String: String]>([:])

  static func ptx(_ nvrtc: NVRTC, architecture: String) throws -> String {
    if let ptx = Self.compiled.withLock({ $0[architecture] }) { return ptx }
    let ptx = try nvrtc.compile(
      CUDAKernels.source,
      name: "vane_kernels.cu",
      options: CUDAKernels.options(architecture: architecture)
    ).ptx
    Self.compiled.withLock { $0[architecture] = ptx }
    return ptx
  }

  deinit {
    _ = vane_cublas_destroy(self.blas.pointer, self.handle)
    _ = vane_cudart_library_unload(self.runtime.pointer, self.library)
  }

  /// Device memory for `count` values of `T`, zeroed; freed with the buffer.
  public func allocate<T>(_ type: T.Type, count: Int) throws -> CUDABuffer<T> {
    try CUDABuffer(runtime: self.runtime, count: count)
  }

  /// A buffer holding `values`.
  public func upload<T>(_ values: [T]) throws -> CUDABuffer<T> {
    let buffer = try self.allocate(T.self, count: values.count)
    try buffer.copy(from: values)
    return buffer
  }

  /// `bytes` of zeroed device memory, owned by the caller (``free(_:)``).
  func allocate(bytes: Int) throws -> UnsafeMutableRawPointer {
    var pointer: UnsafeMutableRawPointer?
    try self.runtime.check(
      vane_cudart_malloc(self.runtime.pointer, &pointer, max(bytes, 1)),
      "allocating \(bytes) bytes"
    )
    guard let pointer else { throw VaneError(.internalError, "CUDA allocated nothing") }
    try self.runtime.check(
      vane_cudart_zero(self.runtime.pointer, pointer, max(bytes, 1)),
      "zeroing \(bytes) bytes"
    )
    return pointer
  }

  func free(_ pointer: UnsafeMutableRawPointer) {
    _ = vane_cudart_free(self.runtime.pointer, pointer)
  }

  /// Copies `bytes`: `toDevice` from host memory to device memory, else back.
  func copy(
    _ target: UnsafeMutableRawPointer,
    _ source: UnsafeRawPointer,
    bytes: Int,
    toDevice: Bool
  ) throws {
    try self.runtime.check(
      vane_cudart_copy(self.runtime.pointer, target, source, bytes, toDevice ? 1 : 2),
      "copying \(bytes) bytes \(toDevice ? "to" : "from") the device"
    )
  }

  /// Waits for the work issued so far.
  public func synchronize() throws {
    try self.runtime.check(vane_cudart_synchronize(self.runtime.pointer), "synchronizing")
  }

  /// A kernel argument, as the kernel's parameter type.
  public enum Argument {
    case pointer(UnsafeMutableRawPointer)
    case int32(Int32)
    case int64(Int)
    case float(Float)
  }

  /// Launches kernel `name` on `grid` blocks of `block` threads with `arguments` in order.
  public func launch(_ name: String, grid: Int, block: Int, _ arguments: [Argument]) throws {
    guard let kernel = self.kernels[name] else {
      throw VaneError(.internalError, "no CUDA kernel \(name)")
    }
    // Each argument's value in its own slot; CUDA reads them through pointers during the call.
    let slots = UnsafeMutableRawPointer.allocate(
      byteCount: 8 * max(arguments.count, 1),
      alignment: 8
    )
    defer { slots.deallocate() }
    var pointers = [UnsafeMutableRawPointer?](repeating: nil, count: arguments.count)
    for (index, argument) in arguments.enumerated() {
      let slot = slots + 8 * index
      switch argument {
      case .pointer(let pointer): slot.storeBytes(of: pointer, as: UnsafeMutableRawPointer.self)
      case .int32(let value): slot.storeBytes(of: value, as: Int32.self)
      case .int64(let value): slot.storeBytes(of: Int64(value), as: Int64.self)
      case .float(let value): slot.storeBytes(of: value, as: Float.self)
      }
      pointers[index] = slot
    }
    let status = pointers.withUnsafeMutableBufferPointer {
      vane_cudart_launch(self.runtime.pointer, kernel, UInt32(grid), UInt32(block), $0.baseAddress)
    }
    try self.runtime.check(status, "launching \(name) (\(grid) × \(block))")
  }

  /// Launches `name` with enough blocks of 256 threads for `threads` threads.
  public func launch(_ name: String, threads: Int, _ arguments: [Argument]) throws {
    try self.launch(name, grid: max(1, (threads + 255) / 256), block: 256, arguments)
  }

  /// C ← α·op(A)·op(B) + β·C on row-major float matrices in device memory (as
  /// `BLASScalar.gemm`).
  public func gemm(
    transposeA: Bool,
    transposeB: Bool,
    m: Int,
    n: Int,
    k: Int,
    alpha: Float,
    a: UnsafeMutableRawPointer,
    lda: Int,
    b: UnsafeMutableRawPointer,
    ldb: Int,
    beta: Float,
    c: UnsafeMutableRawPointer,
    ldc: Int
  ) throws {
    let status = vane_cublas_sgemm(
      self.blas.pointer,
      self.handle,
      transposeA ? 1 : 0,
      transposeB ? 1 : 0,
      Int32(m),
      Int32(n),
      Int32(k),
      alpha,
      a.assumingMemoryBound(to: Float.self),
      Int32(lda),
      b.assumingMemoryBound(to: Float.self),
      Int32(ldb),
      beta,
      c.assumingMemoryBound(to: Float.self),
      Int32(ldc)
    )
    guard status == 0 else {
      throw VaneError(.internalError, "cuBLAS SGEMM \(m)×\(n)×\(k): status \(status)")
    }
  }
}

/// Device memory for `count` values of `T`, owned: freed when the buffer goes.
public final class CUDABuffer<T> {
  let runtime: CUDARuntime
  public let count: Int
  /// The device address (for kernel arguments and GEMMs).
  public let address: UnsafeMutableRawPointer

  init(runtime: CUDARuntime, count: Int) throws {
    var pointer: UnsafeMutableRawPointer?
    let bytes = max(count, 1) * MemoryLayout<T>.stride
    try runtime.check(
      vane_cudart_malloc(runtime.pointer, &pointer, bytes),
      "allocating \(bytes) bytes"
    )
    guard let pointer else { throw VaneError(.internalError, "CUDA allocated nothing") }
    self.runtime = runtime
    self.count = count
    self.address = pointer
    try runtime.check(vane_cudart_zero(runtime.pointer, pointer, bytes), "zeroing \(bytes) bytes")
  }

  deinit { _ = vane_cudart_free(self.runtime.pointer, self.address) }

  /// The argument for a kernel.
  public var argument: CUDADevice.Argument { .pointer(self.address) }

  /// Copies `values` (at most `count`) to the start of the buffer.
  public func copy(from values: [T]) throws {
    precondition(values.count <= self.count)
    try values.withUnsafeBytes { bytes in
      try self.runtime.check(
        vane_cudart_copy(self.runtime.pointer, self.address, bytes.baseAddress, bytes.count, 1),
        "copying \(bytes.count) bytes to the device"
      )
    }
  }

  /// The buffer's values, once the work before has finished.
  public func values() throws -> [T] {
    try [T](unsafeUninitializedCapacity: self.count) { buffer, initialized in
      try self.runtime.check(
        vane_cudart_copy(
          self.runtime.pointer,
          buffer.baseAddress,
          self.address,
          self.count * MemoryLayout<T>.stride,
          2
        ),
        "copying \(self.count * MemoryLayout<T>.stride) bytes from the device"
      )
      initialized = self.count
    }
  }
}

extension CUDARuntime {
  /// Throws the runtime's error for a failed `status`, naming `what` was being done.
  func check(_ status: Int32, _ what: String) throws {
    guard status == 0 else { throw self.error(status, what) }
  }
}
