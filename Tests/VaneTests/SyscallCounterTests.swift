import Testing

@testable import vane

/// `vane bench rpc --syscalls` reads strace's summary table: every row's count by name, nothing
/// from the header, the rules or the total, and a clear error for what is not such a table.
@Suite("Bench: strace summaries")
struct SyscallCounterTests {
  /// What strace 6.1 writes for `strace -f -c -o FILE -p PID` (Debian 12).
  static let summary = """
    % time     seconds  usecs/call     calls    errors syscall
    ------ ----------- ----------- --------- --------- -------------------
     78.18    0.276873          37      7470       482 futex
     12.27    0.043443          13      3179           epoll_wait
      2.31    0.008168           4      2008           sendmsg
      0.62    0.002210         368         6         5 restart_syscall
      0.00    0.000000           0         1           exit_group
    ------ ----------- ----------- --------- --------- -------------------
    100.00    0.354135          27     12664       487 total

    """

  @Test("rows by name, with and without errors; header, rules and total skipped")
  func parse() throws {
    let calls = try SyscallCounter.parse(summary: Self.summary)
    #expect(
      calls == [
        "futex": 7470, "epoll_wait": 3179, "sendmsg": 2008, "restart_syscall": 6, "exit_group": 1,
      ]
    )
  }

  @Test("per call, and the difference of two runs (start-up cancels out)")
  func perCall() throws {
    let few = SyscallCounter.Counts(calls: ["futex": 100, "read": 10], rpcs: 200)
    let many = SyscallCounter.Counts(calls: ["futex": 4100, "read": 10, "write": 2000], rpcs: 2200)
    let extra = many.subtracting(few)
    #expect(extra.rpcs == 2000)
    #expect(extra.perRPC("futex") == 2)
    #expect(extra.perRPC("write") == 1)
    #expect(extra.perRPC("read") == 0)
    #expect(extra.total == 3)
  }

  @Test(
    "what is not a summary is refused, saying why",
    arguments: [
      ("", "no system call rows"),
      ("strace: attach: ptrace(PTRACE_SEIZE, 1): Operation not permitted\n", "no system call rows"),
      (" 78.18    0.276873          37      many       482 futex\n", "line 1: calls 'many'"),
      (" 78.18    0.276873          37      -5       482 futex\n", "line 1: calls '-5'"),
    ]
  )
  func refused(text: String, reason: String) {
    #expect {
      try SyscallCounter.parse(summary: text)
    } throws: { error in
      "\(error)".contains(reason)
    }
  }

  @Test("a summary over the size bound is refused before it is read")
  func bounded() {
    let huge = String(
      repeating: " 1.00 0.1 1 1 futex\n",
      count: SyscallCounter.maximumSummaryBytes / 10
    )
    #expect(throws: (any Error).self) { try SyscallCounter.parse(summary: huge) }
  }
}
