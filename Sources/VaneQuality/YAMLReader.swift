public import Yams
public import VaneCore

/// Typed reads of YAML nodes with errors that name the source, line:column and key: the one
/// way Vane's YAML documents (gate policies, rollout plans) are read.
public struct YAMLReader: Sendable {
  public let source: String

  public init(source: String) { self.source = source }

  /// Most bytes of a document.
  public static let maximumDocumentBytes = 1 << 20
  /// Most nodes of a document with its aliases expanded: a few hundred bytes of nested aliases
  /// (a "billion laughs") stand for billions of nodes, which nothing here may walk.
  public static let maximumNodes = 200_000

  /// Parses a document; nil for an empty one.
  /// - Throws: INVALID_ARGUMENT naming the source when it is not YAML (or JSON), larger than
  ///   ``maximumDocumentBytes``, or more than ``maximumNodes`` nodes with aliases expanded.
  public func compose(_ text: String) throws -> Node? {
    let bytes = text.utf8.count
    guard bytes <= Self.maximumDocumentBytes else {
      throw VaneError(
        .invalidArgument,
        "\(self.source): \(bytes) bytes; a document here has at most \(Self.maximumDocumentBytes) (1 MiB)"
      )
    }
    let node: Node?
    do {
      node = try Yams.compose(yaml: text)
    } catch let error as YamlError {
      throw VaneError(
        .invalidArgument,
        "\(self.source): not YAML or JSON: \(String(describing: error).prefix(300))"
      )
    } catch {
      throw VaneError(.invalidArgument, "\(self.source): not YAML or JSON", cause: error)
    }
    if let node { try self.checkSize(node) }
    return node
  }

  /// Walks `root` (aliases expanded, as every reader sees them) and stops past ``maximumNodes``.
  private func checkSize(_ root: Node) throws {
    var pending = [root], count = 0
    while let node = pending.popLast() {
      count += 1
      guard count <= Self.maximumNodes else {
        throw VaneError(
          .invalidArgument,
          "\(self.source): more than \(Self.maximumNodes) nodes with its aliases expanded; not a document this reads"
        )
      }
      switch node {
      case .scalar, .alias: break
      case .mapping(let mapping):
        for (key, value) in mapping {
          pending.append(key)
          pending.append(value)
        }
      case .sequence(let sequence): pending.append(contentsOf: sequence)
      }
    }
  }

  public func error(_ node: Node, _ key: String, _ reason: String) -> VaneError {
    let place = node.mark.map { "\($0.line):\($0.column)" } ?? "?"
    return VaneError(.invalidArgument, "\(self.source):\(place): \(key): \(reason)")
  }

  public func key(_ node: Node) throws -> String {
    guard let key = node.scalar?.string else {
      throw self.error(node, "?", "keys must be plain text")
    }
    return key
  }

  public func string(_ node: Node, key: String) throws -> String {
    guard let value = node.scalar?.string, !value.isEmpty else {
      throw self.error(node, key, "must be text")
    }
    return value
  }

  public func number(_ node: Node, key: String) throws -> Double {
    guard let scalar = node.scalar, let value = Double(scalar.string), value.isFinite else {
      throw self.error(node, key, "must be a number")
    }
    return value
  }

  public func bool(_ node: Node, key: String) throws -> Bool {
    guard let value = node.scalar.flatMap({ Bool.construct(from: $0) }) else {
      throw self.error(node, key, "must be true or false")
    }
    return value
  }

  /// A mapping's entries by key, every key one of `known`.
  public func fields(_ node: Node, at path: String, known: [String]) throws -> [String: Node] {
    guard let mapping = node.mapping else {
      throw self.error(node, path, "must be a mapping with \(known.joined(separator: ", "))")
    }
    var fields: [String: Node] = [:]
    for (keyNode, value) in mapping {
      let key = try self.key(keyNode)
      guard known.contains(key) else {
        throw self.error(
          keyNode,
          path.isEmpty ? key : "\(path).\(key)",
          "is not a key here; known: \(known.joined(separator: ", "))"
        )
      }
      fields[key] = value
    }
    return fields
  }
}
