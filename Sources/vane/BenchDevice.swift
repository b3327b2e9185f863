import ArgumentParser
import VaneMath
import VaneModels

/// `--device` of the training benchmarks (`bench models`, `bench train`): `cpu`, or `cuda`
/// where what the timed parts need is here.
enum BenchDevice {
  /// Checks `device` for benchmarks that time XGBoost (`xgboost`) and the networks (`networks`:
  /// the MLP, the LSTM) on it;
  /// `unsupported` names a timed part with no CUDA backend and how to leave it out.
  /// - Throws: `ValidationError` for another device, a part without a CUDA backend, or each
  ///   thing CUDA lacks here (a libxgboost without CUDA, no GPU, a CUDA library missing).
  static func check(
    _ device: String,
    xgboost: Bool,
    networks: Bool,
    unsupported: String?
  ) throws {
    switch device {
    case "cpu": return
    case "cuda":
      if let unsupported { throw ValidationError("--device cuda: \(unsupported)") }
      var problems: [String] = []
      if xgboost {
        problems += XGBoostModel.cudaProblems(
          library: XGBoostModel.library,
          gpus: CUDADevices.visible
        )
      }
      if networks { problems += CUDATrainingDevice.problems() }
      guard problems.isEmpty else {
        throw ValidationError("--device cuda: \(problems.joined(separator: "; "))")
      }
    default: throw ValidationError("--device: cpu or cuda (got '\(device)')")
    }
  }
}
