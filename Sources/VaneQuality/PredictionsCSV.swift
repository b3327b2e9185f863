internal import Foundation
internal import VaneCore

/// Predictions in a CSV file, as quant scripts write them: a header `label,<class>,<class>…`
/// (two or more class columns, in class order), optionally a `fold` column, then one row per
/// sample. `label` is a class name or index; class columns are probabilities (or logits).
/// `nan`, `inf` and `-inf` are read as such (the gates count them); anything else that is not
/// a number is an error naming the file, line and column.
///
/// ```
/// label,DOWN,UP,fold
/// UP,0.42,0.58,0
/// DOWN,0.61,0.39,0
/// ```
public struct PredictionsCSV: Sendable, Equatable {
  public var classes: [String]
  /// N × K, row-major.
  public var values: [Double]
  public var labels: [Int]
  /// Empty without a `fold` column.
  public var foldIDs: [Int]

  /// Most rows read.
  public static let maximumRows = 50_000_000

  /// Parses the text of a file called `name`.
  /// - Throws: INVALID_ARGUMENT naming `name:line` and the column.
  public static func parse(_ text: String, name: String) throws -> PredictionsCSV {
    var lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated().filter { !$0.element.allSatisfy(\.isWhitespace) }
    guard !lines.isEmpty else { throw VaneError(.invalidArgument, "\(name): empty file; expected a header label,<class>,<class>…") }
    let header = lines.removeFirst()
    let columns = header.element.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    guard let labelColumn = columns.firstIndex(of: "label") else {
      throw VaneError(.invalidArgument, "\(name):\(header.offset + 1): the header needs a 'label' column")
    }
    let foldColumn = columns.firstIndex(of: "fold")
    let classColumns = columns.indices.filter { $0 != labelColumn && $0 != foldColumn }
    let classes = classColumns.map { columns[$0] }
    guard classes.count >= 2, Set(classes).count == classes.count, classes.allSatisfy({ !$0.isEmpty }) else {
      throw VaneError(.invalidArgument, "\(name):\(header.offset + 1): need two or more distinct, named class columns besides label and fold (got \(classes))")
    }
    guard lines.count <= Self.maximumRows else { throw VaneError(.resourceExhausted, "\(name): more than \(Self.maximumRows) rows") }
    var result = PredictionsCSV(classes: classes, values: [], labels: [], foldIDs: [])
    result.values.reserveCapacity(lines.count * classes.count)
    result.labels.reserveCapacity(lines.count)
    for (offset, line) in lines {
      let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
      let place = "\(name):\(offset + 1)"
      guard fields.count == columns.count else {
        throw VaneError(.invalidArgument, "\(place): \(fields.count) fields, the header has \(columns.count)")
      }
      let label = fields[labelColumn]
      if let index = classes.firstIndex(of: label) {
        result.labels.append(index)
      } else if let index = Int(label), (0..<classes.count).contains(index) {
        result.labels.append(index)
      } else {
        throw VaneError(.invalidArgument, "\(place): label: '\(label)' is not a class (\(classes.joined(separator: ", "))) or index")
      }
      for column in classColumns {
        guard let value = Self.number(fields[column]) else {
          throw VaneError(.invalidArgument, "\(place): \(columns[column]): '\(fields[column])' is not a number")
        }
        result.values.append(value)
      }
      if let foldColumn {
        guard let fold = Int(fields[foldColumn]) else {
          throw VaneError(.invalidArgument, "\(place): fold: '\(fields[foldColumn])' is not a whole number")
        }
        result.foldIDs.append(fold)
      }
    }
    guard !result.labels.isEmpty else { throw VaneError(.invalidArgument, "\(name): no rows after the header") }
    return result
  }

  static func number(_ text: String) -> Double? {
    switch text.lowercased() {
    case "nan": .nan
    case "inf", "+inf", "infinity": .infinity
    case "-inf", "-infinity": -.infinity
    default: Double(text)
    }
  }
}
