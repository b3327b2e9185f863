public import VaneProto
internal import Foundation
internal import SwiftProtobuf
internal import VaneCore

extension RuntimeInfo {
  /// The answer to GetServiceInfo: facts about this process, and every method of the service
  /// (from the descriptor set) with whether this build implements it.
  ///
  /// - Parameters:
  ///   - implemented: the method names this build serves; every other method answers
  ///     UNIMPLEMENTED.
  ///   - capabilities: the service's own feature flags, after the process's (health,
  ///     reflection, tls).
  public func serviceInfo(
    implemented: Set<String>,
    capabilities: [String] = []
  ) throws -> Vane_V1_ServiceInfo {
    var info = Vane_V1_ServiceInfo()
    info.service = self.kind.grpcServiceName
    info.version = BuildInfo.version
    info.buildCommit = BuildInfo.commit
    info.startTime = Google_Protobuf_Timestamp(date: self.startTime)
    info.listenAddress = self.listenAddress
    info.dataDir = self.dataDirectory
    info.pid = Int64(ProcessInfo.processInfo.processIdentifier)
    info.tls = self.tls
    switch self.adminAuth {
    case .token: info.adminAuth = .token
    case .loopbackOnly: info.adminAuth = .loopbackOnly
    }
    info.methods = try self.methodCapabilities(implemented: implemented)
    info.capabilities = ["health", "reflection"] + (self.tls ? ["tls"] : []) + capabilities
    info.maxReceiveMessageBytes = Int64(self.messageLimits.maxReceiveBytes ?? 4 << 20)
    info.maxSendMessageBytes = Int64(self.messageLimits.maxSendBytes ?? Int(Int32.max))
    info.serverTime = Google_Protobuf_Timestamp(date: Date())
    return info
  }

  /// Every method of the service with its flags; fixed for a process, so built once.
  private func methodCapabilities(implemented: Set<String>) throws -> [Vane_V1_MethodCapability] {
    if let cached = self.capabilities.withLock({
      $0?.implemented == implemented ? $0?.methods : nil
    }) {
      return cached
    }
    let methods = try DescriptorCatalog.vane().methods(ofService: self.kind.grpcServiceName).map {
      method in
      var capability = Vane_V1_MethodCapability()
      capability.name = method.name
      capability.path = "/" + method.path
      capability.implemented = implemented.contains(method.name)
      capability.admin = AdminMethods.isAdmin(service: method.service, method: method.name)
      switch (method.clientStreaming, method.serverStreaming) {
      case (false, false): capability.streaming = .unary
      case (true, false): capability.streaming = .clientStreaming
      case (false, true): capability.streaming = .serverStreaming
      case (true, true): capability.streaming = .bidiStreaming
      }
      return capability
    }
    self.capabilities.withLock { $0 = (implemented, methods) }
    return methods
  }
}
