public import GRPCCore
public import GRPCShimTransport

/// A service implementation, registered with the server's router at its own type.
///
/// `GRPCServer(transport:services:)` registers each service through `any RegistrableRPCService`:
/// the generated registration, and every handler closure it makes, is then compiled once for an
/// unknown transport, and each call runs GRPCCore's server executor and the protobuf coders
/// unspecialised, looking up generic metadata (some forty lookups a call) and decoding through
/// witness tables. Registered here at the concrete service and transport types, the executor, the
/// coders and the generated message code are specialised for every method.
public struct RoutedService: Sendable {
  @usableFromInline
  let register: @Sendable (inout RPCRouter<ShimServerTransport>) -> Void

  /// - Parameter service: the implementation, at its concrete type (call this where the type is
  ///   known, not with an existential, or nothing is specialised).
  @inlinable
  public init<Service: RegistrableRPCService>(_ service: Service) {
    self.register = { router in service.registerMethods(with: &router) }
  }

  /// A router with every method of `services`, then `interceptorPipeline`, as
  /// `GRPCServer(transport:services:interceptorPipeline:)` builds one.
  public static func router(
    _ services: [RoutedService],
    interceptorPipeline: [ConditionalInterceptor<any ServerInterceptor>] = []
  ) -> RPCRouter<ShimServerTransport> {
    var router = RPCRouter<ShimServerTransport>()
    for service in services { service.register(&router) }
    router.registerInterceptors(pipeline: interceptorPipeline)
    return router
  }
}

extension GRPCServer where Transport == ShimServerTransport {
  /// A server over the shim transport whose services are registered at their own types (see
  /// ``RoutedService``).
  public convenience init(
    transport: ShimServerTransport,
    routed services: [RoutedService],
    interceptorPipeline: [ConditionalInterceptor<any ServerInterceptor>] = []
  ) {
    self.init(
      transport: transport,
      router: RoutedService.router(services, interceptorPipeline: interceptorPipeline)
    )
  }
}
