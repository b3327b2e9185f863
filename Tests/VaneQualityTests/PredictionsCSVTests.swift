import Foundation
import Testing
import VaneCore

@testable import VaneQuality

@Suite("Predictions and scaled-input CSV files")
struct PredictionsCSVTests {
  @Test(
    "A 1 MB field is refused as not a number (never read as +inf) and quoted in at most a few dozen characters"
  )
  func hugeField() {
    let digits = String(repeating: "9", count: 1 << 20)
    let error = #expect(throws: VaneError.self) {
      try PredictionsCSV.parse("label,DOWN,UP\nUP,0.4,\(digits)\n", name: "p.csv")
    }
    #expect(
      error?.message.contains("p.csv:2: UP:") == true
        && error?.message.contains("(1048576 bytes) is not a number") == true,
      "\(error?.message.prefix(200) ?? "")"
    )
    #expect((error?.message.utf8.count ?? .max) < 200)
  }

  @Test(
    "A file reads into classes, values, labels (by name or index) and folds; nan and inf are kept for the gates"
  )
  func reads() throws {
    let text =
      "label,DOWN,UP,fold\nUP,0.42,0.58,0\n\n0, 0.61 ,0.39,1\nDOWN,nan,nan,1\n1,-inf,inf,2\n"
    let file = try PredictionsCSV.parse(text, name: "p.csv")
    #expect(
      file.classes == ["DOWN", "UP"] && file.labels == [1, 0, 0, 1] && file.foldIDs == [0, 1, 1, 2]
    )
    #expect(
      file.values[0 ... 3] == [0.42, 0.58, 0.61, 0.39] && file.values[4].isNaN
        && file.values[6] == -.infinity
    )
    let noFold = try PredictionsCSV.parse("DOWN,HOLD,UP,label\n0.2,0.3,0.5,HOLD\n", name: "p.csv")
    #expect(
      noFold.classes == ["DOWN", "HOLD", "UP"] && noFold.labels == [1] && noFold.foldIDs.isEmpty
    )
  }

  @Test(
    "Hostile files are refused naming the file, line and column",
    arguments: [
      ("", "p.csv: empty file"),
      ("\n \n", "p.csv: empty file"),
      ("label,DOWN,UP\n", "p.csv: no rows after the header"),
      ("DOWN,UP\n0.4,0.6\n", "p.csv:1: the header needs a 'label' column"),
      ("label,UP\nUP,1\n", "p.csv:1: need two or more distinct"),
      ("label,UP,UP\nUP,0.5,0.5\n", "p.csv:1: need two or more distinct"),
      ("label,DOWN,UP\nUP,0.4\n", "p.csv:2: 2 fields, the header has 3"),
      ("label,DOWN,UP\n\nSIDEWAYS,0.4,0.6\n", "p.csv:3: label: 'SIDEWAYS' is not a class"),
      ("label,DOWN,UP\n2,0.4,0.6\n", "p.csv:2: label: '2' is not a class"),
      ("label,DOWN,UP\nUP,0.4,high\n", "p.csv:2: UP: 'high' is not a number"),
      ("label,DOWN,UP,fold\nUP,0.4,0.6,one\n", "p.csv:2: fold: 'one' is not a whole number"),
    ]
  )
  func refused(text: String, message: String) {
    #expect {
      _ = try PredictionsCSV.parse(text, name: "p.csv")
    } throws: { ($0 as? VaneError)?.message.hasPrefix(message) == true }
  }

  @Test(
    "Scaled inputs: per-column mean and std; a non-number or non-finite value is refused naming line and column"
  )
  func inputs() throws {
    let summary = try InputSummary.parseCSV("a,b\n1,10\n3,10\n", name: "i.csv")
    #expect(summary.columns == ["a", "b"] && summary.mean == [2, 10] && summary.std == [1, 0])
    for (text, message) in [
      ("a,b\n1,x\n", "i.csv:2: b: 'x' is not a finite number"),
      ("a,b\n1,2\nnan,2\n", "i.csv:3: a: 'nan'"), ("a,b\n1\n", "i.csv:2: 1 fields"),
      // A 1 MB run of digits: not read as +inf, and quoted in a few dozen characters.
      ("a,b\n1,\(String(repeating: "9", count: 1 << 20))\n", "i.csv:2: b: '9999"),
    ] {
      #expect { _ = try InputSummary.parseCSV(text, name: "i.csv") } throws: {
        ($0 as? VaneError)?.message.hasPrefix(message) == true
          && ($0 as? VaneError)!.message.utf8.count < 200
      }
    }
  }
}
