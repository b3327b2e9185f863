public import Logging

/// Process-wide logging: structured key=value lines on standard error.
public enum VaneLogging {
  /// Installs the log handler at `level`. Call once, at the start of a process.
  public static func bootstrap(level: Logger.Level) {
    // Every line logged while serving a request carries its id.
    let requestID = Logger.MetadataProvider {
      RequestID.current.map { ["request_id": "\($0)"] } ?? [:]
    }
    LoggingSystem.bootstrap { label in
      var handler = StreamLogHandler.standardError(label: label, metadataProvider: requestID)
      handler.logLevel = level
      return handler
    }
  }
}
