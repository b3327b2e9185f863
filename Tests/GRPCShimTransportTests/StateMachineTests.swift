import GRPCCore
import Testing

@testable import GRPCShimTransport

/// The transport's pieces that involve no I/O: the callback/awaiter handoff, the grpc-timeout
/// codec and the metadata filter.
@Suite("Transport state machines and codecs, without I/O")
struct StateMachineTests {
  /// A continuation to park, and what it was resumed with.
  private func park(_ handoff: inout Handoff<Int>) async -> (Int?, Int) {
    var early: Int?
    var handoffCopy = handoff
    let value = await withCheckedContinuation { continuation in
      early = handoffCopy.wait(continuation)
      if let early {
        continuation.resume(returning: early)
      } else {
        // Deliver after parking: the delivery hands back the parked continuation.
        let parked = handoffCopy.deliver(42)
        parked?.resume(returning: 42)
      }
    }
    handoff = handoffCopy
    return (early, value)
  }

  @Test("A value that arrives first is taken by the next waiter; the slot is empty again")
  func valueFirst() async {
    var handoff = Handoff<Int>()
    #expect(handoff.deliver(7) == nil)
    let (early, value) = await self.park(&handoff)
    #expect(early == 7)
    #expect(value == 7)
    #expect(!handoff.isWaiting)
  }

  @Test("A waiter that arrives first is handed back to the delivery")
  func waiterFirst() async {
    var handoff = Handoff<Int>()
    let (early, value) = await self.park(&handoff)
    #expect(early == nil)
    #expect(value == 42)
    #expect(!handoff.isWaiting)
  }

  @Test("A later delivery replaces an unconsumed one (the terminal value wins)")
  func terminalWins() async {
    var handoff = Handoff<Int>()
    _ = handoff.deliver(1)
    _ = handoff.deliver(2)
    let (early, _) = await self.park(&handoff)
    #expect(early == 2)
  }

  @Test("An ending call does not erase a value that arrived before it")
  func deliverUnlessReady() async {
    var handoff = Handoff<Int>()
    _ = handoff.deliver(5)
    _ = handoff.deliverUnlessReady(0)
    let (early, _) = await self.park(&handoff)
    #expect(early == 5)
    _ = handoff.deliverUnlessReady(0)
    let (afterEnd, _) = await self.park(&handoff)
    #expect(afterEnd == 0)
  }

  @Test("A parked waiter can be taken back when its operation cannot start")
  func cancelWait() async {
    var handoff = Handoff<Int>()
    let value = await withCheckedContinuation { continuation in
      #expect(handoff.wait(continuation) == nil)
      #expect(handoff.isWaiting)
      let taken = handoff.cancelWait()
      #expect(!handoff.isWaiting)
      taken?.resume(returning: -1)
    }
    #expect(value == -1)
    #expect(handoff.cancelWait() == nil)
  }

  @Test("Read-ahead of 2 reads a single message and the end before the consumer asks")
  func readAheadSingleMessage() async {
    var reads = ReadAhead(limit: 2)
    let s1 = reads.startReadIfNeeded()
    #expect(s1)
    let s6 = reads.startReadIfNeeded()
    #expect(!s6, "one read in flight at a time")
    let w1 = reads.completed(.message([1]))
    #expect(w1 == nil)
    let s2 = reads.startReadIfNeeded()
    #expect(s2, "room for one more result")
    let w2 = reads.completed(.end)
    #expect(w2 == nil)
    let s7 = reads.startReadIfNeeded()
    #expect(!s7, "nothing is read after the end")
    let first = await withCheckedContinuation { continuation in
      continuation.resume(returning: reads.next(continuation) ?? .message([]))
    }
    let second = await withCheckedContinuation { continuation in
      continuation.resume(returning: reads.next(continuation) ?? .message([]))
    }
    guard case .message(let bytes) = first, case .end = second else {
      Issue.record("expected the message, then the end")
      return
    }
    #expect(bytes == [1])
  }

  @Test(
    "A single-request handler starts with the read that completes its request: the end, a second message (refused by the handler), or the call ending",
    arguments: [
      ([ReadResult.message([1]), .end], 1),
      ([ReadResult.message([1]), .message([2])], 1),
      ([ReadResult.end], 0),
    ]
  )
  func handlerStartsWithItsRequest(reads: [ReadResult], startsAfter: Int) {
    var state = ShimServerCall.State(read: ReadAhead(limit: 2))
    state.handlerAwaitsRequest = true
    var starts: [Int] = []
    for (index, result) in reads.enumerated() {
      _ = state.read.startReadIfNeeded()
      if state.readCompleted(result).startHandler { starts.append(index) }
    }
    #expect(starts == [startsAfter], "started exactly once, after read \(startsAfter)")
    #expect(!state.handlerAwaitsRequest)
  }

  @Test("A streaming request's handler is not started by reads")
  func streamingHandlerIsNotStartedByReads() {
    var state = ShimServerCall.State(read: ReadAhead(limit: 1))
    _ = state.read.startReadIfNeeded()
    #expect(!state.readCompleted(.message([1])).startHandler)
    #expect(state.read.isComplete, "one message buffered fills a read-ahead of 1")
  }

  @Test("Read-ahead of 1 holds one message until the consumer takes it (backpressure)")
  func readAheadBackpressure() async {
    var reads = ReadAhead(limit: 1)
    let s3 = reads.startReadIfNeeded()
    #expect(s3)
    _ = reads.completed(.message([1]))
    let s8 = reads.startReadIfNeeded()
    #expect(!s8, "the buffer is full")
    _ = await withCheckedContinuation { continuation in
      continuation.resume(returning: reads.next(continuation) ?? .end)
    }
    let s4 = reads.startReadIfNeeded()
    #expect(s4, "taking the message makes room for the next read")
  }

  @Test("A parked consumer gets the completed read directly; closing ends a parked consumer")
  func readAheadParked() async {
    var reads = ReadAhead(limit: 1)
    let s5 = reads.startReadIfNeeded()
    #expect(s5)
    let value = await withCheckedContinuation { continuation in
      let parked = reads.next(continuation)
      #expect(parked == nil)
      reads.completed(.message([9]))?.resume(returning: .message([9]))
    }
    if case .message(let bytes) = value {
      #expect(bytes == [9])
    } else {
      Issue.record("expected a message")
    }
    let ended = await withCheckedContinuation { continuation in
      let parked = reads.next(continuation)
      #expect(parked == nil)
      reads.close()?.resume(returning: .end)
    }
    if case .message = ended { Issue.record("expected the end") }
    let s9 = reads.startReadIfNeeded()
    #expect(!s9)
  }

  @Test(
    "grpc-timeout encodes with at most eight digits, rounding up",
    arguments: [
      (Int64(0), "0n"), (Int64(1), "1n"), (Int64(99_999_999), "99999999n"),
      (Int64(100_000_000), "100000u"),
      (Int64(1_500_000_001), "1500001u"), (Int64(200_000_000_000), "200000m"),
      (Int64(3_600_000_000_000_000), "3600000S"),
    ]
  )
  func timeoutEncoding(nanoseconds: Int64, text: String) {
    #expect(GRPCTimeout.encode(nanoseconds: nanoseconds) == text)
    let decoded = GRPCTimeout.decode(text)
    #expect(decoded != nil && decoded! >= nanoseconds)
  }

  @Test(
    "grpc-timeout rejects what is not a timeout",
    arguments: ["", "m", "12", "123456789m", "-1m", "1x", "1.5S"]
  )
  func timeoutRejects(text: String) {
    #expect(GRPCTimeout.decode(text) == nil)
  }

  @Test(
    "Reserved header names never travel as custom metadata",
    arguments: [
      (":authority", true), ("grpc-timeout", true), ("content-type", true), ("te", true),
      ("user-agent", true),
      ("authorization", false), ("x-request-id", false), ("trace-bin", false),
    ]
  )
  func reserved(key: String, reserved: Bool) {
    #expect(ShimMetadata.isReserved(key) == reserved)
  }

  @Test("Metadata survives the C round trip, reserved keys dropped")
  func metadataRoundTrip() {
    var metadata: Metadata = ["x-a": "1", "grpc-timeout": "5S", "X-Upper": "kept"]
    metadata.addBinary([0, 255, 10], forKey: "x-b-bin")
    let back = ShimMetadata.withEntries(metadata) { ShimMetadata.decode($0, count: $1) }
    #expect(Array(back[stringValues: "x-a"]) == ["1"])
    #expect(Array(back[stringValues: "x-upper"]) == ["kept"])
    #expect(Array(back[binaryValues: "x-b-bin"]) == [[0, 255, 10]])
    #expect(Array(back[stringValues: "grpc-timeout"]).isEmpty)
  }
}
