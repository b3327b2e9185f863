/// Bounds a model file must stay within: a hostile file fails with a clear error instead of
/// taking the process's memory.
public struct ONNXModelLimits: Sendable, Equatable {
  /// The ModelProto's size (and any one external data file's).
  public var maximumModelBytes: Int
  public var maximumNodes: Int
  /// Elements of any one tensor, stored or computed.
  public var maximumTensorElements: Int
  public var maximumRank: Int

  public init(
    maximumModelBytes: Int = 1 << 30,
    maximumNodes: Int = 200_000,
    maximumTensorElements: Int = 1 << 28,
    maximumRank: Int = 16
  ) {
    self.maximumModelBytes = maximumModelBytes
    self.maximumNodes = maximumNodes
    self.maximumTensorElements = maximumTensorElements
    self.maximumRank = maximumRank
  }

  public static let `default` = ONNXModelLimits()
}
