/*
 * cairn-s3-tool: a small command line over the remote transport
 * (lib/remote/backend.h) for the shell tests (tests/e2e/t3xxx), in the
 * spirit of git's t/helper. It exposes every operation of the interface,
 * with the knobs tests need (part size, threshold, concurrency, retries),
 * and prints errors as the cairn CLI does: one line, "cairn-s3-tool: MSG".
 *
 *   cairn-s3-tool [OPTIONS] URL put KEY FILE            (put_file of the whole file)
 *   cairn-s3-tool [OPTIONS] URL put-range KEY FILE OFF LEN
 *   cairn-s3-tool [OPTIONS] URL put-buf KEY TEXT
 *   cairn-s3-tool [OPTIONS] URL get KEY [OFF LEN]       (to stdout)
 *   cairn-s3-tool [OPTIONS] URL get-to KEY FILE          (get_to_fd)
 *   cairn-s3-tool [OPTIONS] URL head KEY                 (prints the size)
 *   cairn-s3-tool [OPTIONS] URL list [PREFIX]            ("KEY SIZE" lines)
 *   cairn-s3-tool [OPTIONS] URL delete KEY...
 *   cairn-s3-tool [OPTIONS] URL batch-put PREFIX FILE... (one batch; key PREFIX/basename)
 *   cairn-s3-tool [OPTIONS] URL batch-get DIR KEY...     (one batch; DIR/basename)
 *
 * Options: --endpoint URL --region R --profile P --concurrency N
 * --part-size N --threshold N --retries N --timeout S --path-style
 * --virtual-host --stats (print "sent N received M" on stderr at the end).
 * Sizes take K, M and G suffixes. Exit 0 on success, 1 on failure, 2 on
 * usage errors, 3 when the object is not found.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/common.h"
#include "remote/backend.h"
#include "util/fs.h"

static int usage(void)
{
    fprintf(stderr,
            "usage: cairn-s3-tool [OPTIONS] URL put|put-range|put-buf|get|get-to|head|"
            "list|delete|batch-put|batch-get ARGS...\n");
    return 2;
}

static int parse_size(uint64_t *out, const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    switch (*end) {
    case 'K':
        v <<= 10;
        end++;
        break;
    case 'M':
        v <<= 20;
        end++;
        break;
    case 'G':
        v <<= 30;
        end++;
        break;
    default:
        break;
    }
    if (*end)
        return -1;
    *out = v;
    return 0;
}

static int stdout_sink(void *payload, const void *data, size_t len)
{
    (void)payload;
    return cairn_fs_write_all(1, data, len);
}

static int print_entry(void *payload, const char *key, uint64_t size)
{
    (void)payload;
    printf("%s %llu\n", key, (unsigned long long)size);
    return 0;
}

static int open_in(int *fd, uint64_t *size, const char *path)
{
    struct stat st;
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0 || fstat(*fd, &st) < 0)
        return cairn_error_set_errno(CAIRN_ERROR, "cannot open '%s'", path);
    *size = (uint64_t)st.st_size;
    return 0;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static int run(struct cairn_remote *r, const char *cmd, int argc, char **argv)
{
    int error = 0, fd = -1;
    uint64_t size = 0, off = 0, len = CAIRN_REMOTE_TO_END;

    if (strcmp(cmd, "put") == 0 && argc == 2) {
        if ((error = open_in(&fd, &size, argv[1])) == 0)
            error = cairn_remote_put_file(r, argv[0], fd, 0, size);
    } else if (strcmp(cmd, "put-range") == 0 && argc == 4) {
        if (parse_size(&off, argv[2]) < 0 || parse_size(&len, argv[3]) < 0)
            return usage();
        if ((error = open_in(&fd, &size, argv[1])) == 0)
            error = cairn_remote_put_file(r, argv[0], fd, off, len);
    } else if (strcmp(cmd, "put-buf") == 0 && argc == 2) {
        error = cairn_remote_put_buf(r, argv[0], argv[1], strlen(argv[1]));
    } else if (strcmp(cmd, "get") == 0 && (argc == 1 || argc == 3)) {
        if (argc == 3 && (parse_size(&off, argv[1]) < 0 || parse_size(&len, argv[2]) < 0))
            return usage();
        error = cairn_remote_get_range(r, argv[0], off, len, stdout_sink, NULL);
    } else if (strcmp(cmd, "get-to") == 0 && argc == 2) {
        fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
            error = cairn_error_set_errno(CAIRN_ERROR, "cannot create '%s'", argv[1]);
        else
            error = cairn_remote_get_to_fd(r, argv[0], 0, CAIRN_REMOTE_TO_END, fd, 0);
    } else if (strcmp(cmd, "head") == 0 && argc == 1) {
        if ((error = cairn_remote_head(r, &size, argv[0])) == 0)
            printf("%llu\n", (unsigned long long)size);
    } else if (strcmp(cmd, "list") == 0 && argc <= 1) {
        error = cairn_remote_list(r, argc ? argv[0] : "", print_entry, NULL);
    } else if (strcmp(cmd, "delete") == 0 && argc >= 1) {
        for (int i = 0; i < argc && error == 0; i++)
            error = cairn_remote_delete(r, argv[i]);
    } else if ((strcmp(cmd, "batch-put") == 0 || strcmp(cmd, "batch-get") == 0) && argc >= 2) {
        int put = cmd[6] == 'p';
        size_t n = (size_t)argc - 1;
        struct cairn_remote_xfer *x = calloc(n, sizeof(*x));
        char **keys = calloc(n, sizeof(*keys));
        if (!x || !keys) {
            free(x);
            free(keys);
            return cairn_error_set(CAIRN_ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < n && error == 0; i++) {
            const char *arg = argv[i + 1];
            size_t klen = strlen(argv[0]) + strlen(arg) + 2;
            x[i].fd = -1;
            if (put) {
                if (!(keys[i] = malloc(klen)))
                    error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
                else {
                    snprintf(keys[i], klen, "%s/%s", argv[0], base_name(arg));
                    x[i].op = CAIRN_REMOTE_PUT_FILE;
                    x[i].key = keys[i];
                    error = open_in(&x[i].fd, &x[i].len, arg);
                }
            } else {
                if (!(keys[i] = malloc(klen)))
                    error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
                else {
                    snprintf(keys[i], klen, "%s/%s", argv[0], base_name(arg));
                    x[i].op = CAIRN_REMOTE_GET_FD;
                    x[i].key = arg;
                    x[i].len = CAIRN_REMOTE_TO_END;
                    x[i].fd = open(keys[i], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                    if (x[i].fd < 0)
                        error = cairn_error_set_errno(CAIRN_ERROR, "cannot create '%s'", keys[i]);
                }
            }
        }
        if (error == 0)
            error = cairn_remote_batch(r, x, n);
        for (size_t i = 0; i < n; i++) {
            if (x[i].result < 0)
                fprintf(stderr, "cairn-s3-tool: %s: %s\n", x[i].key, x[i].error);
            if (x[i].fd >= 0)
                close(x[i].fd);
            free(keys[i]);
        }
        free(x);
        free(keys);
    } else {
        return usage();
    }
    if (fd >= 0)
        close(fd);
    return error;
}

int main(int argc, char **argv)
{
    struct cairn_remote_opts o = { 0 };
    struct cairn_remote *r = NULL;
    int i, stats = 0, error;
    uint64_t v;

    for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(opt, "--stats") == 0) {
            stats = 1;
        } else if (strcmp(opt, "--path-style") == 0) {
            o.path_style = 1;
        } else if (strcmp(opt, "--virtual-host") == 0) {
            o.path_style = -1;
        } else if (!val) {
            return usage();
        } else if (strcmp(opt, "--endpoint") == 0) {
            o.endpoint = val, i++;
        } else if (strcmp(opt, "--region") == 0) {
            o.region = val, i++;
        } else if (strcmp(opt, "--profile") == 0) {
            o.profile = val, i++;
        } else if (parse_size(&v, val) < 0) {
            return usage();
        } else if (strcmp(opt, "--concurrency") == 0) {
            o.concurrency = (int)v, i++;
        } else if (strcmp(opt, "--part-size") == 0) {
            o.part_size = v, i++;
        } else if (strcmp(opt, "--threshold") == 0) {
            o.multipart_threshold = v, i++;
        } else if (strcmp(opt, "--retries") == 0) {
            o.max_retries = v ? (int)v : -1, i++;
        } else if (strcmp(opt, "--timeout") == 0) {
            o.timeout_s = (long)v, i++;
        } else {
            return usage();
        }
    }
    if (argc - i < 2)
        return usage();
    if ((error = cairn_remote_open(&r, argv[i], &o)) == 0)
        error = run(r, argv[i + 1], argc - i - 2, argv + i + 2);
    if (error == 2) /* usage() */
        goto done;
    if (error < 0)
        fprintf(stderr, "cairn-s3-tool: %s\n", cairn_error_last());
    if (stats && r) {
        uint64_t sent, received;
        cairn_remote_stats(r, &sent, &received);
        fprintf(stderr, "sent %llu received %llu\n", (unsigned long long)sent,
                (unsigned long long)received);
    }
    error = error == CAIRN_ENOTFOUND ? 3 : error < 0 ? 1 : 0;
done:
    cairn_remote_free(r);
    fflush(stdout);
    return error;
}
