internal import Foundation
internal import VaneCore

/// The directories a service reads bundles from. A path outside them is refused with
/// PERMISSION_DENIED that says nothing about what is there, so a caller cannot probe the host's
/// files through a bundle path.
public struct BundleRoots: Sendable, Equatable {
  /// Absolute, symlinks resolved.
  public let roots: [String]

  public init(_ roots: [String]) {
    self.roots = roots.map { Self.resolve($0) }
  }

  /// The path, resolved (`..` and symbolic links), when it lies under a root.
  /// - Throws: INVALID_ARGUMENT for a relative path; PERMISSION_DENIED naming `field` otherwise.
  @discardableResult
  public func check(_ path: String, field: String) throws -> String {
    guard path.hasPrefix("/") else {
      throw VaneError.invalidArgument(
        field: field,
        "'\(path.prefix(200))' must be an absolute path"
      )
    }
    let resolved = Self.resolve(path)
    guard
      self.roots.contains(where: {
        resolved == $0 || resolved.hasPrefix($0.hasSuffix("/") ? $0 : $0 + "/")
      })
    else {
      throw VaneError(
        .permissionDenied,
        "\(field): bundles are read only under \(self.roots.joined(separator: ", ")) (--bundle-root); '\(path.prefix(200))' is not"
      )
    }
    return resolved
  }

  static func resolve(_ path: String) -> String {
    URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
  }
}
