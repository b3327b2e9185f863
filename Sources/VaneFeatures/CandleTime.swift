/// Timestamps as candle files spell them, to milliseconds since the Unix epoch (UTC).
///
/// Accepted: `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS` (or `T`), with optional fractional seconds and
/// an optional `Z` / `±HH:MM` offset (no offset means UTC), and integer epoch seconds,
/// milliseconds or microseconds (told apart by magnitude: Binance switched its spot dumps to
/// microseconds in 2025). Parsed by hand: this runs once per row of files with millions of rows.
public enum CandleTime {
  /// Parses a time as files and command lines spell it (see the type's documentation).
  public static func parse(_ text: String) -> Int64? {
    Self.parse(Array(text.utf8))
  }

  static func parse<S: Collection<UInt8>>(_ field: S) -> Int64? where S.Index == Int {
    guard !field.isEmpty else { return nil }
    if field.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
      guard field.count <= 18, let value = Int64(String(decoding: field, as: UTF8.self)) else {
        return nil
      }
      if value < 100_000_000_000 { return value * 1000 }  // seconds (before year 5138)
      if value < 100_000_000_000_000 { return value }  // milliseconds
      return value / 1000  // microseconds
    }
    return Self.parseCalendar(Array(field))
  }

  private static func digits(_ bytes: [UInt8], _ start: Int, _ count: Int) -> Int? {
    guard start + count <= bytes.count else { return nil }
    var value = 0
    for index in start ..< (start + count) {
      let byte = bytes[index]
      guard byte >= 0x30, byte <= 0x39 else { return nil }
      value = value * 10 + Int(byte - 0x30)
    }
    return value
  }

  private static func parseCalendar(_ bytes: [UInt8]) -> Int64? {
    guard bytes.count >= 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
      let year = digits(bytes, 0, 4), let month = digits(bytes, 5, 2),
      let day = digits(bytes, 8, 2),
      (1 ... 12).contains(month), (1 ... daysIn(month: month, year: year)).contains(day)
    else { return nil }
    var hour = 0, minute = 0, second = 0, millisecond = 0, offsetMinutes = 0
    var index = 10
    if index < bytes.count {
      guard bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "T"),
        bytes.count >= 19, bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
        let h = digits(bytes, 11, 2), let m = digits(bytes, 14, 2), let s = digits(bytes, 17, 2),
        h < 24, m < 60, s < 60
      else { return nil }
      (hour, minute, second) = (h, m, s)
      index = 19
      if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
        index += 1
        var scale = 100
        let start = index
        while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
          millisecond += Int(bytes[index] - 0x30) * scale
          scale /= 10
          index += 1
        }
        guard index > start else { return nil }
      }
      if index < bytes.count {
        switch bytes[index] {
        case UInt8(ascii: "Z"):
          index += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
          let sign = bytes[index] == UInt8(ascii: "-") ? -1 : 1
          guard bytes.count == index + 6, bytes[index + 3] == UInt8(ascii: ":"),
            let oh = digits(bytes, index + 1, 2), let om = digits(bytes, index + 4, 2), oh < 24,
            om < 60
          else { return nil }
          offsetMinutes = sign * (oh * 60 + om)
          index += 6
        default:
          return nil
        }
      }
    }
    guard index == bytes.count else { return nil }
    let days = Int64(daysFromCivil(year: year, month: month, day: day))
    let seconds =
      days * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetMinutes * 60)
    return seconds * 1000 + Int64(millisecond)
  }

  static func daysIn(month: Int, year: Int) -> Int {
    switch month {
    case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
    case 4, 6, 9, 11: return 30
    default: return 31
    }
  }

  /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
  static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    return era * 146_097 + doe - 719_468
  }

  /// "2024-01-31 23:00:00" for messages.
  /// "YYYY-MM-DD hh:mm:ss" (UTC) of a time in ms since the epoch.
  public static func format(_ milliseconds: Int64) -> String {
    var days = Int(milliseconds.floorDivided(by: 86_400_000))
    let secondsOfDay = Int((milliseconds - Int64(days) * 86_400_000) / 1000)
    // civil_from_days
    days += 719_468
    let era = (days >= 0 ? days : days - 146_096) / 146_097
    let doe = days - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let day = doy - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
    func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return
      "\(year)-\(two(month))-\(two(day)) \(two(secondsOfDay / 3600)):\(two(secondsOfDay / 60 % 60)):\(two(secondsOfDay % 60))"
  }
}

extension Int64 {
  func floorDivided(by divisor: Int64) -> Int64 {
    let quotient = self / divisor
    return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
  }
}
