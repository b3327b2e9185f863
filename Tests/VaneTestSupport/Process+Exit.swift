public import Foundation

extension Process {
  /// Waits for the process to end, sleeping between looks: Foundation's `waitUntilExit()` on
  /// Linux spins a run loop meanwhile, which on two cores takes a core from the suite.
  public func waitForExit() {
    while self.isRunning { usleep(2_000) }
    self.waitUntilExit()
  }

  /// Waits for the process to end without holding a thread of the cooperative pool.
  public func exited() async {
    while self.isRunning { try? await Task.sleep(for: .milliseconds(5)) }
    self.waitUntilExit()
  }
}
