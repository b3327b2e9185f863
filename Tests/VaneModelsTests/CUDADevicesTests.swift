import Foundation
import Testing

@testable import VaneMath

@Suite("GPUs the NVIDIA driver lists")
struct CUDADevicesTests {
  @Test(
    "The Model line of a driver information file, or nothing",
    arguments: [
      (
        "Model: \t\t NVIDIA H100 80GB HBM3\nIRQ:   \t\t 16\nBus Location: \t 0000:00:1e.0\n",
        "NVIDIA H100 80GB HBM3"
      ),
      ("IRQ: 16\nModel:\n", nil),
      ("Bus Location: 0000:00:1e.0\n", nil),
      ("", nil),
      ("Model: " + String(repeating: "G", count: 500), String(repeating: "G", count: 120)),
    ] as [(String, String?)]
  )
  func model(information: String, expected: String?) {
    #expect(CUDADevices.model(information: information) == expected)
  }

  @Test("Each bus directory is one GPU, named by its model or else its bus id, in bus order")
  func list() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-gpus-\(UUID().uuidString)"
    )
    defer { try? FileManager.default.removeItem(at: root) }
    for bus in ["0000:00:1f.0", "0000:00:1e.0"] {
      try FileManager.default.createDirectory(
        at: root.appendingPathComponent(bus),
        withIntermediateDirectories: true
      )
    }
    try "Model: \t NVIDIA H200\n".write(
      to: root.appendingPathComponent("0000:00:1e.0/information"),
      atomically: true,
      encoding: .utf8
    )
    #expect(CUDADevices.list(in: root.path) == ["NVIDIA H200", "0000:00:1f.0"])
    #expect(CUDADevices.list(in: root.appendingPathComponent("absent").path).isEmpty)
  }
}
