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

struct vane_cudart {
  void *handle;
  int (*runtime_version)(int *);
  int (*driver_version)(int *);
  int (*device_count)(int *);
  const char *(*error_name)(int);
  const char *(*error_string)(int);
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
  *out = lib;
  return 0;
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
};

int vane_cublas_open(const char *path, vane_cublas **out, char *error, size_t error_length) {
  void *handle = vane_cuda_dlopen(path, error, error_length);
  if (handle == NULL) return -1;
  ALLOCATE(vane_cublas, lib);
  RESOLVE(lib, get_property, "cublasGetProperty");
  *out = lib;
  return 0;
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
