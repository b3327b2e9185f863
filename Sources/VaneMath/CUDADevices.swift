internal import Foundation

/// The NVIDIA GPUs this machine shows, as the kernel driver lists them: one directory per GPU
/// under `/proc/driver/nvidia/gpus`, each with an `information` file whose `Model:` line names
/// it. Read without loading any CUDA library, so a machine without one (CI, most development
/// machines) answers "none" at no cost.
public enum CUDADevices {
  /// The driver's directory of GPUs.
  public static let driverDirectory = "/proc/driver/nvidia/gpus"

  /// Most GPUs listed, and most bytes read of one `information` file.
  static let maximumDevices = 64
  static let maximumInformationBytes = 16 << 10

  /// The visible GPUs' models (their PCI bus ids when a file does not say), sorted by bus id;
  /// empty without the NVIDIA driver.
  public static var visible: [String] { Self.list(in: Self.driverDirectory) }

  /// The GPUs listed under `directory` (the driver's layout).
  static func list(in directory: String) -> [String] {
    guard
      let entries = try? FileManager.default.contentsOfDirectory(atPath: directory)
    else { return [] }
    return entries.sorted().prefix(Self.maximumDevices).map { bus in
      let file = FileHandle(forReadingAtPath: "\(directory)/\(bus)/information")
      defer { try? file?.close() }
      let data = (try? file?.read(upToCount: Self.maximumInformationBytes)) ?? nil
      return data.flatMap { Self.model(information: String(decoding: $0, as: UTF8.self)) } ?? bus
    }
  }

  /// The `Model:` line's value of a driver `information` file, nil when there is none.
  static func model(information: String) -> String? {
    for line in information.split(separator: "\n", omittingEmptySubsequences: true) {
      let parts = line.split(separator: ":", maxSplits: 1)
      guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == "Model" else {
        continue
      }
      let value = parts[1].trimmingCharacters(in: .whitespaces)
      return value.isEmpty ? nil : String(value.prefix(120))
    }
    return nil
  }
}
