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
  /// The file line of each row.
  public var lines: [Int] = []

  /// Checks every finite row as probabilities (in [0, 1], summing to 1), as the gatekeeper
  /// will, so a bad file is refused on the client naming its line.
  /// - Throws: INVALID_ARGUMENT naming `name:line` and the column.
  public func checkProbabilities(name: String) throws {
    let k = self.classes.count
    for i in 0 ..< self.labels.count {
      let line = i < self.lines.count ? "\(self.lines[i])" : "?"
      switch Predictions.problem(ofProbabilities: self.values[(i * k) ..< ((i + 1) * k)]) {
      case .outside(let bad)?:
        throw VaneError(
          .invalidArgument,
          "\(name):\(line): \(self.classes[bad - i * k]): probability \(self.values[bad]) is outside [0, 1] (pass --logits for logits)"
        )
      case .sum(let total)?:
        throw VaneError(
          .invalidArgument,
          "\(name):\(line): the probabilities sum to \(total), not 1"
        )
      case nil:
        continue
      }
    }
  }

  /// Parses the text of a file called `name`.
  /// - Throws: INVALID_ARGUMENT naming `name:line` and the column.
  public static func parse(_ text: String, name: String) throws -> PredictionsCSV {
    let (header, lines) = try CSVTable.read(text, name: name)
    let columns = header.fields
    guard let labelColumn = columns.firstIndex(of: "label") else {
      throw VaneError(.invalidArgument, "\(name):\(header.line): the header needs a 'label' column")
    }
    let foldColumn = columns.firstIndex(of: "fold")
    let classColumns = columns.indices.filter { $0 != labelColumn && $0 != foldColumn }
    let classes = classColumns.map { columns[$0] }
    guard classes.count >= 2, Set(classes).count == classes.count,
      classes.allSatisfy({ !$0.isEmpty })
    else {
      throw VaneError(
        .invalidArgument,
        "\(name):\(header.line): need two or more distinct, named class columns besides label and fold (got \(classes))"
      )
    }
    var result = PredictionsCSV(classes: classes, values: [], labels: [], foldIDs: [])
    result.values.reserveCapacity(lines.count * classes.count)
    result.labels.reserveCapacity(lines.count)
    result.lines.reserveCapacity(lines.count)
    for (line, fields) in lines {
      let place = "\(name):\(line)"
      result.lines.append(line)
      let label = fields[labelColumn]
      if let index = classes.firstIndex(of: label) {
        result.labels.append(index)
      } else if let index = Int(label), (0 ..< classes.count).contains(index) {
        result.labels.append(index)
      } else {
        throw VaneError(
          .invalidArgument,
          "\(place): label: \(MessageText.quote(label)) is not a class (\(classes.joined(separator: ", "))) or index"
        )
      }
      for column in classColumns {
        guard let value = Self.number(fields[column]) else {
          throw VaneError(
            .invalidArgument,
            "\(place): \(columns[column]): \(MessageText.quote(fields[column])) is not a number"
          )
        }
        result.values.append(value)
      }
      if let foldColumn {
        guard let fold = Int(fields[foldColumn]) else {
          throw VaneError(
            .invalidArgument,
            "\(place): fold: \(MessageText.quote(fields[foldColumn])) is not a whole number"
          )
        }
        result.foldIDs.append(fold)
      }
    }
    return result
  }

  /// A number of at most 64 characters (a longer "number" is hostile input, not a value: a 50 MB
  /// run of digits would otherwise read as +inf).
  static func number(_ text: String) -> Double? {
    guard text.utf8.count <= 64 else { return nil }
    switch text.lowercased() {
    case "nan": return .nan
    case "inf", "+inf", "infinity": return .infinity
    case "-inf", "-infinity": return -.infinity
    default: return Double(text)
    }
  }
}

/// A comma-separated table as quant scripts write it: a header line, then rows of as many
/// fields (blank lines skipped, fields trimmed). No quoting: these files hold numbers and names.
enum CSVTable {
  /// Most rows read.
  static let maximumRows = 50_000_000

  /// The header and the rows, each with its 1-based line number.
  /// - Throws: INVALID_ARGUMENT naming `name:line` for an empty file, no rows, or a row of
  ///   another width; RESOURCE_EXHAUSTED past ``maximumRows``.
  static func read(
    _ text: String,
    name: String
  ) throws -> (header: (line: Int, fields: [String]), rows: [(line: Int, fields: [String])]) {
    func fields(_ line: Substring) -> [String] {
      line.split(separator: ",", omittingEmptySubsequences: false).map {
        $0.trimmingCharacters(in: .whitespaces)
      }
    }
    var lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
      .enumerated().filter { !$0.element.allSatisfy(\.isWhitespace) }
    guard !lines.isEmpty else {
      throw VaneError(.invalidArgument, "\(name): empty file; expected a header line")
    }
    let first = lines.removeFirst()
    let header = (line: first.offset + 1, fields: fields(first.element))
    guard !lines.isEmpty else {
      throw VaneError(.invalidArgument, "\(name): no rows after the header")
    }
    guard lines.count <= Self.maximumRows else {
      throw VaneError(.resourceExhausted, "\(name): more than \(Self.maximumRows) rows")
    }
    return (
      header,
      try lines.map { offset, line in
        let row = fields(line)
        guard row.count == header.fields.count else {
          throw VaneError(
            .invalidArgument,
            "\(name):\(offset + 1): \(row.count) fields, the header has \(header.fields.count)"
          )
        }
        return (offset + 1, row)
      }
    )
  }
}

extension InputSummary {
  /// The summary of a CSV of scaled inputs (header = column names, every field a number).
  /// - Throws: INVALID_ARGUMENT naming `name:line` and the column.
  public static func parseCSV(_ text: String, name: String) throws -> InputSummary {
    let (header, rows) = try CSVTable.read(text, name: name)
    var values: [Double] = []
    values.reserveCapacity(rows.count * header.fields.count)
    for (line, fields) in rows {
      for (column, field) in fields.enumerated() {
        guard let value = PredictionsCSV.number(field), value.isFinite else {
          throw VaneError(
            .invalidArgument,
            "\(name):\(line): \(header.fields[column].prefix(64)): \(MessageText.quote(field)) is not a finite number"
          )
        }
        values.append(value)
      }
    }
    return InputSummary(columns: header.fields, values: values)
  }
}
