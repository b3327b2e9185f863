// The CPU's instruction-set features as cpuid and the OS report them: what OpenBLAS's own
// detection is checked against before its kernels are chosen.
#ifndef VANE_CPUID_H
#define VANE_CPUID_H

typedef struct vane_cpuid_info {
  char vendor[13];       // "GenuineIntel", "AuthenticAMD", or empty off x86
  int family;            // display family (base + extended)
  int model;             // display model (base + extended where the family uses it)
  int avx2;              // AVX2 and FMA, with the OS saving ymm state
  int avx512;            // AVX-512 F, CD, BW, DQ and VL, with the OS saving zmm state
  int avx512_bf16;       // AVX-512 BF16 (Cooper Lake, Sapphire Rapids and later)
  int amx;               // AMX tiles (Sapphire Rapids and later)
} vane_cpuid_info;

/// Fills `info`; every field is zero on a CPU that is not x86.
void vane_cpuid_read(vane_cpuid_info *info);

/// Pins the calling thread (and the processes it starts afterwards) to the CPU it is running
/// on, so that a benchmark and its reference take turns on one core. Returns that CPU, or -1
/// where the system does not allow it.
int vane_cpu_pin_to_current(void);

#endif
