// XGBoost's C API, loaded at run time (dlopen) so that another build of libxgboost (a CUDA
// one) can be used by pointing VANE_XGBOOST_LIBRARY at it, without rebuilding Vane.
// Every entry returns 0 on success and -1 on failure; on failure the library's message is
// available from vane_xgb_last_error (or, for vane_xgb_open, in `error`).
#ifndef VANE_XGBOOST_H
#define VANE_XGBOOST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vane_xgb_library vane_xgb_library;

// Loads `path` (NULL: "libxgboost.so.0", then "libxgboost.so") and resolves the entry points.
int vane_xgb_open(const char *path, vane_xgb_library **out, char *error, size_t error_length);
// The library's version (XGBoostVersion).
void vane_xgb_version(const vane_xgb_library *lib, int *major, int *minor, int *patch);
// The library's build information as JSON (XGBuildInfo: "USE_CUDA", compiler, …); NULL when
// the library has no XGBuildInfo (before 1.5) or it fails. Valid for the library's lifetime.
const char *vane_xgb_build_info(const vane_xgb_library *lib);
// The file the library was loaded from (dladdr of XGBoostVersion); NULL when unknown.
const char *vane_xgb_path(const vane_xgb_library *lib);
// The last error message of the calling thread.
const char *vane_xgb_last_error(const vane_xgb_library *lib);

int vane_xgb_matrix_create(const vane_xgb_library *lib, const float *data, uint64_t rows, uint64_t columns, float missing, void **out);
int vane_xgb_matrix_set_float_info(const vane_xgb_library *lib, void *matrix, const char *field, const float *values, uint64_t count);
int vane_xgb_matrix_free(const vane_xgb_library *lib, void *matrix);

int vane_xgb_booster_create(const vane_xgb_library *lib, void *const *matrices, uint64_t count, void **out);
int vane_xgb_booster_set_param(const vane_xgb_library *lib, void *booster, const char *name, const char *value);
int vane_xgb_booster_update(const vane_xgb_library *lib, void *booster, int iteration, void *train);
int vane_xgb_booster_eval(const vane_xgb_library *lib, void *booster, int iteration, void *const *matrices, const char **names, uint64_t count, const char **result);
// Predictions for `matrix` with a JSON config (XGBoosterPredictFromDMatrix); the result stays
// valid until the booster's next call.
int vane_xgb_booster_predict(const vane_xgb_library *lib, void *booster, void *matrix, const char *config, const uint64_t **shape, uint64_t *dimensions, const float **result);
// The model as JSON (`{"format": "json"}`); valid until the booster's next call.
int vane_xgb_booster_save(const vane_xgb_library *lib, void *booster, uint64_t *length, const char **bytes);
int vane_xgb_booster_load(const vane_xgb_library *lib, void *booster, const void *bytes, uint64_t length);
int vane_xgb_booster_free(const vane_xgb_library *lib, void *booster);
// A new booster with the trees of rounds [begin, end) (XGBoosterSlice, step 1).
int vane_xgb_booster_slice(const vane_xgb_library *lib, void *booster, int begin, int end, void **out);

#ifdef __cplusplus
}
#endif

#endif
