/*
 * --params and --metrics files of `commit`: read with the strict flat-set
 * reader of the gate module (JSON or YAML) and converted to the registry's
 * typed values.
 */
#include "cairn/gate.h"
#include "repo/repo_internal.h"

int cairn__load_kv_file(struct cairn_kv_list *out, const char *path, const char *what)
{
    struct cairn_metrics m;
    int error;

    cairn_metrics_init(&m);
    if ((error = cairn_metrics_load_file(&m, path)) < 0) {
        cairn_error_prefix("cannot read %s", what);
        goto done;
    }
    for (size_t i = 0; i < m.count && !error; i++) {
        const struct cairn_metric *x = &m.items[i];
        switch (x->type) {
        case CAIRN_METRIC_NUMBER:
            error = cairn_kv_list_add(out, x->name, CAIRN_VALUE_NUMBER, x->number, NULL, 0);
            break;
        case CAIRN_METRIC_STRING:
            error = cairn_kv_list_add(out, x->name, CAIRN_VALUE_STRING, 0, x->string, 0);
            break;
        default:
            error = cairn_kv_list_add(out, x->name, CAIRN_VALUE_BOOL, 0, NULL, x->boolean);
        }
    }
done:
    cairn_metrics_release(&m);
    return error;
}
