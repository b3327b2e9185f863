#define _GNU_SOURCE
#include "vane_cpuid.h"

#include <string.h>

#if defined(__linux__)
#include <sched.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

// XCR0: which register states the OS saves on a context switch. An instruction set is usable
// only when the CPU has it and the OS saves its registers.
static unsigned long long vane_xgetbv0(void) {
  unsigned int eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return ((unsigned long long)edx << 32) | eax;
}
#endif

void vane_cpuid_read(vane_cpuid_info *info) {
  memset(info, 0, sizeof *info);
#if defined(__x86_64__) || defined(__i386__)
  unsigned int a, b, c, d;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return;
  unsigned int max_leaf = a;
  memcpy(info->vendor, &b, 4);
  memcpy(info->vendor + 4, &d, 4);
  memcpy(info->vendor + 8, &c, 4);
  info->vendor[12] = 0;

  if (!__get_cpuid(1, &a, &b, &c, &d)) return;
  unsigned int base_family = (a >> 8) & 0xf;
  info->family = (int)base_family + (base_family == 0xf ? (int)((a >> 20) & 0xff) : 0);
  info->model = (int)((a >> 4) & 0xf);
  if (base_family == 0x6 || base_family == 0xf) info->model += (int)(((a >> 16) & 0xf) << 4);
  int fma = (c >> 12) & 1;
  int osxsave = (c >> 27) & 1;
  unsigned long long xcr0 = osxsave ? vane_xgetbv0() : 0;
  int os_ymm = (xcr0 & 0x6) == 0x6;
  int os_zmm = (xcr0 & 0xe6) == 0xe6;

  if (max_leaf < 7) return;
  __cpuid_count(7, 0, a, b, c, d);
  int avx2 = (b >> 5) & 1;
  int f = (b >> 16) & 1, dq = (b >> 17) & 1, cd = (b >> 28) & 1, bw = (b >> 30) & 1;
  int vl = (b >> 31) & 1;
  int amx_tile = (d >> 24) & 1;
  unsigned int subleaves = a;
  info->avx2 = avx2 && fma && os_ymm;
  info->avx512 = f && cd && bw && dq && vl && os_zmm;
  info->amx = amx_tile;
  if (subleaves >= 1) {
    __cpuid_count(7, 1, a, b, c, d);
    info->avx512_bf16 = info->avx512 && ((a >> 5) & 1);
  }
#endif
}

int vane_cpu_pin_to_current(void) {
#if defined(__linux__)
  int cpu = sched_getcpu();
  if (cpu < 0) return -1;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0 ? cpu : -1;
#else
  return -1;
#endif
}
