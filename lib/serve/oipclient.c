/*
 * Client side of OIP v2 for eval and loadgen: target URLs, request bodies,
 * predictions from answers, and labelled CSV tables. See oipclient.h.
 *
 * Answers are parsed with jansson: they come from a server we do not
 * control, so every field is checked for type and count before use, and the
 * row count must equal what was sent.
 */
#include "serve/oipclient.h"

#include <float.h>
#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <jansson.h>

#include "cairn/common.h"
#include "data/csv.h"
#include "data/schema.h"
#include "serve/oip.h"

#define DEFAULT_MAX_ELEMENTS ((size_t)1 << 28)

/* ---- targets ---- */

void cairn_oip_target_release(struct cairn_oip_target *t)
{
    if (!t)
        return;
    free(t->path);
    free(t->model);
    t->path = t->model = NULL;
}

static int valid_name(const char *s, size_t len)
{
    if (len == 0 || len > 256)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

static int resolve(char *addr, size_t cap, const char *host, const char *port, const char *url)
{
    struct addrinfo hints, *res = NULL;
    char ip[INET6_ADDRSTRLEN];
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    if (!strcmp(host, "localhost"))
        host = "127.0.0.1";
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || !res)
        return cairn_error_set(CAIRN_ENOTFOUND, "cannot resolve '%s' in '%s': %s", host, url,
                               gai_strerror(rc));
    if (res->ai_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)res->ai_addr;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        snprintf(addr, cap, "[%s]:%s", ip, port);
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)res->ai_addr;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        snprintf(addr, cap, "%s:%s", ip, port);
    }
    freeaddrinfo(res);
    return 0;
}

/* Resolve the origin of `url` into out->addr and out->origin; *path_out points into `url`. */
static int split_url(struct cairn_oip_target *out, const char **path_out, const char *url)
{
    const char *p, *hostend, *path;
    char host[256], port[8] = "80";
    int error;

    if (strncmp(url, "http://", 7) != 0)
        return cairn_error_set(CAIRN_EINVALID, "unsupported URL '%s': only http:// is supported",
                               url);
    p = url + 7;
    path = p + strcspn(p, "/?#");
    if (*path == '?' || *path == '#')
        return cairn_error_set(CAIRN_EINVALID, "URL '%s' may not carry a query", url);
    if (*p == '[') {
        hostend = memchr(p, ']', (size_t)(path - p));
        if (!hostend || hostend - p - 1 >= (long)sizeof(host) || hostend == p + 1)
            return cairn_error_set(CAIRN_EINVALID, "bad host in URL '%s'", url);
        memcpy(host, p + 1, (size_t)(hostend - p - 1));
        host[hostend - p - 1] = '\0';
        hostend++;
    } else {
        hostend = p;
        while (hostend < path && *hostend != ':')
            hostend++;
        if (hostend == p || hostend - p >= (long)sizeof(host))
            return cairn_error_set(CAIRN_EINVALID, "bad host in URL '%s'", url);
        memcpy(host, p, (size_t)(hostend - p));
        host[hostend - p] = '\0';
    }
    if (hostend < path) {
        size_t n = (size_t)(path - hostend - 1);
        if (*hostend != ':' || n == 0 || n > 5 || strspn(hostend + 1, "0123456789") < n ||
            atoi(hostend + 1) > 65535 || atoi(hostend + 1) <= 0)
            return cairn_error_set(CAIRN_EINVALID, "bad port in URL '%s'", url);
        memcpy(port, hostend + 1, n);
        port[n] = '\0';
    }
    if ((error = resolve(out->addr, sizeof(out->addr), host, port, url)) < 0)
        return error;
    snprintf(out->origin, sizeof(out->origin), "http://%.*s", (int)(path - p), p);
    *path_out = path;
    return 0;
}

int cairn_oip_url_resolve(struct cairn_oip_target *out, const char *url)
{
    const char *path;
    int error;

    memset(out, 0, sizeof(*out));
    if ((error = split_url(out, &path, url)) < 0)
        return error;
    if (!(out->path = strdup(*path ? path : "/")))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    return 0;
}

int cairn_oip_target_parse(struct cairn_oip_target *out, const char *url, const char *model)
{
    const char *path, *m;
    struct cairn_buf pb = CAIRN_BUF_INIT;
    int error = 0;

    memset(out, 0, sizeof(*out));
    if ((error = split_url(out, &path, url)) < 0)
        return error;
    m = strstr(path, "/v2/models/");
    if (m) {
        const char *name = m + strlen("/v2/models/");
        size_t nlen = strcspn(name, "/");
        size_t plen = strlen(path);
        if (!valid_name(name, nlen))
            return cairn_error_set(CAIRN_EINVALID, "bad model name in URL '%s'", url);
        if (model && (strlen(model) != nlen || memcmp(model, name, nlen)))
            return cairn_error_set(CAIRN_EINVALID, "model '%s' differs from the one in URL '%s'",
                                   model, url);
        while (plen > 0 && path[plen - 1] == '/')
            plen--;
        if ((error = cairn_buf_put(&pb, path, plen)) < 0)
            goto done;
        if (plen < 6 || strcmp(pb.ptr + plen - 6, "/infer"))
            error = cairn_buf_puts(&pb, "/infer");
        if (error < 0)
            goto done;
        out->model = strndup(name, nlen);
    } else {
        size_t plen = strlen(path);
        if (!model)
            return cairn_error_set(
                CAIRN_EINVALID, "URL '%s' names no model: give one or a /v2/models/NAME URL", url);
        if (!valid_name(model, strlen(model)))
            return cairn_error_set(CAIRN_EINVALID, "bad model name '%s'", model);
        while (plen > 0 && path[plen - 1] == '/')
            plen--;
        if ((error = cairn_buf_put(&pb, path, plen)) < 0 ||
            (error = cairn_buf_printf(&pb, "/v2/models/%s/infer", model)) < 0)
            goto done;
        out->model = strdup(model);
    }
    out->path = cairn_buf_detach(&pb, NULL);
    if (!out->path || !out->model) {
        cairn_oip_target_release(out);
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
    }
done:
    cairn_buf_release(&pb);
    return error;
}

/* ---- requests ---- */

int cairn_oip_encode_rows(struct cairn_buf *out, const char *id, const char *input_name,
                          const float *x, size_t nrows, size_t cols)
{
    int error;
    size_t n = nrows * cols;

    if ((error = cairn_buf_puts(out, "{")) < 0)
        return error;
    if (id &&
        ((error = cairn_buf_puts(out, "\"id\":")) < 0 ||
         (error = cairn_json_put_string(out, id)) < 0 || (error = cairn_buf_putc(out, ',')) < 0))
        return error;
    if ((error = cairn_buf_puts(out, "\"inputs\":[{\"name\":")) < 0 ||
        (error = cairn_json_put_string(out, input_name)) < 0 ||
        (error = cairn_buf_printf(out, ",\"shape\":[%zu,%zu],\"datatype\":\"FP32\",\"data\":[",
                                  nrows, cols)) < 0)
        return error;
    for (size_t i = 0; i < n; i++) {
        char num[32];
        int len;
        if (!isfinite(x[i]))
            return cairn_error_set(CAIRN_EINVALID,
                                   "input row %zu feature %zu is not finite (JSON has no NaN)",
                                   i / cols, i % cols);
        len = snprintf(num, sizeof(num), i ? ",%.9g" : "%.9g", (double)x[i]);
        if ((error = cairn_buf_put(out, num, (size_t)len)) < 0)
            return error;
    }
    return cairn_buf_puts(out, "]}]}");
}

/* ---- answers ---- */

int cairn_oip_label_canon(struct cairn_buf *out, const char *s, size_t len)
{
    char tmp[40];
    double v;

    cairn_buf_clear(out);
    if (len > 0 && len < sizeof(tmp)) {
        /* A NUL-terminated copy: the number parser may look one byte past `len`. */
        memcpy(tmp, s, len);
        tmp[len] = '\0';
        if (cairn__parse_float(&v, tmp, len) == 0 && isfinite(v) && v == floor(v) &&
            fabs(v) < 9007199254740992.0)
            return cairn_buf_printf(out, "%lld", (long long)v);
    }
    return cairn_buf_put(out, s, len);
}

static json_t *find_output(json_t *outputs, const char *name)
{
    size_t i;
    json_t *o;
    json_array_foreach(outputs, i, o)
    {
        json_t *n = json_object_get(o, "name");
        if (json_is_string(n) && !strcmp(json_string_value(n), name))
            return o;
    }
    return NULL;
}

/* Flatten nested data arrays into `flat` (bounded by `cap` elements). */
static int flatten(json_t *flat, json_t *v, size_t cap, int depth)
{
    size_t i;
    json_t *e;
    if (depth > 8)
        return -1;
    json_array_foreach(v, i, e)
    {
        if (json_is_array(e)) {
            if (flatten(flat, e, cap, depth + 1) < 0)
                return -1;
        } else {
            if (json_array_size(flat) >= cap)
                return -1;
            json_array_append(flat, e);
        }
    }
    return 0;
}

int cairn_oip_parse_predictions(const char *body, size_t len, size_t nrows,
                                enum cairn_oip_match match, cairn_oip_pred_fn fn, void *arg,
                                struct cairn_buf *version_out)
{
    json_error_t jerr;
    json_t *root, *outputs, *out = NULL, *data, *flat = NULL, *shape;
    struct cairn_buf key = CAIRN_BUF_INIT;
    size_t n, cols = 0;
    int error = 0, argmax = 0;

    if (version_out)
        cairn_buf_clear(version_out);
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return cairn_error_set(CAIRN_EINVALID, "answer is not a JSON object");
    }
    if (version_out && json_is_string(json_object_get(root, "model_version")))
        (void)cairn_buf_puts(version_out,
                             json_string_value(json_object_get(root, "model_version")));
    outputs = json_object_get(root, "outputs");
    if (!json_is_array(outputs) || json_array_size(outputs) == 0) {
        error = cairn_error_set(CAIRN_EINVALID, "answer has no outputs");
        goto done;
    }
    if (match == CAIRN_OIP_MATCH_AUTO)
        out = find_output(outputs, "class");
    if (!out)
        out = find_output(outputs, "label");
    if (!out && match == CAIRN_OIP_MATCH_INDEX)
        out = find_output(outputs, "probabilities");
    if (!out)
        out = json_array_get(outputs, 0);
    shape = json_object_get(out, "shape");
    data = json_object_get(out, "data");
    if (!json_is_array(shape) || !json_is_array(data) || json_array_size(shape) < 1 ||
        json_array_size(shape) > 2 || !json_is_integer(json_array_get(shape, 0)) ||
        json_integer_value(json_array_get(shape, 0)) != (json_int_t)nrows) {
        error = cairn_error_set(CAIRN_EINVALID, "answer output is not [%zu] or [%zu, classes]",
                                nrows, nrows);
        goto done;
    }
    if (json_array_size(shape) == 2) {
        json_t *c = json_array_get(shape, 1);
        if (!json_is_integer(c) || json_integer_value(c) < 1 || json_integer_value(c) > 1000000) {
            error = cairn_error_set(CAIRN_EINVALID, "answer output has a bad class count");
            goto done;
        }
        cols = (size_t)json_integer_value(c);
        argmax = 1;
    } else {
        cols = 1;
    }
    if (!(flat = json_array()) || flatten(flat, data, nrows * cols, 0) < 0 ||
        json_array_size(flat) != nrows * cols) {
        error = cairn_error_set(CAIRN_EINVALID, "answer output holds the wrong number of values");
        goto done;
    }
    n = nrows;
    for (size_t r = 0; r < n && error == 0; r++) {
        json_t *v = json_array_get(flat, r * cols);
        char num[32];
        if (argmax) {
            size_t best = 0;
            double bv = -INFINITY;
            for (size_t c = 0; c < cols; c++) {
                json_t *e = json_array_get(flat, r * cols + c);
                if (!json_is_number(e)) {
                    error = cairn_error_set(CAIRN_EINVALID, "answer output holds a non-number");
                    goto done;
                }
                if (json_number_value(e) > bv) {
                    bv = json_number_value(e);
                    best = c;
                }
            }
            snprintf(num, sizeof(num), "%zu", best);
            cairn_buf_clear(&key);
            error = cairn_buf_puts(&key, num);
        } else if (json_is_string(v)) {
            error = cairn_oip_label_canon(&key, json_string_value(v), json_string_length(v));
        } else if (json_is_integer(v)) {
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
            error = cairn_oip_label_canon(&key, num, strlen(num));
        } else if (json_is_real(v)) {
            snprintf(num, sizeof(num), "%.17g", json_real_value(v));
            error = cairn_oip_label_canon(&key, num, strlen(num));
        } else {
            error = cairn_error_set(CAIRN_EINVALID, "answer output holds a value of a bad type");
            goto done;
        }
        if (error < 0)
            goto done;
        if (!key.ptr && (error = cairn_buf_puts(&key, "")) < 0)
            goto done;
        error = fn(r, key.ptr, arg);
    }
done:
    json_decref(flat);
    json_decref(root);
    cairn_buf_release(&key);
    return error;
}

/* ---- tables ---- */

void cairn_oip_table_release(struct cairn_oip_table *t)
{
    if (!t)
        return;
    free(t->x);
    if (t->feature_names)
        for (size_t i = 0; i < t->cols; i++)
            free(t->feature_names[i]);
    free(t->feature_names);
    cairn_buf_release(&t->labels);
    free(t->label_off);
    memset(t, 0, sizeof(*t));
}

static int oom(void)
{
    return cairn_error_set(CAIRN_ENOMEM, "out of memory");
}

/* Check a file's header against the first one; on the first file, record it. */
static int read_header(struct cairn_oip_table *t, const struct cairn_csv_field *f, size_t nf,
                       const char *label_column, size_t *label_idx, const char *file)
{
    size_t li = nf;
    for (size_t i = 0; i < nf; i++)
        if (!strcmp(f[i].ptr, label_column)) {
            li = i;
            break;
        }
    if (li == nf)
        return cairn_error_set(CAIRN_EINVALID, "%s:1: no label column '%s'", file, label_column);
    if (nf < 2)
        return cairn_error_set(CAIRN_EINVALID, "%s:1: no feature column besides '%s'", file,
                               label_column);
    *label_idx = li;
    if (!t->feature_names) {
        t->feature_names = calloc(nf - 1, sizeof(char *));
        if (!t->feature_names)
            return oom();
        t->cols = nf - 1;
        for (size_t i = 0, j = 0; i < nf; i++) {
            if (i == li)
                continue;
            if (!(t->feature_names[j++] = strdup(f[i].ptr)))
                return oom();
        }
        return 0;
    }
    if (nf - 1 != t->cols)
        return cairn_error_set(CAIRN_EINVALID, "%s:1: %zu feature columns, the first file has %zu",
                               file, nf - 1, t->cols);
    for (size_t i = 0, j = 0; i < nf; i++) {
        if (i == li)
            continue;
        if (strcmp(f[i].ptr, t->feature_names[j]))
            return cairn_error_set(CAIRN_EINVALID,
                                   "%s:1: column %zu is '%s', the first file has '%s'", file, i + 1,
                                   f[i].ptr, t->feature_names[j]);
        j++;
    }
    return 0;
}

static int load_file(struct cairn_oip_table *t, const char *file, const char *label_column,
                     size_t max_elements, size_t *cap_rows)
{
    struct cairn_csv *csv = NULL;
    const struct cairn_csv_field *f;
    struct cairn_buf canon = CAIRN_BUF_INIT;
    size_t nf, li = 0;
    int error, rc;

    if ((error = cairn_csv_open(&csv, file, NULL)) < 0)
        return error;
    if ((rc = cairn_csv_next(csv, &f, &nf)) <= 0) {
        error = rc < 0 ? rc : cairn_error_set(CAIRN_EINVALID, "'%s' is empty", file);
        goto done;
    }
    if ((error = read_header(t, f, nf, label_column, &li, file)) < 0)
        goto done;
    while ((rc = cairn_csv_next(csv, &f, &nf)) == 1) {
        uint64_t line = cairn_csv_line(csv);
        float *row;
        if (t->rows >= *cap_rows) {
            size_t nc = *cap_rows ? *cap_rows * 2 : 1024;
            float *nx;
            size_t *no;
            if ((t->rows + 1) * t->cols > max_elements) {
                error = cairn_error_set(CAIRN_ENOMEM, "%s:%llu: dataset larger than %zu values",
                                        file, (unsigned long long)line, max_elements);
                goto done;
            }
            if (nc * t->cols > max_elements)
                nc = max_elements / t->cols;
            if (!(nx = realloc(t->x, nc * t->cols * sizeof(float)))) {
                error = oom();
                goto done;
            }
            t->x = nx;
            if (!(no = realloc(t->label_off, nc * sizeof(size_t)))) {
                error = oom();
                goto done;
            }
            t->label_off = no;
            *cap_rows = nc;
        }
        row = t->x + t->rows * t->cols;
        for (size_t i = 0, j = 0; i < nf; i++) {
            double v;
            if (i == li)
                continue;
            if (cairn__parse_float(&v, f[i].ptr, f[i].len) < 0 || !isfinite(v) ||
                fabs(v) > FLT_MAX) {
                error =
                    cairn_error_set(CAIRN_EINVALID,
                                    "%s:%llu: column '%s' value '%.40s' is not a finite "
                                    "fp32 number",
                                    file, (unsigned long long)line, t->feature_names[j], f[i].ptr);
                goto done;
            }
            row[j++] = (float)v;
        }
        if (f[li].len == 0) {
            error = cairn_error_set(CAIRN_EINVALID, "%s:%llu: empty label", file,
                                    (unsigned long long)line);
            goto done;
        }
        if ((error = cairn_oip_label_canon(&canon, f[li].ptr, f[li].len)) < 0)
            goto done;
        t->label_off[t->rows] = t->labels.len;
        if ((error = cairn_buf_put(&t->labels, canon.ptr, canon.len + 1)) < 0)
            goto done;
        t->rows++;
    }
    error = rc < 0 ? rc : 0;
done:
    cairn_buf_release(&canon);
    cairn_csv_free(csv);
    return error;
}

int cairn_oip_table_load(struct cairn_oip_table *out, const char *path, const char *label_column,
                         size_t max_elements)
{
    char **files = NULL;
    size_t nfiles = 0, cap_rows = 0;
    int error;

    memset(out, 0, sizeof(*out));
    if (!label_column)
        label_column = "label";
    if (!max_elements)
        max_elements = DEFAULT_MAX_ELEMENTS;
    if ((error = cairn__data_files(&files, &nfiles, path)) < 0)
        return error;
    out->nfiles = nfiles;
    for (size_t i = 0; i < nfiles && error == 0; i++)
        error = load_file(out, files[i], label_column, max_elements, &cap_rows);
    if (error == 0 && out->rows == 0)
        error = cairn_error_set(CAIRN_EINVALID, "no data rows in '%s'", path);
    for (size_t i = 0; i < nfiles; i++)
        free(files[i]);
    free(files);
    return error;
}
