public import Logging

/// Process-wide logging: structured key=value lines on standard error.
public enum VaneLogging {
  /// Installs the log handler at `level`. Call once, at the start of a process.
  public static func bootstrap(level: Logger.Level) {
    LoggingSystem.bootstrap { label in
      var handler = StreamLogHandler.standardError(label: label)
      handler.logLevel = level
      return handler
    }
  }
}
