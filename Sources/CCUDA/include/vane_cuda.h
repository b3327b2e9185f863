// NVIDIA's CUDA runtime, cuBLAS and NVRTC, loaded at run time (dlopen) from the files the pip
// nvidia-* wheels install, so that Vane builds and runs without the CUDA toolkit and uses a
// GPU where one and the libraries are present. Only the entry points Vane calls are declared;
// CUDA's own types appear as the ints and opaque pointers they are in its C ABI.
#ifndef VANE_CUDA_H
#define VANE_CUDA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---- CUDA runtime (libcudart.so.12 / .13) ----
typedef struct vane_cudart vane_cudart;

// Loads `path` and resolves the entry points; 0, or -1 with the reason in `error`.
int vane_cudart_open(const char *path, vane_cudart **out, char *error, size_t error_length);
// The file the library was loaded from (dladdr); NULL when unknown.
const char *vane_cudart_path(const vane_cudart *lib);
// cudaRuntimeGetVersion and cudaDriverGetVersion (1000·major + 10·minor; the driver's is 0
// without a driver). Each returns the cudaError_t.
int vane_cudart_runtime_version(const vane_cudart *lib, int *version);
int vane_cudart_driver_version(const vane_cudart *lib, int *version);
// cudaGetDeviceCount: the cudaError_t (35 "insufficient driver" or 100 "no device" without a
// GPU).
int vane_cudart_device_count(const vane_cudart *lib, int *count);
// cudaGetErrorName and cudaGetErrorString of a cudaError_t.
const char *vane_cudart_error_name(const vane_cudart *lib, int error);
const char *vane_cudart_error_string(const vane_cudart *lib, int error);

// Each of the following returns the cudaError_t (0: success). They act on the calling thread's
// current device (vane_cudart_set_device) and CUDA's legacy default stream, so that work is
// ordered as it is issued.
int vane_cudart_set_device(const vane_cudart *lib, int ordinal);
// The device's compute capability (cudaDeviceGetAttribute 75 and 76).
int vane_cudart_capability(const vane_cudart *lib, int ordinal, int *major, int *minor);
int vane_cudart_malloc(const vane_cudart *lib, void **pointer, size_t bytes);
int vane_cudart_free(const vane_cudart *lib, void *pointer);
// cudaMemcpy: kind 1 host to device, 2 device to host, 3 device to device.
int vane_cudart_copy(const vane_cudart *lib, void *target, const void *source, size_t bytes, int kind);
int vane_cudart_zero(const vane_cudart *lib, void *pointer, size_t bytes);
int vane_cudart_synchronize(const vane_cudart *lib);
// Loads PTX (NUL-terminated) as a library (cudaLibraryLoadData, CUDA 12.0+): the driver
// compiles it for the device.
int vane_cudart_library_load(const vane_cudart *lib, const char *ptx, void **library);
int vane_cudart_library_unload(const vane_cudart *lib, void *library);
int vane_cudart_library_kernel(const vane_cudart *lib, void *library, const char *name, void **kernel);
// cudaLaunchKernel of `kernel` on grid × block threads (x only) with `arguments` (pointers to
// each argument's value, in order), on the default stream.
int vane_cudart_launch(const vane_cudart *lib, void *kernel, unsigned int grid, unsigned int block,
                       void **arguments);

// ---- cuBLAS (libcublas.so.12 / .13) ----
typedef struct vane_cublas vane_cublas;

int vane_cublas_open(const char *path, vane_cublas **out, char *error, size_t error_length);
const char *vane_cublas_path(const vane_cublas *lib);
// cublasGetProperty of MAJOR_VERSION, MINOR_VERSION and PATCH_LEVEL (no handle, no GPU needed);
// the cublasStatus_t.
int vane_cublas_version(const vane_cublas *lib, int *major, int *minor, int *patch);
// A handle on the current device (cublasCreate, default math: no TF32), and its end.
int vane_cublas_create(const vane_cublas *lib, void **handle);
int vane_cublas_destroy(const vane_cublas *lib, void *handle);
// C ← α·op(A)·op(B) + β·C on row-major matrices (op(A) m×k, op(B) k×n; lda, ldb, ldc the row
// strides), computed as the column-major product of the transposes; the cublasStatus_t.
int vane_cublas_sgemm(const vane_cublas *lib, void *handle, int transpose_a, int transpose_b,
                      int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                      int ldb, float beta, float *c, int ldc);

// ---- NVRTC (libnvrtc.so.12 / .13) ----
typedef struct vane_nvrtc vane_nvrtc;

int vane_nvrtc_open(const char *path, vane_nvrtc **out, char *error, size_t error_length);
const char *vane_nvrtc_path(const vane_nvrtc *lib);
// nvrtcVersion; the nvrtcResult.
int vane_nvrtc_version(const vane_nvrtc *lib, int *major, int *minor);
const char *vane_nvrtc_error_string(const vane_nvrtc *lib, int result);
// Compiles CUDA C++ `source` (named `name` in messages) with `options` to PTX. Returns the
// nvrtcResult; `*ptx` (on success) and `*log` (always, possibly empty) are malloc'd,
// NUL-terminated, for the caller to free. No GPU is needed.
int vane_nvrtc_compile(const vane_nvrtc *lib, const char *source, const char *name,
                       const char *const *options, int option_count, char **ptx, size_t *ptx_length,
                       char **log);

#ifdef __cplusplus
}
#endif

#endif
