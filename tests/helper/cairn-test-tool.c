/*
 * cairn-test-tool: the helper the shell tests and benchmarks call to make
 * deterministic data and to measure commands, like git's t/helper/test-tool.
 *
 *   gen FILE SIZE SEED                      SIZE pseudo-random bytes
 *   gen-floats FILE COUNT SEED DTYPE        COUNT normal-ish floats (f32|f16|bf16)
 *   gen-safetensors FILE SEED NTENSORS ELEMS DTYPE
 *                                           a valid safetensors file
 *   gen-gguf FILE SEED NTENSORS ROWS COLS DTYPE
 *                                           a valid GGUF v3 file: NTENSORS
 *                                           weights of ROWS x COLS (COLS the
 *                                           contiguous dimension, listed
 *                                           first as GGUF does), an F32 norm
 *                                           of COLS, some metadata
 *   flip FILE OFFSET                        xor the byte at OFFSET with 0xff
 *   rss-exec [-o OUT] [-t TIMES] CMD [ARG]...
 *                                           run CMD, report its peak RSS in KiB
 *                                           (to OUT, else stderr) and, with -t,
 *                                           "WALL CPU" seconds to TIMES: wall
 *                                           from fork to wait4(), CPU its
 *                                           user+sys (and its waited-for
 *                                           children's), so no process the
 *                                           measurement needs is counted
 *   prefault SIZE                           touch SIZE bytes of fresh memory and
 *                                           give them back (see cmd_prefault)
 *
 * Output depends only on the arguments (never on the time or the machine):
 * the same SEED gives the same bytes everywhere, which is what lets a test
 * compare a checkout against a freshly generated file. SIZE and COUNT take
 * K, M and G suffixes (powers of 1024). FILE may be '-' for stdout.
 *
 * Exit status: 0 success, 1 failure (one line on stderr), 2 usage error;
 * rss-exec exits with its command's status (128+N if killed by signal N).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "floatbits.h"

#define BLOCK (1u << 20)

static const char *prog = "cairn-test-tool";

static int fail(const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, arg);
    if (errno)
        fprintf(stderr, ": %s", strerror(errno));
    fputc('\n', stderr);
    return 1;
}

static int usage(const char *msg)
{
    fprintf(stderr, "%s: %s\n", prog, msg);
    fprintf(stderr,
            "usage: %s gen FILE SIZE SEED\n"
            "       %s gen-floats FILE COUNT SEED f32|f16|bf16\n"
            "       %s gen-safetensors FILE SEED NTENSORS ELEMS f32|f16|bf16\n"
            "       %s gen-gguf FILE SEED NTENSORS ROWS COLS f32|f16|bf16\n"
            "       %s flip FILE OFFSET\n"
            "       %s rss-exec [-o OUT] [-t TIMES] CMD [ARG]...\n"
            "       %s prefault SIZE\n",
            prog, prog, prog, prog, prog, prog, prog);
    return 2;
}

/* A number with an optional K/M/G suffix; 0 on success, -1 if malformed. */
static int parse_size(uint64_t *out, const char *s)
{
    char *end;
    unsigned long long v;
    int shift = 0;

    if (!*s || *s == '-')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno || end == s)
        return -1;
    switch (*end) {
    case '\0':
        break;
    case 'k':
    case 'K':
        shift = 10;
        break;
    case 'm':
    case 'M':
        shift = 20;
        break;
    case 'g':
    case 'G':
        shift = 30;
        break;
    default:
        return -1;
    }
    if (*end && end[1])
        return -1;
    if (shift && v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

/* xorshift64* seeded through splitmix64, so nearby seeds give unrelated streams. */
struct rng {
    uint64_t s;
};

static void rng_init(struct rng *r, uint64_t seed)
{
    uint64_t z = seed + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    r->s = z ? z : 0x2545f4914f6cdd1dULL;
}

static uint64_t rng_next(struct rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545f4914f6cdd1dULL;
}

/* Approximately N(0, 1): Irwin-Hall sum of four uniforms, rescaled. No libm. */
static float rng_normal(struct rng *r)
{
    uint64_t x = rng_next(r);
    double sum = 0;
    for (int i = 0; i < 4; i++)
        sum += (double)((x >> (16 * i)) & 0xffff) / 65536.0;
    return (float)((sum - 2.0) * 1.7320508075688772);
}

enum dtype { DT_F32, DT_F16, DT_BF16 };

static int parse_dtype(enum dtype *out, const char *s)
{
    if (!strcasecmp(s, "f32"))
        *out = DT_F32;
    else if (!strcasecmp(s, "f16"))
        *out = DT_F16;
    else if (!strcasecmp(s, "bf16"))
        *out = DT_BF16;
    else
        return -1;
    return 0;
}

static size_t dtype_size(enum dtype t)
{
    return t == DT_F32 ? 4 : 2;
}

static const char *dtype_name(enum dtype t)
{
    return t == DT_F32 ? "F32" : t == DT_F16 ? "F16" : "BF16";
}

static FILE *open_out(const char *path)
{
    FILE *f;
    if (!strcmp(path, "-"))
        return stdout;
    errno = 0;
    if (!(f = fopen(path, "wb")))
        fail("cannot create '%s'", path);
    return f;
}

static int close_out(FILE *f, const char *path)
{
    int bad = ferror(f);
    errno = 0;
    if (f == stdout)
        bad |= fflush(f) != 0;
    else
        bad |= fclose(f) != 0;
    return bad ? fail("cannot write '%s'", path) : 0;
}

/* Write `count` floats of `t` drawn from `r`, as little-endian bytes. */
static int write_floats(FILE *f, struct rng *r, uint64_t count, enum dtype t, float scale)
{
    static unsigned char block[BLOCK];
    size_t per = BLOCK / dtype_size(t);

    while (count) {
        size_t n = count < per ? (size_t)count : per;
        unsigned char *p = block;
        for (size_t i = 0; i < n; i++) {
            float v = rng_normal(r) * scale;
            if (t == DT_F32) {
                uint32_t u = f32_bits(v);
                *p++ = (unsigned char)u;
                *p++ = (unsigned char)(u >> 8);
                *p++ = (unsigned char)(u >> 16);
                *p++ = (unsigned char)(u >> 24);
            } else {
                uint16_t u = t == DT_F16 ? f32_to_f16(v) : f32_to_bf16(v);
                *p++ = (unsigned char)u;
                *p++ = (unsigned char)(u >> 8);
            }
        }
        if (fwrite(block, 1, (size_t)(p - block), f) != (size_t)(p - block))
            return -1;
        count -= n;
    }
    return 0;
}

static int cmd_gen(int argc, char **argv)
{
    static unsigned char block[BLOCK];
    uint64_t size, seed;
    struct rng r;
    FILE *f;

    if (argc != 4)
        return usage("gen takes FILE SIZE SEED");
    if (parse_size(&size, argv[2]) || parse_size(&seed, argv[3]))
        return usage("SIZE and SEED must be non-negative numbers");
    rng_init(&r, seed);
    if (!(f = open_out(argv[1])))
        return 1;
    while (size) {
        size_t n = size < BLOCK ? (size_t)size : BLOCK;
        for (size_t i = 0; i < n; i += 8) {
            uint64_t x = rng_next(&r);
            for (size_t j = 0; j < 8 && i + j < n; j++)
                block[i + j] = (unsigned char)(x >> (8 * j));
        }
        if (fwrite(block, 1, n, f) != n)
            break;
        size -= n;
    }
    return close_out(f, argv[1]);
}

static int cmd_gen_floats(int argc, char **argv)
{
    uint64_t count, seed;
    enum dtype t;
    struct rng r;
    FILE *f;

    if (argc != 5)
        return usage("gen-floats takes FILE COUNT SEED DTYPE");
    if (parse_size(&count, argv[2]) || parse_size(&seed, argv[3]))
        return usage("COUNT and SEED must be non-negative numbers");
    if (parse_dtype(&t, argv[4]))
        return usage("DTYPE must be f32, f16 or bf16");
    rng_init(&r, seed);
    if (!(f = open_out(argv[1])))
        return 1;
    write_floats(f, &r, count, t, 1.0f);
    return close_out(f, argv[1]);
}

/*
 * Shape of a tensor of `elems` elements: [elems / c, c] with c the largest
 * power of two not above sqrt(elems) that divides it, so most sizes give a
 * 2-D weight matrix as real models have; [elems] when c would be 1.
 */
static void tensor_shape(uint64_t *rows, uint64_t *cols, uint64_t elems)
{
    uint64_t c = 1;
    while ((c * 2) * (c * 2) <= elems && elems % (c * 2) == 0)
        c *= 2;
    *rows = c > 1 ? elems / c : elems;
    *cols = c > 1 ? c : 0;
}

static int cmd_gen_safetensors(int argc, char **argv)
{
    uint64_t seed, ntensors, elems, rows, cols, off = 0, bytes, hlen;
    enum dtype t;
    char *header = NULL;
    size_t cap, len = 0;
    unsigned char lenbuf[8];
    FILE *f = NULL;
    int error = 1;

    if (argc != 6)
        return usage("gen-safetensors takes FILE SEED NTENSORS ELEMS DTYPE");
    if (parse_size(&seed, argv[2]) || parse_size(&ntensors, argv[3]) || parse_size(&elems, argv[4]))
        return usage("SEED, NTENSORS and ELEMS must be non-negative numbers");
    if (parse_dtype(&t, argv[5]))
        return usage("DTYPE must be f32, f16 or bf16");
    if (ntensors == 0 || ntensors > 1000000 || elems == 0 || elems > (UINT64_MAX >> 8) / ntensors)
        return usage("NTENSORS must be 1..1000000 and ELEMS at least 1");
    bytes = elems * dtype_size(t);
    tensor_shape(&rows, &cols, elems);

    /* About 120 bytes of JSON per tensor at most; checked as it is written. */
    cap = 64 + (size_t)ntensors * 160;
    if (!(header = malloc(cap)))
        return fail("out of memory for %s", "the header");
    len = (size_t)snprintf(header, cap, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (uint64_t i = 0; i < ntensors; i++) {
        int n;
        if (cols)
            n = snprintf(header + len, cap - len,
                         ",\"layers.%llu.weight\":{\"dtype\":\"%s\",\"shape\":[%llu,%llu],"
                         "\"data_offsets\":[%llu,%llu]}",
                         (unsigned long long)i, dtype_name(t), (unsigned long long)rows,
                         (unsigned long long)cols, (unsigned long long)off,
                         (unsigned long long)(off + bytes));
        else
            n = snprintf(header + len, cap - len,
                         ",\"layers.%llu.weight\":{\"dtype\":\"%s\",\"shape\":[%llu],"
                         "\"data_offsets\":[%llu,%llu]}",
                         (unsigned long long)i, dtype_name(t), (unsigned long long)rows,
                         (unsigned long long)off, (unsigned long long)(off + bytes));
        if (n < 0 || (size_t)n >= cap - len) {
            errno = 0;
            fail("header too large for %s", argv[1]);
            goto done;
        }
        len += (size_t)n;
        off += bytes;
    }
    if (len + 9 > cap) {
        errno = 0;
        fail("header too large for %s", argv[1]);
        goto done;
    }
    header[len++] = '}';
    /* Pad with spaces so the data starts 8-byte aligned, as the writers do. */
    while ((8 + len) % 8)
        header[len++] = ' ';
    hlen = len;
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (unsigned char)(hlen >> (8 * i));

    if (!(f = open_out(argv[1])))
        goto done;
    if (fwrite(lenbuf, 1, 8, f) != 8 || fwrite(header, 1, len, f) != len)
        goto done;
    for (uint64_t i = 0; i < ntensors; i++) {
        struct rng r;
        /* Each tensor its own stream: tensor i is the same in files of any NTENSORS. */
        rng_init(&r, seed * 1000003u + i);
        if (write_floats(f, &r, elems, t, 0.02f) < 0)
            goto done;
    }
    error = 0;
done:
    if (f) {
        FILE *g = f;
        f = NULL;
        if (close_out(g, argv[1]))
            error = 1;
    }
    free(header);
    return error;
}

static int put_u32(FILE *f, uint32_t v)
{
    unsigned char b[4] = { (unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 24) };
    return fwrite(b, 1, 4, f) == 4 ? 0 : -1;
}

static int put_u64(FILE *f, uint64_t v)
{
    return put_u32(f, (uint32_t)v) || put_u32(f, (uint32_t)(v >> 32)) ? -1 : 0;
}

static int put_gstr(FILE *f, const char *s)
{
    size_t n = strlen(s);
    return put_u64(f, n) || fwrite(s, 1, n, f) != n ? -1 : 0;
}

static int pad_to(FILE *f, uint64_t *pos, uint64_t align)
{
    while (*pos % align) {
        if (fputc(0, f) == EOF)
            return -1;
        (*pos)++;
    }
    return 0;
}

/*
 * A GGUF v3 file as llama.cpp writes one (written here independently of
 * libcairn so the reader and the rewriter are checked against it): three
 * metadata pairs (architecture, alignment 32, a string array), then
 * NTENSORS weights "blk.I.ffn_up.weight" of shape [COLS, ROWS] and
 * "output_norm.weight" [COLS] in F32, each aligned to 32.
 */
static int cmd_gen_gguf(int argc, char **argv)
{
    static const char *const tokens[] = { "<s>", "</s>", "hello" };
    uint64_t seed, ntensors, rows, cols, bytes, off = 0, pos;
    enum dtype t;
    FILE *f;
    char name[64];
    int bad = 0;

    if (argc != 7)
        return usage("gen-gguf takes FILE SEED NTENSORS ROWS COLS DTYPE");
    if (parse_size(&seed, argv[2]) || parse_size(&ntensors, argv[3]) ||
        parse_size(&rows, argv[4]) || parse_size(&cols, argv[5]))
        return usage("SEED, NTENSORS, ROWS and COLS must be non-negative numbers");
    if (parse_dtype(&t, argv[6]))
        return usage("DTYPE must be f32, f16 or bf16");
    if (ntensors == 0 || ntensors > 100000 || rows == 0 || cols == 0 || rows > (1u << 20) ||
        cols > (1u << 20))
        return usage("NTENSORS must be 1..100000, ROWS and COLS 1..1M");
    bytes = rows * cols * dtype_size(t);
    if (!(f = open_out(argv[1])))
        return 1;
    bad |=
        fwrite("GGUF", 1, 4, f) != 4 || put_u32(f, 3) || put_u64(f, ntensors + 1) || put_u64(f, 3);
    bad |= put_gstr(f, "general.architecture") || put_u32(f, 8) || put_gstr(f, "llama");
    bad |= put_gstr(f, "general.alignment") || put_u32(f, 4) || put_u32(f, 32);
    bad |= put_gstr(f, "tokenizer.ggml.tokens") || put_u32(f, 9) || put_u32(f, 8) || put_u64(f, 3);
    for (int i = 0; i < 3; i++)
        bad |= put_gstr(f, tokens[i]);
    for (uint64_t i = 0; i <= ntensors; i++) {
        int last = i == ntensors;
        if (last)
            snprintf(name, sizeof(name), "output_norm.weight");
        else
            snprintf(name, sizeof(name), "blk.%llu.ffn_up.weight", (unsigned long long)i);
        bad |= put_gstr(f, name) || put_u32(f, last ? 1 : 2) || put_u64(f, cols);
        if (!last)
            bad |= put_u64(f, rows);
        /* GGML type numbers: F32 0, F16 1, BF16 30. */
        bad |= put_u32(f, last || t == DT_F32 ? 0 : t == DT_F16 ? 1 : 30) || put_u64(f, off);
        off += last ? cols * 4 : bytes;
        off = (off + 31) / 32 * 32;
    }
    pos = (uint64_t)ftell(f);
    bad |= pad_to(f, &pos, 32);
    for (uint64_t i = 0; i <= ntensors && !bad; i++) {
        struct rng r;
        int last = i == ntensors;
        rng_init(&r, seed * 1000003u + i);
        bad |= write_floats(f, &r, last ? cols : rows * cols, last ? DT_F32 : t, 0.02f) < 0;
        pos += last ? cols * 4 : bytes;
        if (!last)
            bad |= pad_to(f, &pos, 32);
    }
    if (bad) {
        fail("cannot write '%s'", argv[1]);
        close_out(f, argv[1]);
        return 1;
    }
    return close_out(f, argv[1]);
}

static int cmd_flip(int argc, char **argv)
{
    uint64_t offset;
    unsigned char c;
    int fd, error = 1;

    if (argc != 3)
        return usage("flip takes FILE OFFSET");
    if (parse_size(&offset, argv[2]) || offset > INT64_MAX)
        return usage("OFFSET must be a non-negative number");
    errno = 0;
    if ((fd = open(argv[1], O_RDWR | O_CLOEXEC)) < 0)
        return fail("cannot open '%s'", argv[1]);
    errno = 0;
    if (pread(fd, &c, 1, (off_t)offset) != 1) {
        fail("cannot read the byte at that offset of '%s'", argv[1]);
        goto done;
    }
    c ^= 0xff;
    if (pwrite(fd, &c, 1, (off_t)offset) != 1) {
        fail("cannot write '%s'", argv[1]);
        goto done;
    }
    error = 0;
done:
    close(fd);
    return error;
}

static double seconds(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static int cmd_rss_exec(int argc, char **argv)
{
    const char *out = NULL, *times = NULL;
    struct timespec t0, t1;
    struct rusage ru;
    int status, i = 1;
    pid_t pid;

    while (i + 1 < argc && (!strcmp(argv[i], "-o") || !strcmp(argv[i], "-t"))) {
        if (!strcmp(argv[i], "-o"))
            out = argv[i + 1];
        else
            times = argv[i + 1];
        i += 2;
    }
    if (i >= argc)
        return usage("rss-exec takes a command");
    fflush(NULL);
    errno = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if ((pid = fork()) < 0)
        return fail("cannot fork for '%s'", argv[i]);
    if (pid == 0) {
        execvp(argv[i], argv + i);
        fail("cannot run '%s'", argv[i]);
        _exit(127);
    }
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR)
            return fail("cannot wait for '%s'", argv[i]);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (times) {
        FILE *f = open_out(times);
        if (!f)
            return 1;
        fprintf(f, "%.6f %.6f\n",
                (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
                seconds(ru.ru_utime) + seconds(ru.ru_stime));
        if (close_out(f, times))
            return 1;
    }
    /* Linux reports ru_maxrss in KiB. */
    if (out) {
        FILE *f = open_out(out);
        if (!f)
            return 1;
        fprintf(f, "%ld\n", ru.ru_maxrss);
        if (close_out(f, out))
            return 1;
    } else {
        fprintf(stderr, "peak_rss_kib=%ld\n", ru.ru_maxrss);
    }
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

/*
 * Touch SIZE bytes of anonymous memory, then unmap it. For benchmarks on
 * virtual machines that hand free guest memory back to the host (Linux
 * free page reporting, page_reporting.page_reporting_order): memory freed
 * a couple of seconds earlier (a dropped page cache, a deleted checkout)
 * faults into the hypervisor on its next use, which made the same b3sum run
 * take 0.45 s or 2.5 s. Touched just before a timed run, the guest's free
 * memory is backed again, whichever tool runs next.
 */
static int cmd_prefault(int argc, char **argv)
{
    uint64_t size;
    void *p;

    if (argc != 2 || parse_size(&size, argv[1]) || size == 0 || size > SIZE_MAX)
        return usage("prefault takes SIZE");
    p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
             -1, 0);
    if (p == MAP_FAILED)
        return fail("cannot map %s bytes of memory", argv[1]);
    munmap(p, (size_t)size);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } cmds[] = {
        { "gen", cmd_gen },
        { "gen-floats", cmd_gen_floats },
        { "gen-safetensors", cmd_gen_safetensors },
        { "gen-gguf", cmd_gen_gguf },
        { "flip", cmd_flip },
        { "rss-exec", cmd_rss_exec },
        { "prefault", cmd_prefault },
    };

    if (argc < 2)
        return usage("no subcommand");
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (!strcmp(argv[1], cmds[i].name))
            return cmds[i].run(argc - 1, argv + 1);
    return usage("unknown subcommand");
}
