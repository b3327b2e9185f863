internal import VaneMetrics
internal import VaneRollout

extension DeployServiceImplementation {
  /// Deploy's figures, read at each scrape from its rollout store:
  /// - `vane_deploy_rollouts{state}`: rollouts by state (every state, zeros too);
  /// - `vane_deploy_rollout_step{model_id,version,state}`: the step an unfinished rollout is at
  ///   (0-based), and `vane_deploy_rollout_traffic_percent{…}` the candidate's share; a rollout's
  ///   series goes when it finishes.
  public func metricsRefresh() -> @Sendable () -> Void {
    let byState = GaugeFamily("vane_deploy_rollouts")
    let step = GaugeFamily("vane_deploy_rollout_step")
    let traffic = GaugeFamily("vane_deploy_rollout_traffic_percent")
    let store = self.controller.store
    return {
      guard let rollouts = try? store.rollouts() else { return }
      var counts: [Rollout.State: Int] = [:]
      for rollout in rollouts { counts[rollout.state, default: 0] += 1 }
      byState.set(
        Rollout.State.allCases.map {
          (dimensions: [("state", $0.rawValue)], value: Double(counts[$0] ?? 0))
        }
      )
      let active = rollouts.filter { !$0.state.isTerminal }
      let series = active.map {
        [("model_id", $0.modelID), ("version", $0.version), ("state", $0.state.rawValue)]
      }
      step.set(zip(series, active).map { (dimensions: $0, value: Double($1.currentStep)) })
      traffic.set(zip(series, active).map { (dimensions: $0, value: $1.trafficPercent) })
    }
  }
}
