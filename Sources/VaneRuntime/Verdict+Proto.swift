public import VaneProto
public import VaneBundle

// The gatekeeper's verdict between the wire and the library: one home for the gatekeeper,
// the trainer and deploy.

extension Vane_V1_Verdict {
  /// The wire form of a library verdict.
  public init(_ verdict: Verdict) {
    self.init()
    self.manifestSha256 = verdict.manifestSHA256
    self.bundleID = verdict.bundleID
    self.reportID = verdict.reportID
    self.policyName = verdict.policyName
    self.policySha256 = verdict.policySHA256
    self.signTime = .init(
      seconds: verdict.signTimeNanos.quotientAndRemainder(dividingBy: 1_000_000_000).quotient
        - (verdict.signTimeNanos % 1_000_000_000 < 0 ? 1 : 0),
      nanos: Int32((verdict.signTimeNanos % 1_000_000_000 + 1_000_000_000) % 1_000_000_000)
    )
    self.publicKeyID = verdict.publicKeyID
    self.algorithm = verdict.algorithm == "ed25519" ? .ed25519 : .unspecified
    self.statement = verdict.statement
    self.signature = verdict.signature
  }

  /// The library's verdict; a sign time outside the valid range reads as malformed (the
  /// statement will not match).
  public var decoded: Verdict {
    let seconds = min(max(self.signTime.seconds, -9_000_000_000), 9_000_000_000)
    return Verdict(
      manifestSHA256: self.manifestSha256,
      bundleID: self.bundleID,
      reportID: self.reportID,
      policyName: self.policyName,
      policySHA256: self.policySha256,
      signTimeNanos: seconds * 1_000_000_000 + Int64(self.signTime.nanos),
      publicKeyID: self.publicKeyID,
      algorithm: self.algorithm == .ed25519 ? "ed25519" : "unspecified",
      statement: self.statement,
      signature: self.signature
    )
  }
}
