/// Hand-made tar pieces for tests of hostile or oversized archives, which `Tar.write` (rightly)
/// never makes.
public enum TarFixture {
  /// One ustar header block for `path` of `type` announcing `size` bytes, with a valid checksum.
  public static func header(
    _ path: String,
    type: Character = "0",
    size: Int = 0,
    linkTarget: String = ""
  ) -> [UInt8] {
    var block = [UInt8](repeating: 0, count: 512)
    func put(_ text: String, _ at: Int) {
      for (i, b) in text.utf8.enumerated() { block[at + i] = b }
    }
    put(path, 0)
    put("0000644", 100)
    put(String(size, radix: 8), 124)
    put("00000000000", 136)
    put("        ", 148)
    block[156] = type.asciiValue!
    put(linkTarget, 157)
    put("ustar", 257)
    block[262] = 0
    put("00", 263)
    let sum = block.reduce(0) { $0 + Int($1) }
    put(String(sum, radix: 8) + "\0 ", 148)
    return block
  }
}
