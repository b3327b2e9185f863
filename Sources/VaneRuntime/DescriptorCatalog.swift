internal import SwiftProtobuf
internal import VaneProto

/// The Vane services and methods as the committed descriptor set describes them: the single
/// source for what each service offers, its streaming kinds and message types.
public struct DescriptorCatalog: Sendable {
  public struct Method: Sendable, Equatable {
    /// "vane.v1.FeatureService/GetServiceInfo"
    public var path: String
    public var service: String
    public var name: String
    public var inputType: String
    public var outputType: String
    public var clientStreaming: Bool
    public var serverStreaming: Bool
  }

  /// Methods in declaration order.
  public let methods: [Method]

  /// Fully-qualified service names in declaration order.
  public var services: [String] {
    var seen = Set<String>()
    return self.methods.map(\.service).filter { seen.insert($0).inserted }
  }

  public func method(_ path: String) -> Method? {
    self.methods.first { $0.path == path }
  }

  public func methods(ofService service: String) -> [Method] {
    self.methods.filter { $0.service == service }
  }

  /// The catalog of the committed Vane descriptor set (decoded once per process).
  public static func vane() throws -> DescriptorCatalog {
    try Self.cached.get()
  }

  private static let cached: Result<DescriptorCatalog, any Error> = Result { try Self.decode() }

  private static func decode() throws -> DescriptorCatalog {
    var methods: [Method] = []
    for file in try VaneDescriptors.fileDescriptorProtos() where file.package == "vane.v1" {
      for service in file.service {
        let serviceName = "\(file.package).\(service.name)"
        for method in service.method {
          methods.append(
            Method(
              path: "\(serviceName)/\(method.name)",
              service: serviceName,
              name: method.name,
              inputType: String(method.inputType.drop { $0 == "." }),
              outputType: String(method.outputType.drop { $0 == "." }),
              clientStreaming: method.clientStreaming,
              serverStreaming: method.serverStreaming
            )
          )
        }
      }
    }
    return DescriptorCatalog(methods: methods)
  }
}
