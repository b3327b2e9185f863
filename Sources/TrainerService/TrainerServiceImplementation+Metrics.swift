internal import VaneMetrics
internal import VaneProto

extension TrainerServiceImplementation {
  /// The trainer's figures, read at each scrape: jobs by state (every state listed, zeros too,
  /// so a query over `state` never misses a series).
  public func metricsRefresh() -> @Sendable () -> Void {
    let jobs = GaugeFamily("vane_trainer_jobs")
    let board = self.board
    return {
      var counts: [Vane_V1_JobState: Int] = [:]
      for job in board.allJobs() { counts[job.state, default: 0] += 1 }
      let states = Vane_V1_JobState.allCases.filter { $0 != .unspecified }
      jobs.set(states.map { (dimensions: [("state", "\($0)")], value: Double(counts[$0] ?? 0)) })
    }
  }
}
