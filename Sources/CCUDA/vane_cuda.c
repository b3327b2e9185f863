#define _GNU_SOURCE
#include "vane_cuda.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

// Opens `path` (RTLD_LOCAL: CUDA's symbols stay out of the process's namespace).
static void *vane_cuda_dlopen(const char *path, char *error, size_t error_length) {
  void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (handle == NULL) {
    const char *reason = dlerror();
    snprintf(error, error_length, "cannot load %s: %s", path, reason ? reason : "unknown error");
  }
  return handle;
}

static const char *vane_cuda_origin(void *symbol) {
  Dl_info info;
  if (symbol != NULL && dladdr(symbol, &info) != 0 && info.dli_fname != NULL) {
    return info.dli_fname;
  }
  return NULL;
}

#define RESOLVE(lib, field, symbol)                                                  \
  do {                                                                               \
    *(void **)(&(lib)->field) = dlsym(handle, symbol);                               \
    if ((lib)->field == NULL) {                                                      \
      snprintf(error, error_length, "%s has no symbol %s", path, symbol);            \
      dlclose(handle);                                                               \
      free(lib);                                                                     \
      return -1;                                                                     \
    }                                                                                \
  } while (0)

#define ALLOCATE(type, lib)                                                          \
  type *lib = calloc(1, sizeof(type));                                               \
  if (lib == NULL) {                                                                 \
    snprintf(error, error_length, "out of memory");                                  \
    dlclose(handle);                                                                 \
    return -1;                                                                       \
  }                                                                                  \
  lib->handle = handle

// ---- CUDA runtime ----

typedef struct {
  unsigned int x, y, z;
} vane_dim3;

struct vane_cudart {
  void *handle;
  int (*runtime_version)(int *);
  int (*driver_version)(int *);
  int (*device_count)(int *);
  const char *(*error_name)(int);
  const char *(*error_string)(int);
  int (*set_device)(int);
  int (*attribute)(int *, int, int);
  int (*malloc)(void **, size_t);
  int (*free)(void *);
  int (*memcpy)(void *, const void *, size_t, int);
  int (*memset)(void *, int, size_t);
  int (*synchronize)(void);
  int (*library_load)(void **, const void *, void *, void **, unsigned int, void *, void **,
                      unsigned int);
  int (*library_unload)(void *);
  int (*library_kernel)(void **, void *, const char *);
  int (*launch)(const void *, vane_dim3, vane_dim3, void **, size_t, void *);
};

int vane_cudart_open(const char *path, vane_cudart **out, char *error, size_t error_length) {
  void *handle = vane_cuda_dlopen(path, error, error_length);
  if (handle == NULL) return -1;
  ALLOCATE(vane_cudart, lib);
  RESOLVE(lib, runtime_version, "cudaRuntimeGetVersion");
  RESOLVE(lib, driver_version, "cudaDriverGetVersion");
  RESOLVE(lib, device_count, "cudaGetDeviceCount");
  RESOLVE(lib, error_name, "cudaGetErrorName");
  RESOLVE(lib, error_string, "cudaGetErrorString");
  RESOLVE(lib, set_device, "cudaSetDevice");
  RESOLVE(lib, attribute, "cudaDeviceGetAttribute");
  RESOLVE(lib, malloc, "cudaMalloc");
  RESOLVE(lib, free, "cudaFree");
  RESOLVE(lib, memcpy, "cudaMemcpy");
  RESOLVE(lib, memset, "cudaMemset");
  RESOLVE(lib, synchronize, "cudaDeviceSynchronize");
  RESOLVE(lib, library_load, "cudaLibraryLoadData");
  RESOLVE(lib, library_unload, "cudaLibraryUnload");
  RESOLVE(lib, library_kernel, "cudaLibraryGetKernel");
  RESOLVE(lib, launch, "cudaLaunchKernel");
  *out = lib;
  return 0;
}

int vane_cudart_set_device(const vane_cudart *lib, int ordinal) { return lib->set_device(ordinal); }

int vane_cudart_capability(const vane_cudart *lib, int ordinal, int *major, int *minor) {
  // cudaDevAttrComputeCapabilityMajor 75, cudaDevAttrComputeCapabilityMinor 76.
  int status = lib->attribute(major, 75, ordinal);
  if (status == 0) status = lib->attribute(minor, 76, ordinal);
  return status;
}

int vane_cudart_malloc(const vane_cudart *lib, void **pointer, size_t bytes) {
  return lib->malloc(pointer, bytes);
}

int vane_cudart_free(const vane_cudart *lib, void *pointer) { return lib->free(pointer); }

int vane_cudart_copy(const vane_cudart *lib, void *target, const void *source, size_t bytes,
                     int kind) {
  return lib->memcpy(target, source, bytes, kind);
}

int vane_cudart_zero(const vane_cudart *lib, void *pointer, size_t bytes) {
  return lib->memset(pointer, 0, bytes);
}

int vane_cudart_synchronize(const vane_cudart *lib) { return lib->synchronize(); }

int vane_cudart_library_load(const vane_cudart *lib, const char *ptx, void **library) {
  return lib->library_load(library, ptx, NULL, NULL, 0, NULL, NULL, 0);
}

int vane_cudart_library_unload(const vane_cudart *lib, void *library) {
  return lib->library_unload(library);
}

int vane_cudart_library_kernel(const vane_cudart *lib, void *library, const char *name,
                               void **kernel) {
  return lib->library_kernel(kernel, library, name);
}

int vane_cudart_launch(const vane_cudart *lib, void *kernel, unsigned int grid, unsigned int block,
                       void **arguments) {
  vane_dim3 grid3 = {grid, 1, 1}, block3 = {block, 1, 1};
  // A cudaKernel_t from cudaLibraryGetKernel is accepted where a kernel function is.
  return lib->launch(kernel, grid3, block3, arguments, 0, NULL);
}

const char *vane_cudart_path(const vane_cudart *lib) {
  return vane_cuda_origin(*(void **)(&lib->runtime_version));
}

int vane_cudart_runtime_version(const vane_cudart *lib, int *version) {
  return lib->runtime_version(version);
}

int vane_cudart_driver_version(const vane_cudart *lib, int *version) {
  return lib->driver_version(version);
}

int vane_cudart_device_count(const vane_cudart *lib, int *count) {
  return lib->device_count(count);
}

const char *vane_cudart_error_name(const vane_cudart *lib, int error) {
  return lib->error_name(error);
}

const char *vane_cudart_error_string(const vane_cudart *lib, int error) {
  return lib->error_string(error);
}

// ---- cuBLAS ----

struct vane_cublas {
  void *handle;
  int (*get_property)(int, int *);
  int (*create)(void **);
  int (*destroy)(void *);
  int (*set_math_mode)(void *, int);
  int (*sgemm)(void *, int, int, int, int, int, const float *, const float *, int, const float *,
               int, const float *, float *, int);
};

int vane_cublas_open(const char *path, vane_cublas **out, char *error, size_t error_length) {
  void *handle = vane_cuda_dlopen(path, error, error_length);
  if (handle == NULL) return -1;
  ALLOCATE(vane_cublas, lib);
  RESOLVE(lib, get_property, "cublasGetProperty");
  RESOLVE(lib, create, "cublasCreate_v2");
  RESOLVE(lib, destroy, "cublasDestroy_v2");
  RESOLVE(lib, set_math_mode, "cublasSetMathMode");
  RESOLVE(lib, sgemm, "cublasSgemm_v2");
  *out = lib;
  return 0;
}

int vane_cublas_create(const vane_cublas *lib, void **handle) {
  int status = lib->create(handle);
  // CUBLAS_DEFAULT_MATH (0): full float32 products, no TF32 tensor cores.
  if (status == 0) status = lib->set_math_mode(*handle, 0);
  return status;
}

int vane_cublas_destroy(const vane_cublas *lib, void *handle) { return lib->destroy(handle); }

int vane_cublas_sgemm(const vane_cublas *lib, void *handle, int transpose_a, int transpose_b,
                      int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                      int ldb, float beta, float *c, int ldc) {
  // Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: B first, then A, n × m.
  // cublasOperation_t: CUBLAS_OP_N 0, CUBLAS_OP_T 1.
  return lib->sgemm(handle, transpose_b ? 1 : 0, transpose_a ? 1 : 0, n, m, k, &alpha, b, ldb, a,
                    lda, &beta, c, ldc);
}

const char *vane_cublas_path(const vane_cublas *lib) {
  return vane_cuda_origin(*(void **)(&lib->get_property));
}

int vane_cublas_version(const vane_cublas *lib, int *major, int *minor, int *patch) {
  // libraryPropertyType: MAJOR_VERSION 0, MINOR_VERSION 1, PATCH_LEVEL 2.
  int status = lib->get_property(0, major);
  if (status == 0) status = lib->get_property(1, minor);
  if (status == 0) status = lib->get_property(2, patch);
  return status;
}

// ---- NVRTC ----

typedef struct _nvrtcProgram *nvrtcProgram;

struct vane_nvrtc {
  void *handle;
  int (*version)(int *, int *);
  const char *(*error_string)(int);
  int (*create)(nvrtcProgram *, const char *, const char *, int, const char *const *,
                const char *const *);
  int (*compile)(nvrtcProgram, int, const char *const *);
  int (*log_size)(nvrtcProgram, size_t *);
  int (*log)(nvrtcProgram, char *);
  int (*ptx_size)(nvrtcProgram, size_t *);
  int (*ptx)(nvrtcProgram, char *);
  int (*destroy)(nvrtcProgram *);
};

int vane_nvrtc_open(const char *path, vane_nvrtc **out, char *error, size_t error_length) {
  void *handle = vane_cuda_dlopen(path, error, error_length);
  if (handle == NULL) return -1;
  ALLOCATE(vane_nvrtc, lib);
  RESOLVE(lib, version, "nvrtcVersion");
  RESOLVE(lib, error_string, "nvrtcGetErrorString");
  RESOLVE(lib, create, "nvrtcCreateProgram");
  RESOLVE(lib, compile, "nvrtcCompileProgram");
  RESOLVE(lib, log_size, "nvrtcGetProgramLogSize");
  RESOLVE(lib, log, "nvrtcGetProgramLog");
  RESOLVE(lib, ptx_size, "nvrtcGetPTXSize");
  RESOLVE(lib, ptx, "nvrtcGetPTX");
  RESOLVE(lib, destroy, "nvrtcDestroyProgram");
  *out = lib;
  return 0;
}

const char *vane_nvrtc_path(const vane_nvrtc *lib) {
  return vane_cuda_origin(*(void **)(&lib->version));
}

int vane_nvrtc_version(const vane_nvrtc *lib, int *major, int *minor) {
  return lib->version(major, minor);
}

const char *vane_nvrtc_error_string(const vane_nvrtc *lib, int result) {
  return lib->error_string(result);
}

// NVRTC_ERROR_OUT_OF_MEMORY, for an allocation of ours that fails.
#define VANE_NVRTC_OUT_OF_MEMORY 1

int vane_nvrtc_compile(const vane_nvrtc *lib, const char *source, const char *name,
                       const char *const *options, int option_count, char **ptx, size_t *ptx_length,
                       char **log) {
  *ptx = NULL;
  *ptx_length = 0;
  *log = NULL;
  nvrtcProgram program = NULL;
  int result = lib->create(&program, source, name, 0, NULL, NULL);
  if (result != 0) return result;
  result = lib->compile(program, option_count, options);
  size_t log_size = 0;
  if (lib->log_size(program, &log_size) == 0 && log_size > 0) {
    *log = malloc(log_size + 1);
    if (*log != NULL) {
      if (lib->log(program, *log) != 0) (*log)[0] = 0;
      (*log)[log_size] = 0;
    }
  }
  if (result == 0) {
    size_t size = 0;
    result = lib->ptx_size(program, &size);
    if (result == 0) {
      *ptx = malloc(size + 1);
      if (*ptx == NULL) {
        result = VANE_NVRTC_OUT_OF_MEMORY;
      } else {
        result = lib->ptx(program, *ptx);
        (*ptx)[size] = 0;
        *ptx_length = size;
      }
    }
  }
  lib->destroy(&program);
  return result;
}
