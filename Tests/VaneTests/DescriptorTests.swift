import GRPCCore
import SwiftProtobuf
import Testing
import VaneCore
import VaneProto
import VaneRuntime

@Suite("The API's descriptors, method table and admin list")
struct DescriptorTests {
  @Test("The descriptor set has the five vane.v1 services")
  func fiveServices() throws {
    let catalog = try DescriptorCatalog.vane()
    #expect(Set(catalog.services) == Set(ServiceKind.allCases.map(\.grpcServiceName)))
    for kind in ServiceKind.allCases {
      #expect(
        catalog.method("\(kind.grpcServiceName)/GetServiceInfo") != nil,
        "\(kind) has GetServiceInfo"
      )
    }
  }

  @Test("The method table covers every RPC with the descriptor's message types")
  func methodTableMatchesDescriptors() throws {
    let catalog = try DescriptorCatalog.vane()
    let registry = MethodRegistry.vane
    #expect(
      registry.entries.map(\.descriptor.fullyQualifiedMethod).sorted()
        == catalog.methods.map(\.path).sorted()
    )
    for entry in registry.entries {
      let method = try #require(catalog.method(entry.descriptor.fullyQualifiedMethod))
      #expect(entry.input.protoMessageName == method.inputType, "\(method.path) input")
      #expect(entry.output.protoMessageName == method.outputType, "\(method.path) output")
    }
  }

  @Test(
    "Method lookup accepts short, qualified and path names",
    arguments: [
      "FeatureService/GetServiceInfo", "vane.v1.FeatureService/GetServiceInfo",
      "/vane.v1.FeatureService/GetServiceInfo",
    ]
  )
  func lookup(name: String) throws {
    let entry = try #require(MethodRegistry.vane.entry(named: name))
    #expect(entry.descriptor.fullyQualifiedMethod == "vane.v1.FeatureService/GetServiceInfo")
  }

  @Test("Every admin method exists in the API and is marked 'Admin.' in its proto comment")
  func adminMethodsExist() throws {
    let catalog = try DescriptorCatalog.vane()
    for descriptor in AdminMethods.descriptors {
      #expect(catalog.method(descriptor.fullyQualifiedMethod) != nil, "\(descriptor) is in the API")
    }
    let files = try VaneDescriptors.fileDescriptorProtos()
    var commented: Set<String> = []
    for file in files where file.package == "vane.v1" {
      for (serviceIndex, service) in file.service.enumerated() {
        for (methodIndex, method) in service.method.enumerated() {
          // Path 6 = service, 2 = method: the location of the method's leading comment.
          let path: [Int32] = [6, Int32(serviceIndex), 2, Int32(methodIndex)]
          let comment =
            file.sourceCodeInfo.location.first { $0.path == path }?.leadingComments ?? ""
          if comment.contains("Admin.") {
            commented.insert("vane.v1.\(service.name)/\(method.name)")
          }
        }
      }
    }
    // The descriptor set keeps source info (make protos: --include_source_info).
    try #require(
      !commented.isEmpty,
      "no 'Admin.' comments found: source info missing from the descriptor set?"
    )
    #expect(commented == Set(AdminMethods.descriptors.map(\.fullyQualifiedMethod)))
  }

  @Test("Reflection files decode as FileDescriptorProtos and include every vane file")
  func reflectionFiles() throws {
    let files = try VaneDescriptors.serializedFiles().map {
      try Google_Protobuf_FileDescriptorProto(serializedBytes: $0)
    }
    let names = Set(files.map(\.name))
    for name in ["common", "feature", "trainer", "predictor", "gatekeeper", "deploy"] {
      #expect(names.contains("vane/v1/\(name).proto"))
    }
  }
}
