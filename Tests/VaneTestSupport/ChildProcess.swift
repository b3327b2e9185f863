internal import Foundation

/// A child process run to its end with its resource usage: its exit status and its own peak
/// resident memory.
///
/// The child is started by a small python3 reporter, not by this process. On Linux a child's
/// `ru_maxrss` is the larger of its own high-water mark and that of the address space it was
/// exec'd from, and `posix_spawn` execs from the parent's (glibc spawns with `CLONE_VM`): spawned
/// from a test process that has grown to hundreds of MiB, every child "peaks" at the test
/// process's size, and the difference of two children is how much the test process grew between
/// them. Spawned from the reporter, a child's figure is the larger of its own peak and the
/// reporter's (about 13 MiB), and `wait4` there reads it.
public enum ChildProcess {
  public struct Result: Sendable {
    public var status: Int32
    public var peakResidentBytes: Int
    public var stderr: String
  }

  /// Starts `argv[2]` with `argv[2:]`, waits for it, and writes its raw wait status and its
  /// `ru_maxrss` (KiB) to the file `argv[1]`.
  static let reporter = """
    import os, sys
    pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
    _, status, usage = os.wait4(pid, 0)
    with open(sys.argv[1], "w") as report:
        report.write(f"{status} {usage.ru_maxrss}")
    """

  /// Runs `executable arguments…` (with `environment` added to this process's), its stdout
  /// discarded and stderr kept, polling for its end without holding a cooperative thread.
  public static func run(
    _ executable: String,
    _ arguments: [String],
    environment: [String: String] = [:]
  ) async throws -> Result {
    let base = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-child-\(UUID().uuidString)"
    ).path
    let errors = base + ".err", report = base + ".report"
    defer {
      try? FileManager.default.removeItem(atPath: errors)
      try? FileManager.default.removeItem(atPath: report)
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, errors, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    var merged = ProcessInfo.processInfo.environment
    for (key, value) in environment { merged[key] = value }
    let argv =
      (["python3", "-c", Self.reporter, report, executable] + arguments).map { strdup($0) }
      + [nil]
    let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
      for pointer in argv { free(pointer) }
      for pointer in envp { free(pointer) }
    }
    var pid: pid_t = 0
    let spawned = posix_spawnp(&pid, "python3", &actions, nil, argv, envp)
    guard spawned == 0 else {
      throw NSError(domain: "posix_spawn", code: Int(spawned))
    }
    var reporterStatus: Int32 = 0
    while true {
      let done = waitpid(pid, &reporterStatus, WNOHANG)
      if done == pid { break }
      guard done == 0 else { throw NSError(domain: "waitpid", code: Int(errno)) }
      try await Task.sleep(for: .milliseconds(5))
    }
    let stderr = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
    let fields = ((try? String(contentsOfFile: report, encoding: .utf8)) ?? "")
      .split(separator: " ").compactMap { Int32($0) }
    guard reporterStatus == 0, fields.count == 2 else {
      throw NSError(
        domain: "ChildProcess",
        code: Int(reporterStatus),
        userInfo: [NSLocalizedDescriptionKey: "the python3 reporter failed: \(stderr)"]
      )
    }
    // WIFEXITED / WEXITSTATUS, which Swift does not import as macros.
    let status = fields[0]
    let exit = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return Result(status: exit, peakResidentBytes: Int(fields[1]) * 1024, stderr: stderr)
  }
}
