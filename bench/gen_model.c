/*
 * gen_model: deterministic llama-shaped safetensors files and the version
 * transforms of the dedup benchmark (bench/dedup.sh, issue #3).
 *
 *   base OUT SEED SIZE              a llama-shaped bf16 model of about SIZE bytes
 *   retrain IN OUT FRACTION SEED    FRACTION of the tensors get new random values
 *   prepend IN OUT SEED             one new tensor first: every other one moves
 *   finetune IN OUT SEED            every weight w becomes w * (1 + 0.01 n)
 *   to-fp16 IN OUT                  every BF16/F32 tensor converted to F16
 *   changed OLD NEW OUT             the bytes of NEW's tensors that are absent
 *                                   from OLD or differ from OLD's, concatenated
 *   to-gguf IN OUT                  IN's tensors, same order and bytes, as GGUF v3
 *
 * Weights are normal (Box-Muller, so with real tails) with a scale drawn per
 * tensor, layer norms are near 1 as in trained models; each tensor has its
 * own random stream, so the output depends only on the arguments, never on
 * the machine or the time. SIZE takes K, M and G suffixes (powers of 1024).
 * Files are streamed in 1 MiB blocks: memory stays small whatever the size.
 *
 * Plain C and libm, independent of libcairn on purpose: the benchmark's data
 * must not be produced by the code it measures. The safetensors reader only
 * accepts the simple files this program and common writers produce (flat
 * JSON of dtype/shape/data_offsets, a __metadata__ object of strings).
 *
 * Exit status: 0 success, 1 failure (one line on stderr), 2 usage error.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/helper/floatbits.h"

#define BLOCK       (1u << 20)
#define MAX_TENSORS 100000
#define MAX_NAME    200
#define MAX_HEADER  (100u << 20)

static const char *prog = "gen_model";

static int fail(const char *fmt, const char *arg)
{
    int e = errno;
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, arg);
    if (e)
        fprintf(stderr, ": %s", strerror(e));
    fputc('\n', stderr);
    return 1;
}

static int usage(const char *msg)
{
    fprintf(stderr, "%s: %s\n", prog, msg);
    fprintf(stderr,
            "usage: %s base OUT SEED SIZE\n"
            "       %s retrain IN OUT FRACTION SEED\n"
            "       %s prepend IN OUT SEED\n"
            "       %s finetune IN OUT SEED\n"
            "       %s to-fp16 IN OUT\n"
            "       %s changed OLD NEW OUT\n"
            "       %s to-gguf IN OUT\n",
            prog, prog, prog, prog, prog, prog, prog);
    return 2;
}

static int parse_u64(uint64_t *out, const char *s)
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
    if (*end == 'k' || *end == 'K')
        shift = 10;
    else if (*end == 'm' || *end == 'M')
        shift = 20;
    else if (*end == 'g' || *end == 'G')
        shift = 30;
    else if (*end)
        return -1;
    if (shift && end[1])
        return -1;
    if (shift && v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

/* ---- random numbers: xorshift64* seeded through splitmix64 ---- */

struct rng {
    uint64_t s;
    int have_spare;
    double spare;
};

static void rng_init(struct rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t z = seed * 0x9e3779b97f4a7c15ULL + stream + 0x632be59bd9b4e019ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    r->s = z ? z : 0x2545f4914f6cdd1dULL;
    r->have_spare = 0;
}

static uint64_t rng_next(struct rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545f4914f6cdd1dULL;
}

/* Uniform in (0, 1): never 0, so log() below is finite. */
static double rng_unit(struct rng *r)
{
    return ((double)(rng_next(r) >> 11) + 0.5) / 9007199254740992.0;
}

/* Standard normal, Box-Muller. */
static double rng_normal(struct rng *r)
{
    double u, v, m;

    if (r->have_spare) {
        r->have_spare = 0;
        return r->spare;
    }
    u = rng_unit(r);
    v = rng_unit(r);
    m = sqrt(-2.0 * log(u));
    r->spare = m * sin(6.283185307179586 * v);
    r->have_spare = 1;
    return m * cos(6.283185307179586 * v);
}

/* ---- floats ---- */

enum dtype { DT_BF16, DT_F16, DT_F32 };

static const char *dtype_name(enum dtype t)
{
    return t == DT_F32 ? "F32" : t == DT_F16 ? "F16" : "BF16";
}

static size_t dtype_size(enum dtype t)
{
    return t == DT_F32 ? 4 : 2;
}

static float load(const unsigned char *p, enum dtype t)
{
    if (t == DT_F32)
        return bits_f32((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                        (uint32_t)p[3] << 24);
    uint16_t u = (uint16_t)(p[0] | p[1] << 8);
    return t == DT_BF16 ? bits_f32((uint32_t)u << 16) : f16_to_f32(u);
}

static void store(unsigned char *p, enum dtype t, float v)
{
    if (t == DT_F32) {
        uint32_t u = f32_bits(v);
        p[0] = (unsigned char)u;
        p[1] = (unsigned char)(u >> 8);
        p[2] = (unsigned char)(u >> 16);
        p[3] = (unsigned char)(u >> 24);
    } else {
        uint16_t u = t == DT_BF16 ? f32_to_bf16(v) : f32_to_f16(v);
        p[0] = (unsigned char)u;
        p[1] = (unsigned char)(u >> 8);
    }
}

/* ---- tensors and what to do with each when writing ---- */

enum op {
    OP_COPY,     /* bytes from the input, unchanged */
    OP_RANDOM,   /* mean + std * normal */
    OP_FINETUNE, /* w * (1 + 0.01 n) */
    OP_CONVERT,  /* input dtype to this tensor's dtype */
};

struct tensor {
    char name[MAX_NAME];
    enum dtype dtype, src_dtype;
    int ndim;
    uint64_t shape[4];
    uint64_t elems;
    uint64_t src_begin, src_end; /* absolute offsets in the input file */
    enum op op;
    double mean, std;
    uint64_t stream; /* random stream of this tensor */
};

struct model {
    struct tensor *t;
    size_t n;
};

static void model_release(struct model *m)
{
    free(m->t);
    m->t = NULL;
    m->n = 0;
}

static struct tensor *model_push(struct model *m)
{
    struct tensor *t;
    if (m->n >= MAX_TENSORS)
        return NULL;
    if (!(t = realloc(m->t, (m->n + 1) * sizeof(*t))))
        return NULL;
    m->t = t;
    t = &m->t[m->n++];
    memset(t, 0, sizeof(*t));
    return t;
}

static void tensor_set(struct tensor *t, const char *name, enum dtype dt, uint64_t rows,
                       uint64_t cols)
{
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->dtype = t->src_dtype = dt;
    t->ndim = cols ? 2 : 1;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->elems = cols ? rows * cols : rows;
}

/* ---- a minimal safetensors header reader ---- */

struct cursor {
    const char *p, *end;
};

static void skip_ws(struct cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

static int expect(struct cursor *c, char ch)
{
    skip_ws(c);
    if (c->p >= c->end || *c->p != ch)
        return -1;
    c->p++;
    return 0;
}

/* A JSON string without escapes other than \" and \\ (names of tensors). */
static int read_string(struct cursor *c, char *out, size_t cap)
{
    size_t n = 0;
    if (expect(c, '"'))
        return -1;
    while (c->p < c->end && *c->p != '"') {
        char ch = *c->p++;
        if (ch == '\\') {
            if (c->p >= c->end || (*c->p != '"' && *c->p != '\\'))
                return -1;
            ch = *c->p++;
        }
        if (n + 1 >= cap)
            return -1;
        out[n++] = ch;
    }
    if (c->p >= c->end)
        return -1;
    c->p++;
    out[n] = '\0';
    return 0;
}

static int read_number(struct cursor *c, uint64_t *out)
{
    uint64_t v = 0;
    skip_ws(c);
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
        return -1;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*c->p++ - '0');
    }
    *out = v;
    return 0;
}

static int read_numbers(struct cursor *c, uint64_t *out, int cap, int *n)
{
    *n = 0;
    if (expect(c, '['))
        return -1;
    skip_ws(c);
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        return 0;
    }
    for (;;) {
        if (*n >= cap || read_number(c, &out[(*n)++]))
            return -1;
        skip_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        return expect(c, ']');
    }
}

/* __metadata__: an object of strings, skipped. */
static int skip_metadata(struct cursor *c)
{
    char buf[4096];
    if (expect(c, '{'))
        return -1;
    skip_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return 0;
    }
    for (;;) {
        if (read_string(c, buf, sizeof(buf)) || expect(c, ':') || read_string(c, buf, sizeof(buf)))
            return -1;
        skip_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        return expect(c, '}');
    }
}

static int read_entry(struct cursor *c, struct tensor *t, uint64_t base)
{
    char key[64], val[16];
    uint64_t offs[2];
    int n, have = 0;

    if (expect(c, '{'))
        return -1;
    for (;;) {
        if (read_string(c, key, sizeof(key)) || expect(c, ':'))
            return -1;
        if (!strcmp(key, "dtype")) {
            if (read_string(c, val, sizeof(val)))
                return -1;
            if (!strcmp(val, "BF16"))
                t->dtype = DT_BF16;
            else if (!strcmp(val, "F16"))
                t->dtype = DT_F16;
            else if (!strcmp(val, "F32"))
                t->dtype = DT_F32;
            else
                return -1;
            have |= 1;
        } else if (!strcmp(key, "shape")) {
            if (read_numbers(c, t->shape, 4, &t->ndim))
                return -1;
            have |= 2;
        } else if (!strcmp(key, "data_offsets")) {
            if (read_numbers(c, offs, 2, &n) || n != 2 || offs[1] < offs[0])
                return -1;
            t->src_begin = base + offs[0];
            t->src_end = base + offs[1];
            have |= 4;
        } else {
            return -1;
        }
        skip_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (expect(c, '}') || have != 7)
            return -1;
        break;
    }
    t->src_dtype = t->dtype;
    t->elems = 1;
    for (int i = 0; i < t->ndim; i++)
        t->elems *= t->shape[i];
    if (t->elems * dtype_size(t->dtype) != t->src_end - t->src_begin)
        return -1;
    return 0;
}

static int by_offset(const void *a, const void *b)
{
    const struct tensor *x = a, *y = b;
    return x->src_begin < y->src_begin ? -1 : x->src_begin > y->src_begin;
}

/* Read IN's tensor list into `m` (sorted by offset, each an OP_COPY of itself). */
static int read_model(struct model *m, FILE **fout, const char *path)
{
    unsigned char lenbuf[8];
    uint64_t hlen = 0;
    char *hdr = NULL;
    struct cursor c;
    FILE *f;
    int error = -1;

    errno = 0;
    if (!(f = fopen(path, "rb"))) {
        fail("cannot open '%s'", path);
        return -1;
    }
    if (fread(lenbuf, 1, 8, f) != 8)
        goto bad;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)lenbuf[i] << (8 * i);
    if (hlen == 0 || hlen > MAX_HEADER || !(hdr = malloc(hlen)))
        goto bad;
    if (fread(hdr, 1, hlen, f) != hlen)
        goto bad;
    c.p = hdr;
    c.end = hdr + hlen;
    if (expect(&c, '{'))
        goto bad;
    for (;;) {
        char name[MAX_NAME];
        struct tensor *t;
        if (read_string(&c, name, sizeof(name)) || expect(&c, ':'))
            goto bad;
        if (!strcmp(name, "__metadata__")) {
            if (skip_metadata(&c))
                goto bad;
        } else {
            if (!(t = model_push(m)))
                goto bad;
            snprintf(t->name, sizeof(t->name), "%s", name);
            if (read_entry(&c, t, 8 + hlen))
                goto bad;
        }
        skip_ws(&c);
        if (c.p < c.end && *c.p == ',') {
            c.p++;
            continue;
        }
        if (expect(&c, '}'))
            goto bad;
        break;
    }
    qsort(m->t, m->n, sizeof(*m->t), by_offset);
    *fout = f;
    f = NULL;
    error = 0;
    goto done;
bad:
    errno = 0;
    fail("'%s' is not a safetensors file this tool reads", path);
done:
    if (f)
        fclose(f);
    free(hdr);
    return error;
}

/* ---- writing ---- */

static int write_header(FILE *f, const struct model *m)
{
    size_t cap = 64 + m->n * (MAX_NAME + 256), len = 0;
    uint64_t off = 0;
    unsigned char lenbuf[8];
    char *h = malloc(cap);
    int n;

    if (!h)
        return -1;
    len = (size_t)snprintf(h, cap, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (size_t i = 0; i < m->n; i++) {
        const struct tensor *t = &m->t[i];
        uint64_t bytes = t->elems * dtype_size(t->dtype);
        n = snprintf(h + len, cap - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name,
                     dtype_name(t->dtype));
        len += (size_t)n;
        for (int d = 0; d < t->ndim; d++) {
            n = snprintf(h + len, cap - len, "%s%llu", d ? "," : "",
                         (unsigned long long)t->shape[d]);
            len += (size_t)n;
        }
        n = snprintf(h + len, cap - len, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                     (unsigned long long)(off + bytes));
        len += (size_t)n;
        off += bytes;
    }
    h[len++] = '}';
    while ((8 + len) % 8)
        h[len++] = ' ';
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (unsigned char)((uint64_t)len >> (8 * i));
    n = fwrite(lenbuf, 1, 8, f) == 8 && fwrite(h, 1, len, f) == len ? 0 : -1;
    free(h);
    return n;
}

/* Write the data of tensor `t`, reading its source from `in` when needed. */
static int write_tensor(FILE *out, FILE *in, const struct tensor *t, uint64_t seed)
{
    static unsigned char src[BLOCK], dst[BLOCK];
    size_t isz = dtype_size(t->src_dtype), osz = dtype_size(t->dtype);
    size_t per = BLOCK / (isz > osz ? isz : osz);
    uint64_t left = t->elems;
    struct rng r;

    rng_init(&r, seed, t->stream);
    if (t->op != OP_RANDOM && fseeko(in, (off_t)t->src_begin, SEEK_SET))
        return -1;
    while (left) {
        size_t n = left < per ? (size_t)left : per;
        if (t->op != OP_RANDOM && fread(src, isz, n, in) != n)
            return -1;
        if (t->op == OP_COPY) {
            if (fwrite(src, isz, n, out) != n)
                return -1;
            left -= n;
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            float v;
            if (t->op == OP_RANDOM)
                v = (float)(t->mean + t->std * rng_normal(&r));
            else if (t->op == OP_FINETUNE)
                v = (float)(load(src + i * isz, t->src_dtype) * (1.0 + 0.01 * rng_normal(&r)));
            else
                v = load(src + i * isz, t->src_dtype);
            store(dst + i * osz, t->dtype, v);
        }
        if (fwrite(dst, osz, n, out) != n)
            return -1;
        left -= n;
    }
    return 0;
}

static int write_model(const char *path, const struct model *m, FILE *in, uint64_t seed)
{
    FILE *f;
    int bad;

    errno = 0;
    if (!(f = fopen(path, "wb")))
        return fail("cannot create '%s'", path);
    bad = write_header(f, m) < 0;
    for (size_t i = 0; !bad && i < m->n; i++)
        bad = write_tensor(f, in, &m->t[i], seed) < 0;
    bad |= ferror(f) != 0;
    bad |= fclose(f) != 0;
    if (in)
        bad |= ferror(in) != 0;
    return bad ? fail("cannot write '%s'", path) : 0;
}

static uint64_t model_bytes(const struct model *m)
{
    uint64_t b = 0;
    for (size_t i = 0; i < m->n; i++)
        b += m->t[i].elems * dtype_size(m->t[i].dtype);
    return b;
}

/* ---- base: the llama shape ---- */

/*
 * Llama layout (TinyLlama's proportions): hidden d, MLP 2.75 d, grouped
 * query attention with k/v of d/8, untied embedding and head. d grows with
 * SIZE (2 GiB gives d 2048 and about 20 layers, like TinyLlama 1.1B); the
 * vocabulary is capped so that embedding + head stay near a quarter of the
 * file at small sizes; the number of layers fills the rest.
 */
static int build_llama(struct model *m, uint64_t size, uint64_t seed)
{
    uint64_t d, ff, kv, vocab, per_layer, layers, head;
    struct rng r;
    char name[MAX_NAME];

    d = size >= (3ULL << 30)      ? 4096
        : size >= (1536ULL << 20) ? 2048
        : size >= (256ULL << 20)  ? 1024
        : size >= (16ULL << 20)   ? 512
                                  : 128;
    ff = d * 11 / 4;
    kv = d / 8;
    vocab = size / (16 * d);
    if (vocab > 32000)
        vocab = 32000;
    vocab = vocab / 64 * 64;
    if (vocab < 64)
        vocab = 64;
    per_layer = 2 * (2 * d * d + 2 * kv * d + 3 * d * ff + 2 * d);
    head = 2 * (2 * vocab * d + d);
    layers = size > head + per_layer ? (size - head) / per_layer : 1;
    if (layers > 1000)
        layers = 1000;

    rng_init(&r, seed, UINT64_MAX);
#define ADD(nm, rows, cols, mu, sd)              \
    do {                                         \
        struct tensor *t_ = model_push(m);       \
        if (!t_)                                 \
            return -1;                           \
        tensor_set(t_, nm, DT_BF16, rows, cols); \
        t_->op = OP_RANDOM;                      \
        t_->mean = mu;                           \
        t_->std = sd;                            \
        t_->stream = m->n;                       \
    } while (0)
    /* Scales: init std 0.02 spread by training, per tensor, over [0.008, 0.05]. */
#define SCALE() (0.008 * exp(1.83 * rng_unit(&r)))
    ADD("model.embed_tokens.weight", vocab, d, 0.0, SCALE());
    for (uint64_t l = 0; l < layers; l++) {
        static const char *attn[] = { "q_proj", "k_proj", "v_proj", "o_proj" };
        static const char *mlp[] = { "gate_proj", "up_proj", "down_proj" };
        snprintf(name, sizeof(name), "model.layers.%llu.input_layernorm.weight",
                 (unsigned long long)l);
        ADD(name, d, 0, 1.0, 0.05);
        for (int i = 0; i < 4; i++) {
            snprintf(name, sizeof(name), "model.layers.%llu.self_attn.%s.weight",
                     (unsigned long long)l, attn[i]);
            ADD(name, (i == 1 || i == 2) ? kv : d, d, 0.0, SCALE());
        }
        snprintf(name, sizeof(name), "model.layers.%llu.post_attention_layernorm.weight",
                 (unsigned long long)l);
        ADD(name, d, 0, 1.0, 0.05);
        for (int i = 0; i < 3; i++) {
            snprintf(name, sizeof(name), "model.layers.%llu.mlp.%s.weight", (unsigned long long)l,
                     mlp[i]);
            ADD(name, i == 2 ? d : ff, i == 2 ? ff : d, 0.0, SCALE());
        }
    }
    ADD("model.norm.weight", d, 0, 1.0, 0.05);
    ADD("lm_head.weight", vocab, d, 0.0, SCALE());
#undef SCALE
#undef ADD
    fprintf(stderr, "%s: llama d=%llu ff=%llu layers=%llu vocab=%llu: %zu tensors, %llu bytes\n",
            prog, (unsigned long long)d, (unsigned long long)ff, (unsigned long long)layers,
            (unsigned long long)vocab, m->n, (unsigned long long)model_bytes(m));
    return 0;
}

static int cmd_base(int argc, char **argv)
{
    struct model m = { 0 };
    uint64_t seed, size;
    int error;

    if (argc != 4)
        return usage("base takes OUT SEED SIZE");
    if (parse_u64(&seed, argv[2]) || parse_u64(&size, argv[3]))
        return usage("SEED and SIZE must be non-negative numbers");
    if (build_llama(&m, size, seed) < 0) {
        model_release(&m);
        errno = 0;
        return fail("cannot lay out a model of %s bytes", argv[3]);
    }
    error = write_model(argv[1], &m, NULL, seed);
    model_release(&m);
    return error;
}

/* Mean and standard deviation of a tensor of the input, for retraining. */
static int tensor_stats(FILE *in, struct tensor *t)
{
    static unsigned char buf[BLOCK];
    size_t sz = dtype_size(t->src_dtype), per = BLOCK / sz;
    uint64_t left = t->elems;
    double s = 0, s2 = 0;

    if (fseeko(in, (off_t)t->src_begin, SEEK_SET))
        return -1;
    while (left) {
        size_t n = left < per ? (size_t)left : per;
        if (fread(buf, sz, n, in) != n)
            return -1;
        for (size_t i = 0; i < n; i++) {
            double v = load(buf + i * sz, t->src_dtype);
            s += v;
            s2 += v * v;
        }
        left -= n;
    }
    t->mean = t->elems ? s / (double)t->elems : 0;
    t->std = t->elems ? sqrt(fmax(s2 / (double)t->elems - t->mean * t->mean, 0)) : 0;
    return 0;
}

static int cmd_retrain(int argc, char **argv)
{
    struct model m = { 0 };
    uint64_t seed, pick, bytes = 0;
    double frac;
    size_t *order = NULL;
    struct rng r;
    FILE *in = NULL;
    char *end;
    int error = 1;

    if (argc != 5)
        return usage("retrain takes IN OUT FRACTION SEED");
    frac = strtod(argv[3], &end);
    if (*end || !(frac >= 0 && frac <= 1))
        return usage("FRACTION must be a number in [0, 1]");
    if (parse_u64(&seed, argv[4]))
        return usage("SEED must be a non-negative number");
    if (read_model(&m, &in, argv[1]) < 0)
        goto done;
    if (!(order = malloc(m.n * sizeof(*order) + 1)))
        goto done;
    /* A seeded shuffle of the tensors; the first FRACTION of them are retrained. */
    for (size_t i = 0; i < m.n; i++) {
        order[i] = i;
        m.t[i].stream = i;
    }
    rng_init(&r, seed, UINT64_MAX);
    for (size_t i = m.n; i > 1; i--) {
        size_t j = (size_t)(rng_next(&r) % i), x = order[i - 1];
        order[i - 1] = order[j];
        order[j] = x;
    }
    pick = (uint64_t)llround(frac * (double)m.n);
    for (uint64_t k = 0; k < pick; k++) {
        struct tensor *t = &m.t[order[k]];
        if (tensor_stats(in, t) < 0) {
            errno = 0;
            fail("cannot read '%s'", argv[1]);
            goto done;
        }
        t->op = OP_RANDOM;
        bytes += t->elems * dtype_size(t->dtype);
    }
    fprintf(stderr, "%s: retrained %llu of %zu tensors, %llu of %llu bytes (%.1f%%)\n", prog,
            (unsigned long long)pick, m.n, (unsigned long long)bytes,
            (unsigned long long)model_bytes(&m), 100.0 * (double)bytes / (double)model_bytes(&m));
    error = write_model(argv[2], &m, in, seed);
done:
    if (in)
        fclose(in);
    free(order);
    model_release(&m);
    return error;
}

static int cmd_prepend(int argc, char **argv)
{
    struct model m = { 0 };
    struct tensor *t;
    uint64_t seed, d = 0;
    FILE *in = NULL;
    int error = 1;

    if (argc != 4)
        return usage("prepend takes IN OUT SEED");
    if (parse_u64(&seed, argv[3]))
        return usage("SEED must be a non-negative number");
    if (read_model(&m, &in, argv[1]) < 0)
        goto done;
    for (size_t i = 0; i < m.n; i++)
        if (m.t[i].ndim == 2 && m.t[i].shape[1] > d)
            d = m.t[i].shape[1];
    if (!(t = model_push(&m)))
        goto done;
    memmove(&m.t[1], &m.t[0], (m.n - 1) * sizeof(*t));
    t = &m.t[0];
    /* 1000 rows: a length unrelated to any chunk or piece size, so all data shifts oddly. */
    tensor_set(t, "model.adapter.weight", m.n > 1 ? m.t[1].dtype : DT_BF16, 1000, d ? d : 1000);
    t->op = OP_RANDOM;
    t->std = 0.02;
    t->stream = UINT64_MAX - 1;
    error = write_model(argv[2], &m, in, seed);
done:
    if (in)
        fclose(in);
    model_release(&m);
    return error;
}

static int cmd_finetune(int argc, char **argv)
{
    struct model m = { 0 };
    uint64_t seed;
    FILE *in = NULL;
    int error = 1;

    if (argc != 4)
        return usage("finetune takes IN OUT SEED");
    if (parse_u64(&seed, argv[3]))
        return usage("SEED must be a non-negative number");
    if (read_model(&m, &in, argv[1]) < 0)
        goto done;
    for (size_t i = 0; i < m.n; i++) {
        m.t[i].op = OP_FINETUNE;
        m.t[i].stream = i;
    }
    error = write_model(argv[2], &m, in, seed);
done:
    if (in)
        fclose(in);
    model_release(&m);
    return error;
}

static int cmd_to_fp16(int argc, char **argv)
{
    struct model m = { 0 };
    FILE *in = NULL;
    int error = 1;

    if (argc != 3)
        return usage("to-fp16 takes IN OUT");
    if (read_model(&m, &in, argv[1]) < 0)
        goto done;
    for (size_t i = 0; i < m.n; i++) {
        if (m.t[i].dtype != DT_F16) {
            m.t[i].op = OP_CONVERT;
            m.t[i].dtype = DT_F16;
        }
    }
    error = write_model(argv[2], &m, in, 0);
done:
    if (in)
        fclose(in);
    model_release(&m);
    return error;
}

/* 1 if the byte ranges differ, 0 if equal, -1 on a read error. */
static int ranges_differ(FILE *a, uint64_t ao, FILE *b, uint64_t bo, uint64_t len)
{
    static unsigned char x[BLOCK], y[BLOCK];
    if (fseeko(a, (off_t)ao, SEEK_SET) || fseeko(b, (off_t)bo, SEEK_SET))
        return -1;
    while (len) {
        size_t n = len < BLOCK ? (size_t)len : BLOCK;
        if (fread(x, 1, n, a) != n || fread(y, 1, n, b) != n)
            return -1;
        if (memcmp(x, y, n))
            return 1;
        len -= n;
    }
    return 0;
}

static int cmd_changed(int argc, char **argv)
{
    static unsigned char buf[BLOCK];
    struct model a = { 0 }, b = { 0 };
    FILE *fa = NULL, *fb = NULL, *out = NULL;
    uint64_t nchanged = 0, bytes = 0;
    int error = 1;

    if (argc != 4)
        return usage("changed takes OLD NEW OUT");
    if (read_model(&a, &fa, argv[1]) < 0 || read_model(&b, &fb, argv[2]) < 0)
        goto done;
    errno = 0;
    if (!(out = fopen(argv[3], "wb"))) {
        fail("cannot create '%s'", argv[3]);
        goto done;
    }
    for (size_t i = 0; i < b.n; i++) {
        const struct tensor *t = &b.t[i], *old = NULL;
        uint64_t len = t->src_end - t->src_begin, left;
        int diff = 1;
        for (size_t j = 0; j < a.n && !old; j++)
            if (!strcmp(a.t[j].name, t->name))
                old = &a.t[j];
        if (old && old->src_end - old->src_begin == len && old->dtype == t->dtype) {
            if ((diff = ranges_differ(fa, old->src_begin, fb, t->src_begin, len)) < 0)
                goto io;
        }
        if (!diff)
            continue;
        nchanged++;
        bytes += len;
        if (fseeko(fb, (off_t)t->src_begin, SEEK_SET))
            goto io;
        for (left = len; left;) {
            size_t n = left < BLOCK ? (size_t)left : BLOCK;
            if (fread(buf, 1, n, fb) != n || fwrite(buf, 1, n, out) != n)
                goto io;
            left -= n;
        }
    }
    printf("%llu %llu\n", (unsigned long long)nchanged, (unsigned long long)bytes);
    error = 0;
    goto done;
io:
    errno = 0;
    fail("cannot compare or write tensors for '%s'", argv[3]);
done:
    if (out && fclose(out) && !error)
        error = fail("cannot write '%s'", argv[3]);
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    model_release(&a);
    model_release(&b);
    return error;
}

/* ---- to-gguf: the same tensors in a GGUF v3 file ---- */

#define GGUF_ALIGN 32

static int put_le(FILE *f, uint64_t v, int bytes)
{
    unsigned char b[8];
    for (int i = 0; i < bytes; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    return fwrite(b, 1, (size_t)bytes, f) == (size_t)bytes ? 0 : -1;
}

static int put_gguf_string(FILE *f, const char *s)
{
    size_t n = strlen(s);
    return put_le(f, n, 8) || fwrite(s, 1, n, f) != n ? -1 : 0;
}

static int put_pad(FILE *f, uint64_t *pos)
{
    static const unsigned char zeros[GGUF_ALIGN];
    size_t pad = (size_t)((GGUF_ALIGN - *pos % GGUF_ALIGN) % GGUF_ALIGN);
    *pos += pad;
    return fwrite(zeros, 1, pad, f) == pad ? 0 : -1;
}

/*
 * GGUF v3 (ggml's docs/gguf.md): magic, version, tensor and kv counts; kv
 * pairs (three here: architecture, name, alignment); per tensor its name,
 * dimensions innermost first, ggml type (F32 0, F16 1, BF16 30) and data
 * offset; then the data, every tensor at a multiple of the alignment.
 */
static int write_gguf(const char *path, const struct model *m, FILE *in)
{
    uint64_t off = 0, pos;
    FILE *f;
    int bad;

    errno = 0;
    if (!(f = fopen(path, "wb")))
        return fail("cannot create '%s'", path);
    bad = fwrite("GGUF", 1, 4, f) != 4 || put_le(f, 3, 4) || put_le(f, m->n, 8) || put_le(f, 3, 8);
    bad = bad || put_gguf_string(f, "general.architecture") || put_le(f, 8, 4) ||
          put_gguf_string(f, "llama");
    bad = bad || put_gguf_string(f, "general.name") || put_le(f, 8, 4) ||
          put_gguf_string(f, "gen_model");
    bad = bad || put_gguf_string(f, "general.alignment") || put_le(f, 4, 4) ||
          put_le(f, GGUF_ALIGN, 4);
    for (size_t i = 0; !bad && i < m->n; i++) {
        const struct tensor *t = &m->t[i];
        int type = t->dtype == DT_F32 ? 0 : t->dtype == DT_F16 ? 1 : 30;
        bad = put_gguf_string(f, t->name) || put_le(f, (uint64_t)t->ndim, 4);
        for (int d = t->ndim; !bad && d-- > 0;)
            bad = put_le(f, t->shape[d], 8);
        bad = bad || put_le(f, (uint64_t)type, 4) || put_le(f, off, 8);
        off += t->elems * dtype_size(t->dtype);
        off += (GGUF_ALIGN - off % GGUF_ALIGN) % GGUF_ALIGN;
    }
    pos = bad ? 0 : (uint64_t)ftello(f);
    bad = bad || put_pad(f, &pos);
    for (size_t i = 0; !bad && i < m->n; i++) {
        bad = write_tensor(f, in, &m->t[i], 0) < 0;
        pos += m->t[i].elems * dtype_size(m->t[i].dtype);
        bad = bad || put_pad(f, &pos);
    }
    bad |= ferror(f) != 0;
    bad |= fclose(f) != 0;
    bad |= ferror(in) != 0;
    return bad ? fail("cannot write '%s'", path) : 0;
}

static int cmd_to_gguf(int argc, char **argv)
{
    struct model m = { 0 };
    FILE *in = NULL;
    int error = 1;

    if (argc != 3)
        return usage("to-gguf takes IN OUT");
    if (read_model(&m, &in, argv[1]) < 0)
        goto done;
    error = write_gguf(argv[2], &m, in);
done:
    if (in)
        fclose(in);
    model_release(&m);
    return error;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } cmds[] = {
        { "base", cmd_base },         { "retrain", cmd_retrain }, { "prepend", cmd_prepend },
        { "finetune", cmd_finetune }, { "to-fp16", cmd_to_fp16 }, { "changed", cmd_changed },
        { "to-gguf", cmd_to_gguf },
    };

    if (argc < 2)
        return usage("no subcommand");
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (!strcmp(argv[1], cmds[i].name))
            return cmds[i].run(argc - 1, argv + 1);
    return usage("unknown subcommand");
}
