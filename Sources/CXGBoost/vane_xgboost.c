#define _GNU_SOURCE
#include "vane_xgboost.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

typedef uint64_t bst_ulong;

struct vane_xgb_library {
  void *handle;
  void (*version)(int *, int *, int *);
  // Optional: absent before 1.5.
  int (*build_info)(const char **);
  const char *(*last_error)(void);
  int (*matrix_create)(const float *, bst_ulong, bst_ulong, float, void **);
  int (*matrix_set_float_info)(void *, const char *, const float *, bst_ulong);
  int (*matrix_free)(void *);
  int (*booster_create)(void *const *, bst_ulong, void **);
  int (*booster_set_param)(void *, const char *, const char *);
  int (*booster_update)(void *, int, void *);
  int (*booster_eval)(void *, int, void *const *, const char **, bst_ulong, const char **);
  int (*booster_predict)(void *, void *, const char *, const bst_ulong **, bst_ulong *, const float **);
  int (*booster_save)(void *, const char *, bst_ulong *, const char **);
  int (*booster_load)(void *, const void *, bst_ulong);
  int (*booster_free)(void *);
  int (*booster_slice)(void *, int, int, int, void **);
};

#define RESOLVE(field, symbol)                                                        \
  do {                                                                                \
    *(void **)(&lib->field) = dlsym(handle, symbol);                                  \
    if (lib->field == NULL) {                                                         \
      snprintf(error, error_length, "%s has no symbol %s", name, symbol);            \
      dlclose(handle);                                                                \
      free(lib);                                                                      \
      return -1;                                                                      \
    }                                                                                 \
  } while (0)

int vane_xgb_open(const char *path, vane_xgb_library **out, char *error, size_t error_length) {
  const char *name = path;
  void *handle = NULL;
  if (path != NULL) {
    handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  } else {
    name = "libxgboost.so.0";
    handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
      name = "libxgboost.so";
      handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    }
  }
  if (handle == NULL) {
    const char *reason = dlerror();
    snprintf(error, error_length, "cannot load %s: %s", name, reason ? reason : "unknown error");
    return -1;
  }
  vane_xgb_library *lib = calloc(1, sizeof(vane_xgb_library));
  if (lib == NULL) {
    dlclose(handle);
    snprintf(error, error_length, "out of memory");
    return -1;
  }
  lib->handle = handle;
  RESOLVE(version, "XGBoostVersion");
  *(void **)(&lib->build_info) = dlsym(handle, "XGBuildInfo");
  RESOLVE(last_error, "XGBGetLastError");
  RESOLVE(matrix_create, "XGDMatrixCreateFromMat");
  RESOLVE(matrix_set_float_info, "XGDMatrixSetFloatInfo");
  RESOLVE(matrix_free, "XGDMatrixFree");
  RESOLVE(booster_create, "XGBoosterCreate");
  RESOLVE(booster_set_param, "XGBoosterSetParam");
  RESOLVE(booster_update, "XGBoosterUpdateOneIter");
  RESOLVE(booster_eval, "XGBoosterEvalOneIter");
  RESOLVE(booster_predict, "XGBoosterPredictFromDMatrix");
  RESOLVE(booster_save, "XGBoosterSaveModelToBuffer");
  RESOLVE(booster_load, "XGBoosterLoadModelFromBuffer");
  RESOLVE(booster_free, "XGBoosterFree");
  RESOLVE(booster_slice, "XGBoosterSlice");
  *out = lib;
  return 0;
}

void vane_xgb_version(const vane_xgb_library *lib, int *major, int *minor, int *patch) { lib->version(major, minor, patch); }

const char *vane_xgb_build_info(const vane_xgb_library *lib) {
  const char *out = NULL;
  if (lib->build_info == NULL || lib->build_info(&out) != 0) return NULL;
  return out;
}

const char *vane_xgb_path(const vane_xgb_library *lib) {
  Dl_info info;
  if (dladdr(*(void **)(&lib->version), &info) == 0) return NULL;
  return info.dli_fname;
}

const char *vane_xgb_last_error(const vane_xgb_library *lib) { return lib->last_error(); }

int vane_xgb_matrix_create(const vane_xgb_library *lib, const float *data, uint64_t rows, uint64_t columns, float missing, void **out) {
  return lib->matrix_create(data, rows, columns, missing, out);
}

int vane_xgb_matrix_set_float_info(const vane_xgb_library *lib, void *matrix, const char *field, const float *values, uint64_t count) {
  return lib->matrix_set_float_info(matrix, field, values, count);
}

int vane_xgb_matrix_free(const vane_xgb_library *lib, void *matrix) { return lib->matrix_free(matrix); }

int vane_xgb_booster_create(const vane_xgb_library *lib, void *const *matrices, uint64_t count, void **out) {
  return lib->booster_create(matrices, count, out);
}

int vane_xgb_booster_set_param(const vane_xgb_library *lib, void *booster, const char *name, const char *value) {
  return lib->booster_set_param(booster, name, value);
}

int vane_xgb_booster_update(const vane_xgb_library *lib, void *booster, int iteration, void *train) {
  return lib->booster_update(booster, iteration, train);
}

int vane_xgb_booster_eval(const vane_xgb_library *lib, void *booster, int iteration, void *const *matrices, const char **names, uint64_t count, const char **result) {
  return lib->booster_eval(booster, iteration, matrices, names, count, result);
}

int vane_xgb_booster_predict(const vane_xgb_library *lib, void *booster, void *matrix, const char *config, const uint64_t **shape, uint64_t *dimensions, const float **result) {
  return lib->booster_predict(booster, matrix, config, shape, dimensions, result);
}

int vane_xgb_booster_save(const vane_xgb_library *lib, void *booster, uint64_t *length, const char **bytes) {
  return lib->booster_save(booster, "{\"format\": \"json\"}", length, bytes);
}

int vane_xgb_booster_load(const vane_xgb_library *lib, void *booster, const void *bytes, uint64_t length) {
  return lib->booster_load(booster, bytes, length);
}

int vane_xgb_booster_free(const vane_xgb_library *lib, void *booster) { return lib->booster_free(booster); }

int vane_xgb_booster_slice(const vane_xgb_library *lib, void *booster, int begin, int end, void **out) {
  return lib->booster_slice(booster, begin, end, 1, out);
}
