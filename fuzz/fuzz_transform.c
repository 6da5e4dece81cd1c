/*
 * Fuzz target for the model transforms (lib/model/transform.c): the first
 * byte picks the operation (fp16, bf16, int8, unstructured or structured
 * pruning at a few sparsities), the rest is a safetensors or GGUF file. The
 * file is handed over through a memfd, the output goes to a private
 * temporary directory removed at exit. Whatever the bytes, the call must
 * return cleanly; when it succeeds, the output must parse in the input's
 * format (GGUF in, GGUF out) and its report must add up. A broken invariant
 * traps; nothing is printed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cairn/model.h"
#include "store/gguf.h"
#include "store/layout.h"
#include "store/safetensors.h"
#include "util/buf.h"
#include "util/fs.h"

static char dir[64];
static char dst[96];

static void cleanup(void)
{
    if (dir[0])
        cairn_fs_rm_rf(dir);
}

static int setup(void)
{
    if (dir[0])
        return 0;
    snprintf(dir, sizeof(dir), "/tmp/cairn-fuzz-transform-XXXXXX");
    if (!mkdtemp(dir)) {
        dir[0] = '\0';
        return -1;
    }
    snprintf(dst, sizeof(dst), "%s/out.safetensors", dir);
    atexit(cleanup);
    return 0;
}

static void check_output(const struct cairn_transform_report *r, int gguf)
{
    struct cairn_buf file = CAIRN_BUF_INIT;
    struct cairn_tensor_table t;
    uint64_t before = 0, after = 0;

    if (cairn_fs_read_file(&file, dst, (size_t)64 << 20) < 0)
        __builtin_trap();
    if (file.len != r->file_bytes_after)
        __builtin_trap();
    if (gguf ? cairn_gguf_parse(&t, file.ptr, file.len, file.len) != 0
             : cairn_safetensors_parse(&t, file.ptr, file.len, file.len) < 0)
        __builtin_trap();
    for (size_t i = 0; i < r->count; i++) {
        before += r->tensors[i].bytes_before;
        after += r->tensors[i].bytes_after;
        if (r->tensors[i].zeros_after < r->tensors[i].zeros_before)
            __builtin_trap();
    }
    if (before != r->data_bytes_before || after != r->data_bytes_after || r->changed > r->count)
        __builtin_trap();
    cairn_tensor_table_release(&t);
    cairn_buf_release(&file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const sparsity[] = { "0", "0.3", "0.5", "1" };
    struct cairn_transform_opts o;
    struct cairn_transform_report r;
    char src[64];
    int fd;

    if (size < 1 || setup() < 0)
        return 0;
    unsigned op = data[0] % 11;
    if (op < 3)
        cairn_transform_opts_quantize(&o, op == 0 ? "fp16" : op == 1 ? "bf16" : "int8");
    else
        cairn_transform_opts_prune(&o, sparsity[(op - 3) % 4], op >= 7);

    if ((fd = memfd_create("fuzz-transform", MFD_CLOEXEC)) < 0)
        return 0;
    if (cairn_fs_write_all(fd, data + 1, size - 1) == 0) {
        snprintf(src, sizeof(src), "/proc/self/fd/%d", fd);
        if (cairn_transform_file(&r, src, dst, &o) == 0)
            check_output(&r, size >= 5 && !memcmp(data + 1, "GGUF", 4));
        cairn_transform_report_release(&r);
    }
    close(fd);
    return 0;
}
