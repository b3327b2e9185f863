internal import CCPUID

/// Which CPU the calling thread may run on.
public enum CPUAffinity {
  /// Pins the calling thread, and the processes it starts afterwards, to the CPU it is running
  /// on: a benchmark that alternates rounds with a reference process then measures both on the
  /// same core (on this machine kind the two cores differed by up to 1.7× for small calls).
  /// - Returns: the CPU, or nil where the system does not allow pinning.
  public static func pinToCurrentCPU() -> Int? {
    let cpu = vane_cpu_pin_to_current()
    return cpu >= 0 ? Int(cpu) : nil
  }
}
