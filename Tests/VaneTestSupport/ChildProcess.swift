internal import Foundation

/// A child process run to its end with its resource usage: its exit status and peak resident
/// memory (`wait4`'s `ru_maxrss`, the child's own high-water mark, unaffected by anything else
/// the test process or its other children do).
public enum ChildProcess {
  public struct Result: Sendable {
    public var status: Int32
    public var peakResidentBytes: Int
    public var stderr: String
  }

  /// Runs `executable arguments…` (with `environment` added to this process's), its stdout
  /// discarded and stderr kept, polling for its end without holding a cooperative thread.
  public static func run(
    _ executable: String,
    _ arguments: [String],
    environment: [String: String] = [:]
  ) async throws -> Result {
    let errors = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-child-\(UUID().uuidString).err"
    ).path
    defer { try? FileManager.default.removeItem(atPath: errors) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, errors, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    var merged = ProcessInfo.processInfo.environment
    for (key, value) in environment { merged[key] = value }
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
      for pointer in argv { free(pointer) }
      for pointer in envp { free(pointer) }
    }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, executable, &actions, nil, argv, envp)
    guard spawned == 0 else {
      throw NSError(domain: "posix_spawn", code: Int(spawned))
    }
    var status: Int32 = 0
    var usage = rusage()
    while true {
      let done = wait4(pid, &status, WNOHANG, &usage)
      if done == pid { break }
      guard done == 0 else { throw NSError(domain: "wait4", code: Int(errno)) }
      try await Task.sleep(for: .milliseconds(5))
    }
    // WIFEXITED / WEXITSTATUS, which Swift does not import as macros.
    let exit = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return Result(
      status: exit,
      peakResidentBytes: Int(usage.ru_maxrss) * 1024,
      stderr: (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
    )
  }
}
