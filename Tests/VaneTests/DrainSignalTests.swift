import Testing
import VaneRuntime

@Suite("Drain signal")
struct DrainSignalTests {
  @Test("Waiters return when the drain starts; a wait after it returns at once")
  func start() async {
    let signal = DrainSignal()
    let waiters = (0 ..< 3).map { _ in Task { await signal.wait() } }
    try? await Task.sleep(for: .milliseconds(20))
    #expect(!signal.started)
    signal.start()
    for waiter in waiters { await waiter.value }
    #expect(signal.started)
    await signal.wait()
    signal.start()
  }

  @Test("A cancelled waiter returns without the drain having started")
  func cancelled() async {
    let signal = DrainSignal()
    let waiter = Task { await signal.wait() }
    try? await Task.sleep(for: .milliseconds(20))
    waiter.cancel()
    await waiter.value
    #expect(!signal.started)
  }
}
