/*
 * The reference inference engine of `cairn serve-model`: multilayer
 * perceptron classifiers stored as safetensors (docs/serve-model.md has the
 * exact layout). Loading reads and validates the file, converts every weight
 * (F32, F16, BF16, or I8 with per-row scales) to fp32 once, and keeps only
 * the fp32 copy; inference is one cblas_sgemm per layer over a whole batch.
 *
 * Dequantising int8 at load costs 4x the memory of the int8 file but makes
 * every request a plain sgemm, which OpenBLAS runs far faster than any int8
 * kernel we could write here; for the classifier sizes this backend is for,
 * memory is not the constraint (SPEC §6: enough for examples and tests).
 *
 * A loaded model is immutable: cairn_mlp_infer() may run on many threads at
 * once on the same model.
 */
#ifndef CAIRN_MODEL_MLP_H
#define CAIRN_MODEL_MLP_H

#include <stddef.h>
#include <stdint.h>

struct cairn_buf;

struct cairn_mlp;

enum cairn_mlp_activation {
    CAIRN_MLP_RELU = 0,
    CAIRN_MLP_TANH,
    CAIRN_MLP_SIGMOID,
};

/* Caps on what a file may ask for; a model over them is CAIRN_EINVALID. */
#define CAIRN_MLP_MAX_LAYERS 64
#define CAIRN_MLP_MAX_WIDTH  ((uint64_t)1 << 20) /* features or units per layer */
#define CAIRN_MLP_MAX_PARAMS ((uint64_t)1 << 26) /* 64 Mi parameters = 256 MiB fp32 */

/*
 * Load the model in the safetensors file `path`. On success `*out` is a new
 * model the caller frees with cairn_mlp_free(). Errors: CAIRN_ENOTFOUND for a
 * missing file, CAIRN_EINVALID with a message naming the file and the reason
 * for anything malformed (header, dtype, shape chain, metadata), CAIRN_ERROR
 * for I/O, CAIRN_ENOMEM.
 */
int cairn_mlp_load(struct cairn_mlp **out, const char *path);

/*
 * Find the model file of a version directory and append its path, relative
 * to `dir`, to `out`: `model.safetensors` at the top of `dir`, or else the
 * only `*.safetensors` file anywhere under `dir` (a version committed as
 * `m/model.safetensors` keeps its folder when checked out). Hidden entries
 * are skipped and symlinks not followed. CAIRN_EINVALID naming the files
 * (up to 8) if there are several, CAIRN_ENOTFOUND if there is none.
 */
int cairn_mlp_find(struct cairn_buf *out, const char *dir);

/* Load the model file cairn_mlp_find() picks in `dir`; its errors, or cairn_mlp_load()'s. */
int cairn_mlp_load_dir(struct cairn_mlp **out, const char *dir);

/* Accepts NULL. */
void cairn_mlp_free(struct cairn_mlp *m);

size_t cairn_mlp_num_inputs(const struct cairn_mlp *m);
size_t cairn_mlp_num_classes(const struct cairn_mlp *m);
size_t cairn_mlp_num_layers(const struct cairn_mlp *m);
int cairn_mlp_activation(const struct cairn_mlp *m);
/* Safetensors spelling of the weight dtype the file stored ("F32", "F16", "BF16", "I8"). */
const char *cairn_mlp_weight_dtype(const struct cairn_mlp *m);
/* Label of class `i` from `cairn.classes`, or NULL when the file names none. */
const char *cairn_mlp_class_label(const struct cairn_mlp *m, size_t i);

/*
 * Run the batch `x` of `rows` rows of cairn_mlp_num_inputs() floats each
 * (row-major) and write `rows` x cairn_mlp_num_classes() softmax
 * probabilities to `out` (row-major). One allocation of scratch per call.
 * Returns 0, or CAIRN_ENOMEM when the scratch would be too large.
 */
int cairn_mlp_infer(const struct cairn_mlp *m, float *out, const float *x, size_t rows);

/* Index of the largest of `n` values (the first on ties; NaN never wins). */
size_t cairn_mlp_argmax(const float *v, size_t n);

#endif
