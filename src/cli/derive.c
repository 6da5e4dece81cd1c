/*
 * The shared half of `cairn quantize` and `cairn prune` (see derive.h): open
 * the repository, derive the version, print what changed. The human form is
 * a summary (sizes before and after, stored bytes) and one table per tensor
 * file with every tensor's action, dtypes, bytes and largest absolute error;
 * kept tensors show why they were kept (bias, not a float tensor, ...).
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cairn/repo.h"
#include "cli.h"
#include "derive.h"
#include "print.h"
#include "util/buf.h"

static void print_file(const struct cairn_derive_file *f)
{
    const struct cairn_transform_report *r = &f->report;
    int w = 6;
    for (size_t i = 0; i < r->count; i++) {
        int n = (int)strlen(r->tensors[i].name);
        if (n > w)
            w = n > 48 ? 48 : n;
    }
    printf("\n%s: %zu of %zu tensors changed (%s)\n", f->path, r->changed, r->count, r->mode);
    printf("  %-*s  %-7s %-14s %14s %14s %13s  %s\n", w, "TENSOR", "ACTION", "DTYPE",
           "BYTES BEFORE", "BYTES AFTER", "MAX ABS ERROR", "NOTE");
    for (size_t i = 0; i < r->count; i++) {
        const struct cairn_tensor_report *t = &r->tensors[i];
        char dt[32];
        if (strcmp(t->dtype_before, t->dtype_after))
            snprintf(dt, sizeof(dt), "%s -> %s", t->dtype_before, t->dtype_after);
        else
            snprintf(dt, sizeof(dt), "%s", t->dtype_before);
        printf("  %-*s  %-7s %-14s %14llu %14llu %13.6g%s%s\n", w, t->name, t->action, dt,
               (unsigned long long)t->bytes_before, (unsigned long long)t->bytes_after,
               t->max_abs_error, t->reason ? "  " : "", t->reason ? t->reason : "");
        if (t->overflowed)
            printf("  %-*s  %llu finite values overflowed to infinity\n", w, "",
                   (unsigned long long)t->overflowed);
    }
}

static void print_result(const struct cairn_derive_result *r)
{
    char sid[16], a[32], b[32], c[32];
    double ratio = r->raw_before ? (double)r->raw_after / (double)r->raw_before : 1.0;
    printf("[%s v%d %s] %s\n", r->version.model, r->version.number,
           cli_short_id(sid, &r->version.id), r->version.message);
    printf(" derived from %s@v%d (%s)\n", r->source.model, r->source.number, r->detail);
    printf(" raw size %s -> %s (%.3fx), %s new in the store, largest error %.6g\n",
           cli_fmt_bytes(a, sizeof(a), r->raw_before), cli_fmt_bytes(b, sizeof(b), r->raw_after),
           ratio, cli_fmt_bytes(c, sizeof(c), r->version.stored_new), r->max_abs_error);
    if (r->copied)
        printf(" %zu other file%s carried over unchanged\n", r->copied, r->copied == 1 ? "" : "s");
    for (size_t i = 0; i < r->nfiles; i++)
        print_file(&r->files[i]);
}

static int print_json(struct cairn_repo *repo, const struct cairn_derive_result *r)
{
    struct cairn_buf text = CAIRN_BUF_INIT;
    json_t *root = NULL, *v;
    json_error_t jerr;
    int error;

    if ((error = cairn_derive_result_json(&text, r)) < 0)
        goto done;
    if (!(root = json_loads(text.ptr, 0, &jerr)) || !(v = cli_version_json(repo, &r->version, 1)) ||
        json_object_set_new(root, "version", v) < 0) {
        error = cairn_error_set(CAIRN_ENOMEM, "cannot encode the result as JSON");
        goto done;
    }
    cli_print_json(root);
    root = NULL;
done:
    json_decref(root);
    cairn_buf_release(&text);
    return error;
}

int cli_derive_run(const char *ref, const struct cairn_transform_opts *t, const char *message,
                   int json)
{
    struct cairn_derive_opts o;
    struct cairn_derive_result r;
    struct cairn_repo *repo = NULL;
    struct cli_progress *pb;
    int error, rc;

    if ((rc = cli_open_repo(&repo)) != 0)
        return rc;
    memset(&o, 0, sizeof(o));
    o.ref = ref;
    o.transform = *t;
    o.message = message;
    pb = cli_progress_start("checkout", 0);
    o.progress = cli_progress_cb;
    o.progress_payload = pb;
    error = cairn_model_derive(&r, repo, &o);
    cli_progress_finish(pb);
    if (error >= 0)
        error = json ? print_json(repo, &r) : (print_result(&r), 0);
    rc = error < 0 ? cli_fail(error) : EXIT_OK;
    cairn_derive_result_release(&r);
    cairn_repo_free(repo);
    return rc;
}
