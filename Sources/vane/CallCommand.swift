import ArgumentParser
import GRPCCore
import GRPCShimTransport
import SwiftProtobuf
import VaneRuntime
import VaneProto
import VaneCore
internal import Foundation

/// `vane call ADDRESS Service/Method 'JSON'`: any Vane method, JSON in and out (protobuf's JSON
/// mapping). A streamed response prints one JSON object per line.
struct CallCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "call",
    abstract: "Call any Vane method with a JSON request; print JSON responses, one per line.",
    discussion: """
      METHOD is "Service/Method" (e.g. FeatureService/GetServiceInfo) or fully qualified
      ("vane.v1.FeatureService/GetServiceInfo"). For a client- or bidirectional-streaming method,
      JSON is an array of requests. "-" reads the JSON from standard input (one object per line
      for streaming requests). Exit code: 0 on OK, 1 on an RPC error (its code and message are
      printed to standard error), 2 on bad input.
      """
  )

  @Argument(help: "host:port of the server.")
  var address: String

  @Argument(help: "Service/Method.")
  var method: String

  @Argument(help: "The request as JSON (default {}).")
  var json: String = "{}"

  @Option(help: "Deadline in seconds.")
  var timeout: Double = 30

  @Option(name: .customLong("metadata"), help: "Extra request metadata as key=value (repeatable).")
  var metadata: [String] = []

  @OptionGroup var connection: ClientConnectionOptions

  func run() async throws {
    let registry = MethodRegistry.vane
    let catalog = try DescriptorCatalog.vane()
    guard let entry = registry.entry(named: self.method) else {
      throw ValidationError(
        "METHOD: '\(self.method)' is not a Vane method; known: \(registry.entries.map(\.descriptor.fullyQualifiedMethod).joined(separator: ", "))"
      )
    }
    let path = entry.descriptor.fullyQualifiedMethod
    let clientStreams = catalog.method(path)?.clientStreaming ?? false

    let requests = try self.requests(input: entry.input, clientStreams: clientStreams)
    var metadata = try self.connection.metadata()
    for pair in self.metadata {
      guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
        throw ValidationError("--metadata: '\(pair)' is not key=value")
      }
      metadata.addString(
        String(pair[pair.index(after: equals)...]),
        forKey: String(pair[..<equals]).lowercased()
      )
    }
    let transport = try ShimClientTransport(config: self.connection.config(target: self.address))
    var options = CallOptions.defaults
    options.timeout = .milliseconds(Int64(self.timeout * 1000))
    let output = entry.output
    do {
      try await withGRPCClient(transport: transport) { client in
        try await client.bidirectionalStreaming(
          request: StreamingClientRequest(of: [UInt8].self, metadata: metadata) { writer in
            try await writer.write(contentsOf: requests)
          },
          descriptor: entry.descriptor,
          serializer: RawBytesSerializer(),
          deserializer: RawBytesDeserializer(),
          options: options
        ) { response in
          for try await bytes in response.messages {
            let message = try output.init(serializedBytes: bytes)
            Output.line(try message.jsonString())
          }
        }
      }
    } catch let error as RPCError {
      FileHandle.standardError.write(Data("ERROR: \(error.code): \(error.message)\n".utf8))
      throw ExitCode(1)
    }
  }

  private func requests(
    input: any SwiftProtobuf.Message.Type,
    clientStreams: Bool
  ) throws -> [[UInt8]] {
    var text = self.json
    if text == "-" {
      text = String(decoding: FileDescriptorReader.readAll(STDIN_FILENO), as: UTF8.self)
    }
    do {
      if clientStreams {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let objects: [String]
        if trimmed.hasPrefix("[") {
          let array = try JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [Any] ?? []
          objects = try array.map {
            String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self)
          }
        } else {
          objects = trimmed.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        }
        return try objects.map { try input.init(jsonString: $0).serializedBytes() }
      }
      return [try input.init(jsonString: text).serializedBytes()]
    } catch {
      FileHandle.standardError.write(
        Data("JSON: not a valid \(input.protoMessageName): \(error)\n".utf8)
      )
      throw ExitCode(2)
    }
  }
}
