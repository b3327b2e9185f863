internal import GRPCCore
internal import Logging
internal import ServiceLifecycle
internal import VaneCore
internal import VaneMetrics
internal import VaneRollout
internal import VaneRuntime

/// Follows the predictor's grpc.health.v1 Watch stream on deploy's predictor connection and
/// tells the ``RolloutController`` every change: down when the stream breaks or says
/// NOT_SERVING, back when it says SERVING again. The stream waits for the channel, so a dead
/// predictor costs nothing while it is away; after a failure the watch starts over.
struct PredictorHealthWatch: Service {
  let client: UpstreamClient
  let controller: RolloutController
  let logger = Logger(label: "vane.deploy.health")
  /// `vane_deploy_predictor_serving{predictor}`: 1 while the predictor reports SERVING.
  let serving = GaugeFamily("vane_deploy_predictor_serving")

  func run() async throws {
    await cancelWhenGracefulShutdown {
      while !Task.isCancelled {
        var reason = "the health stream ended"
        do {
          try await HealthProbe.watch(
            upstream: self.client,
            service: ServiceKind.predictor.grpcServiceName
          ) { outcome in
            let observation: PredictorHealth.Observation =
              outcome == .serving ? .serving : .notServing
            await self.report(observation, "\(outcome)")
          }
        } catch {
          reason = "\(error)"
        }
        if Task.isCancelled { break }
        await self.report(.streamEnded, reason)
        // The next Watch waits for the channel to be ready again; the pause only keeps a
        // predictor that refuses the stream outright from being asked in a tight loop.
        try? await Task.sleep(for: .milliseconds(250))
      }
    }
  }

  private func report(_ observation: PredictorHealth.Observation, _ detail: String) async {
    let (before, after) = await self.controller.observePredictorHealth(observation)
    self.serving.set([
      (dimensions: [("predictor", self.client.address)], value: after == .serving ? 1 : 0)
    ])
    if before != after {
      // Losing the predictor is a warning (rollouts stall, patience runs); its return is news.
      self.logger.log(
        level: after == .serving ? .notice : .warning,
        "predictor health changed",
        metadata: [
          "predictor": "\(self.client.address)", "from": "\(before.rawValue)",
          "to": "\(after.rawValue)", "detail": "\(detail)",
        ]
      )
    }
  }
}
