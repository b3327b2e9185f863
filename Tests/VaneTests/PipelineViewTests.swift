import Foundation
import Synchronization
import Testing

@testable import vane

/// The pipeline's live view without a terminal: what it writes, byte for byte.
@Suite("Pipeline live view")
struct PipelineViewTests {
  final class Screen: Sendable {
    let written = Mutex("")
    var text: String { self.written.withLock { $0 } }
    func take() -> String {
      self.written.withLock { text in
        defer { text = "" }
        return text
      }
    }
  }

  static func view(
    _ mode: PipelineView.Mode,
    terminal: Bool,
    width: Int = 80,
    screen: Screen
  ) -> PipelineView {
    PipelineView(
      mode: mode,
      isTerminal: terminal,
      minimumInterval: .seconds(3600),
      width: { width }
    ) { text in screen.written.withLock { $0 += text } }
  }

  @Test(
    "Which mode draws the panel",
    arguments: [
      (PipelineView.Mode.auto, true, true), (.auto, false, false), (.live, false, true),
      (.lines, true, false),
    ]
  )
  func modes(mode: PipelineView.Mode, terminal: Bool, live: Bool) {
    #expect(Self.view(mode, terminal: terminal, screen: Screen()).live == live)
  }

  @Test(
    "On a terminal an event is printed above the panel, which is erased and drawn again below it"
  )
  func redraw() {
    let screen = Screen()
    let view = Self.view(.live, terminal: true, screen: screen)
    view.line("== first")
    #expect(screen.take() == "== first\n")
    view.update(["panel a", "panel b"], force: true)
    #expect(screen.take() == "panel a\npanel b\n")
    // Within the minimum interval an update is kept, not drawn; the next event draws it.
    view.update(["panel c"])
    #expect(screen.take() == "")
    view.line("== second")
    #expect(screen.take() == "\u{1B}[2F\u{1B}[J== second\npanel c\n")
    view.clear()
    #expect(screen.take() == "\u{1B}[1F\u{1B}[J")
    view.line("== third")
    #expect(screen.take() == "== third\n")
  }

  @Test("Plain lines: no escape sequences, no panel")
  func lines() {
    let screen = Screen()
    let view = Self.view(.lines, terminal: true, screen: screen)
    view.update(["panel"], force: true)
    view.line("== event")
    view.clear()
    #expect(screen.text == "== event\n")
  }

  @Test("Panel lines longer than the terminal are cut, so the count of lines to erase stays right")
  func cut() {
    let screen = Screen()
    let view = Self.view(.live, terminal: true, width: 20, screen: screen)
    view.update([String(repeating: "x", count: 50), "short"], force: true)
    #expect(screen.take() == String(repeating: "x", count: 19) + "…\nshort\n")
  }

  @Test(
    "The panel: replay bar, traffic, live against out-of-fold AUC per version, the rollout's last analysis"
  )
  func panel() {
    let panel = PipelinePanel(
      stage: "replay",
      bar: 186,
      bars: 744,
      barTime: "2024-12-08 17:00",
      barsPerSecond: 12.5,
      versions: [
        .init(
          label: "v1",
          role: "first",
          oofAUC: 0.5471,
          liveAUC: 0.5442,
          matured: 412,
          answers: 600,
          state: "serving 75%"
        ),
        .init(
          label: "v2",
          role: "retrained",
          oofAUC: 0.561,
          liveAUC: nil,
          matured: 0,
          answers: 12,
          state: "canary 25%"
        ),
        .init(
          label: "v0",
          role: "injected",
          oofAUC: nil,
          liveAUC: nil,
          matured: 0,
          answers: 0,
          state: "rolled back"
        ),
      ],
      rollout: (label: "v2", state: "CANARY", analysis: "inconclusive: 12 of 48 matured outcomes"),
      failedPredictions: 0
    )
    let lines = panel.lines()
    #expect(
      lines[0] == "── replay [██████░░░░░░░░░░░░░░░░░░] bar 186/744  2024-12-08 17:00  12.5 bars/s"
    )
    #expect(lines[1] == "   traffic  v1 serving 75% · v2 canary 25%")
    #expect(lines[2].hasPrefix("   version  role       OOF AUC  live AUC"))
    #expect(lines[3] == "   v1       first      0.547    0.544     412      600      serving 75%")
    #expect(lines[4] == "   v2       retrained  0.561    -         0        12       canary 25%")
    #expect(lines[5].hasSuffix("rolled back"))
    #expect(
      lines[6] == "   rollout  v2 CANARY; last analysis inconclusive: 12 of 48 matured outcomes"
    )
    #expect(
      PipelinePanel.bar(0, width: 4) == "[░░░░]" && PipelinePanel.bar(1, width: 4) == "[████]"
        && PipelinePanel.bar(2, width: 4) == "[████]"
    )
  }
}
