/*
 * --params and --metrics files of `commit`: read with the strict flat-set
 * reader (cairn/values.h, JSON or YAML) straight into the registry's type.
 */
#include "repo/repo_internal.h"

int cairn__load_kv_file(struct cairn_values *out, const char *path, const char *what)
{
    int error = cairn_values_load_file(out, path);
    if (error < 0)
        cairn_error_prefix("cannot read %s", what);
    return error;
}
