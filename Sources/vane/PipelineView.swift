internal import Foundation

/// What the pipeline shows while it runs. Event lines ("== train v2", a rollout's steps) always
/// scroll by; on a terminal a panel below them is redrawn in place during the replay: the
/// replay's progress bar, the traffic split, live against out-of-fold AUC per version, and the
/// rollout's current step with its last analysis. Written to a pipe or a file, the view is plain
/// lines, with a status line every `checkEvery` bars instead of the panel.
final class PipelineView {
  enum Mode: String, CaseIterable, Sendable {
    /// A redrawn panel when standard output is a terminal, lines otherwise.
    case auto
    /// The redrawn panel, whatever standard output is.
    case live
    /// Lines only.
    case lines
  }

  /// Whether the panel is drawn.
  let live: Bool
  private let write: (String) -> Void
  private let width: () -> Int
  /// Lines of the panel now on screen (0: none).
  private var drawn = 0
  /// The panel's last contents, redrawn under each event line.
  private var panel: [String] = []
  private var lastDraw: ContinuousClock.Instant?
  /// Redraws at most this often (a replay at full speed advances hundreds of bars a second).
  let minimumInterval: Duration

  init(
    mode: Mode,
    isTerminal: Bool = isatty(STDOUT_FILENO) == 1
      && ProcessInfo.processInfo.environment["TERM"] != "dumb",
    minimumInterval: Duration = .milliseconds(100),
    width: @escaping () -> Int = PipelineView.terminalWidth,
    write: @escaping (String) -> Void = { FileHandle.standardOutput.write(Data($0.utf8)) }
  ) {
    self.live = mode == .live || (mode == .auto && isTerminal)
    self.minimumInterval = minimumInterval
    self.width = width
    self.write = write
  }

  /// An event: printed above the panel, which is drawn again below it.
  func line(_ text: String) {
    guard self.live, self.drawn > 0 else {
      self.write(text + "\n")
      return
    }
    self.write(Self.erase(self.drawn) + text + "\n" + self.rendered(self.panel))
    self.drawn = self.panel.count
  }

  /// Sets the panel; drawn now when `force` or when the last draw is older than the minimum
  /// interval (the latest contents are drawn with the next event or update either way).
  func update(_ lines: [String], force: Bool = false) {
    guard self.live else { return }
    self.panel = lines
    let now = ContinuousClock.now
    if !force, let last = self.lastDraw, now - last < self.minimumInterval { return }
    self.lastDraw = now
    self.write(Self.erase(self.drawn) + self.rendered(lines))
    self.drawn = lines.count
  }

  /// Takes the panel off the screen (before a stage that draws its own progress, and at the
  /// end); the next ``update(_:force:)`` brings it back.
  func clear() {
    guard self.live, self.drawn > 0 else { return }
    self.write(Self.erase(self.drawn))
    self.drawn = 0
    self.panel = []
  }

  /// Moves to the start of the line `count` lines up and clears to the end of the screen.
  static func erase(_ count: Int) -> String {
    count > 0 ? "\u{1B}[\(count)F\u{1B}[J" : ""
  }

  /// Each line cut to the terminal's width, so none wraps and the count of lines to erase
  /// stays right.
  private func rendered(_ lines: [String]) -> String {
    let width = max(20, self.width())
    return lines.map { line in line.count > width ? String(line.prefix(width - 1)) + "…" : line }
      .map { $0 + "\n" }.joined()
  }

  static func terminalWidth() -> Int {
    var size = winsize()
    guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 100 }
    return Int(size.ws_col)
  }
}

/// The panel's contents, from what the run knows: pure, so a test can read it.
struct PipelinePanel {
  struct Version {
    var label: String
    var role: String
    var oofAUC: Double?
    var liveAUC: Double?
    var matured: Int64
    var answers: Int64
    /// What it does now: "serving 100%", "canary 25%", "shadow", "rolled back", "replaced".
    var state: String
  }

  var stage: String
  var bar: Int
  var bars: Int
  var barTime: String
  var barsPerSecond: Double?
  var versions: [Version]
  /// The active rollout: its version, state and step, and its latest analysis.
  var rollout: (label: String, state: String, analysis: String)?
  var failedPredictions: Int

  /// `[██████░░░░]`: `width` cells, filled by `fraction`.
  static func bar(_ fraction: Double, width: Int) -> String {
    let filled = Int((min(max(fraction, 0), 1) * Double(width)).rounded(.down))
    return "[" + String(repeating: "█", count: filled)
      + String(repeating: "░", count: width - filled) + "]"
  }

  static func auc(_ value: Double?) -> String { value.map { String(format: "%.3f", $0) } ?? "-" }

  func lines() -> [String] {
    var header =
      "── \(self.stage) \(Self.bar(self.bars == 0 ? 0 : Double(self.bar) / Double(self.bars), width: 24)) bar \(self.bar)/\(self.bars)  \(self.barTime)"
    if let rate = self.barsPerSecond { header += String(format: "  %.1f bars/s", rate) }
    if self.failedPredictions > 0 { header += "  failed predictions \(self.failedPredictions)" }
    var lines = [header]
    let traffic = self.versions.filter {
      $0.state.hasPrefix("serving") || $0.state.hasPrefix("canary") || $0.state == "shadow"
    }
    lines.append(
      "   traffic  "
        + (traffic.isEmpty
          ? "-" : traffic.map { "\($0.label) \($0.state)" }.joined(separator: " · "))
    )
    let pad = { (text: String, width: Int) in
      text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0)
    }
    lines.append(
      "   " + pad("version", 9) + pad("role", 11) + pad("OOF AUC", 9) + pad("live AUC", 10)
        + pad("matured", 9) + pad("answers", 9) + "now"
    )
    for v in self.versions {
      lines.append(
        "   " + pad(v.label, 9) + pad(v.role, 11) + pad(Self.auc(v.oofAUC), 9)
          + pad(Self.auc(v.liveAUC), 10) + pad("\(v.matured)", 9) + pad("\(v.answers)", 9)
          + v.state
      )
    }
    if let rollout = self.rollout {
      lines.append(
        "   rollout  \(rollout.label) \(rollout.state)"
          + (rollout.analysis.isEmpty ? "" : "; last analysis \(rollout.analysis)")
      )
    } else {
      lines.append("   rollout  none active")
    }
    return lines
  }
}
