import Foundation
import Logging
import GRPCCore
import VaneWireCoding
import SwiftProtobuf
import GRPCShimTransport
import Testing
import VaneCore
import VaneProto
import VaneRuntime
import VaneTestSupport
import FeatureService
import TrainerService
import PredictorService
import GatekeeperService
import DeployService

/// The five services over the in-process transport and over the shim: the answers agree.
@Suite("Services: GetServiceInfo, UNIMPLEMENTED, admin authorisation")
struct ServiceTests {
  static func services(_ info: RuntimeInfo) throws -> [any RegistrableRPCService] {
    switch info.kind {
    case .feature: [try FeatureServiceImplementation(runtime: info)]
    case .trainer:
      [
        try TrainerServiceImplementation(
          runtime: info,
          config: TrainerConfig(featureAddress: "127.0.0.1:1", gatekeeperAddress: "127.0.0.1:1"),
          logger: Logger(label: "test")
        )
      ]
    case .predictor: [PredictorServiceImplementation(runtime: info)]
    case .gatekeeper: [try GatekeeperServiceImplementation(runtime: info)]
    case .deploy:
      [
        try DeployServiceImplementation(
          runtime: info,
          config: DeployConfig(
            predictorAddress: "127.0.0.1:1",
            featureAddress: nil,
            trustedKeysDirectory: "/nonexistent"
          )
        )
      ]
    }
  }

  static func implemented(_ kind: ServiceKind) -> Set<String> {
    switch kind {
    case .feature: FeatureServiceImplementation.implemented
    case .trainer: TrainerServiceImplementation.implemented
    case .predictor: PredictorServiceImplementation.implemented
    case .gatekeeper: GatekeeperServiceImplementation.implemented
    case .deploy: DeployServiceImplementation.implemented
    }
  }

  static func info(
    _ kind: ServiceKind,
    auth: AdminAuthInterceptor.Mode = .loopbackOnly
  ) -> RuntimeInfo {
    RuntimeInfo(
      kind: kind,
      configuredAddress: "127.0.0.1:0",
      dataDirectory: "/tmp/vane-test/\(kind.rawValue)",
      tls: false,
      adminAuth: auth
    )
  }

  /// GetServiceInfo for `kind` over `transport`, as JSON-able facts that must not depend on it.
  static func serviceInfo(
    _ kind: ServiceKind,
    over transport: TransportKind
  ) async throws -> Vane_V1_ServiceInfo {
    let info = Self.info(kind)
    return try await withServer(transport, services: try Self.services(info)) { client, _ in
      let request = ClientRequest(message: Vane_V1_GetServiceInfoRequest())
      return try await client.unary(
        request: request,
        descriptor: MethodDescriptor(
          fullyQualifiedService: kind.grpcServiceName,
          method: "GetServiceInfo"
        ),
        serializer: ProtobufSerializer<Vane_V1_GetServiceInfoRequest>(),
        deserializer: ProtobufDeserializer<Vane_V1_ServiceInfo>(),
        options: .defaults
      ) { try $0.message }
    }
  }

  @Test("GetServiceInfo is real and the same over both transports", arguments: ServiceKind.allCases)
  func serviceInfoAgrees(kind: ServiceKind) async throws {
    var inProcess = try await Self.serviceInfo(kind, over: .inProcess)
    var shim = try await Self.serviceInfo(kind, over: .shim)
    #expect(inProcess.service == kind.grpcServiceName)
    #expect(inProcess.version == BuildInfo.version)
    #expect(inProcess.pid == Int64(ProcessInfo.processInfo.processIdentifier))
    #expect(inProcess.dataDir == "/tmp/vane-test/\(kind.rawValue)")
    #expect(inProcess.adminAuth == .loopbackOnly)
    let getInfo = try #require(inProcess.methods.first { $0.name == "GetServiceInfo" })
    #expect(getInfo.implemented)
    #expect(getInfo.path == "/\(kind.grpcServiceName)/GetServiceInfo")
    #expect(
      inProcess.methods.count
        == (try DescriptorCatalog.vane().methods(ofService: kind.grpcServiceName).count)
    )
    #expect(Set(inProcess.methods.filter(\.admin).map(\.name)) == Set(AdminMethods.names(of: kind)))
    // Clocks are the only thing allowed to differ (each server has its own start time).
    inProcess.clearServerTime()
    shim.clearServerTime()
    inProcess.clearStartTime()
    shim.clearStartTime()
    #expect(inProcess == shim)
  }

  @Test(
    "Every method not built yet answers UNIMPLEMENTED naming itself",
    arguments: TransportKind.allCases
  )
  func unimplementedNamesTheMethod(transport: TransportKind) async throws {
    let catalog = try DescriptorCatalog.vane()
    for kind in ServiceKind.allCases {
      let info = Self.info(kind)
      let failures = try await withServer(transport, services: try Self.services(info)) {
        client,
        _ in
        var failures: [String: (RPCError.Code, String)] = [:]
        for method in catalog.methods(ofService: kind.grpcServiceName)
        where !Self.implemented(kind).contains(method.name) {
          let entry = try #require(MethodRegistry.vane.entry(named: method.path))
          let request = try entry.input.init().serializedBytes() as [UInt8]
          do {
            try await client.bidirectionalStreaming(
              request: StreamingClientRequest(of: [UInt8].self) { try await $0.write(request) },
              descriptor: entry.descriptor,
              serializer: RawBytesSerializer(),
              deserializer: RawBytesDeserializer(),
              options: .defaults
            ) { response in for try await _ in response.messages {} }
            failures[method.name] = nil
          } catch let error as RPCError {
            failures[method.name] = (error.code, error.message)
          }
        }
        return failures
      }
      for method in catalog.methods(ofService: kind.grpcServiceName)
      where !Self.implemented(kind).contains(method.name) {
        let failure = try #require(failures[method.name], "\(method.path) should fail")
        #expect(failure.0 == .unimplemented, "\(method.path)")
        #expect(failure.1.contains(method.path), "\(method.path): '\(failure.1)'")
      }
    }
  }
}

@Suite("Admin authorisation")
struct AdminAuthTests {
  static let token = "s3cret-token-for-tests-0123456789"

  /// Calls an admin method (PredictorService/LoadModel) and returns the status code.
  static func callAdmin(
    over transport: TransportKind,
    auth: AdminAuthInterceptor.Mode,
    metadata: Metadata
  ) async throws -> Status.Code {
    let info = ServiceTests.info(.predictor, auth: auth)
    return try await withServer(
      transport,
      services: try ServiceTests.services(info),
      interceptors: AdminAuthInterceptor.pipeline(mode: auth)
    ) { client, _ in
      await statusCode {
        _ = try await client.unary(
          request: ClientRequest(message: Vane_V1_LoadModelRequest(), metadata: metadata),
          descriptor: Vane_V1_PredictorService.Method.LoadModel.descriptor,
          serializer: ProtobufSerializer<Vane_V1_LoadModelRequest>(),
          deserializer: ProtobufDeserializer<Vane_V1_ModelVersion>(),
          options: .defaults
        ) { try $0.message }
      }
    }
  }

  @Test(
    "With a token: no token or a wrong one is UNAUTHENTICATED; the right one gets through",
    arguments: TransportKind.allCases
  )
  func tokenRequired(transport: TransportKind) async throws {
    let mode = AdminAuthInterceptor.Mode.token(Self.token)
    #expect(
      try await Self.callAdmin(over: transport, auth: mode, metadata: [:]) == .unauthenticated
    )
    #expect(
      try await Self.callAdmin(
        over: transport,
        auth: mode,
        metadata: ["authorization": "Bearer wrong"]
      ) == .unauthenticated
    )
    // Past authorisation, the method itself answers (an empty request has no source).
    #expect(
      try await Self.callAdmin(
        over: transport,
        auth: mode,
        metadata: ["authorization": "Bearer \(Self.token)"]
      ) == .invalidArgument
    )
  }

  @Test("Without a token, loopback callers get through")
  func loopbackOpen() async throws {
    #expect(
      try await Self.callAdmin(over: .shim, auth: .loopbackOnly, metadata: [:]) == .invalidArgument
    )
  }

  @Test("Non-admin methods need no token", arguments: TransportKind.allCases)
  func nonAdminOpen(transport: TransportKind) async throws {
    let info = ServiceTests.info(.predictor, auth: .token(Self.token))
    let name = try await withServer(
      transport,
      services: try ServiceTests.services(info),
      interceptors: AdminAuthInterceptor.pipeline(mode: .token(Self.token))
    ) { client, _ in
      try await client.unary(
        request: ClientRequest(message: Vane_V1_GetServiceInfoRequest()),
        descriptor: Vane_V1_PredictorService.Method.GetServiceInfo.descriptor,
        serializer: ProtobufSerializer<Vane_V1_GetServiceInfoRequest>(),
        deserializer: ProtobufDeserializer<Vane_V1_ServiceInfo>(),
        options: .defaults
      ) { try $0.message.service }
    }
    #expect(name == "vane.v1.PredictorService")
  }

  @Test(
    "Peers on this machine count as loopback; others do not",
    arguments: [
      ("ipv4:127.0.0.1:5000", true), ("ipv6:[::1]:5000", true), ("unix:/tmp/s", true),
      ("in-process:1", true),
      ("ipv4:10.0.0.5:5000", false), ("ipv6:[2001:db8::1]:5000", false),
      ("ipv4:128.0.0.1:1", false),
    ]
  )
  func loopbackPeers(peer: String, loopback: Bool) {
    #expect(AdminAuthInterceptor.isLoopback(peer: peer) == loopback)
  }

  @Test(
    "A remote peer without a token is PERMISSION_DENIED on every admin method, Bless and UploadBundle included",
    arguments: [
      Vane_V1_DeployService.Method.Promote.descriptor,
      Vane_V1_GatekeeperService.Method.Bless.descriptor,
      Vane_V1_DeployService.Method.UploadBundle.descriptor,
      Vane_V1_PredictorService.Method.LoadModel.descriptor,
    ]
  )
  func remotePeerDenied(_ method: MethodDescriptor) throws {
    let interceptor = AdminAuthInterceptor(mode: .loopbackOnly)
    #expect {
      try interceptor.authorize(metadata: [:], peer: "ipv4:10.1.2.3:4444", method: method)
    } throws: { ($0 as? RPCError)?.code == .permissionDenied }
    #expect(
      AdminMethods.isAdmin(service: method.service.fullyQualifiedService, method: method.method)
    )
  }
}
