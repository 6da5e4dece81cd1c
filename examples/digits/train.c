/*
 * cairn-digits-train: a small, deterministic multilayer-perceptron trainer
 * for the UCI handwritten digits (8x8 images, 10 classes), so the examples
 * and end-to-end tests have real models to version, gate, quantise and
 * serve. Plain C on purpose: no BLAS, one thread, a fixed order of every
 * floating-point operation, so a seed gives the same bytes on every run.
 *
 * Input: CSV files with a header and 65 integer columns, p0..p63 (pixel
 * intensity 0..16) then label (0..9), as fetch-data.sh and split.sh write
 * them. Training: ReLU hidden layers, softmax output, cross-entropy loss,
 * mini-batch SGD with He initialisation and a seeded shuffle per epoch.
 * `--corrupt-labels F` replaces round(F * rows) training labels by a wrong
 * class drawn at random, to make a deliberately bad model for gate and
 * rollback demonstrations.
 *
 * Output in DIR:
 *   model.safetensors  the layout `cairn serve-model` runs (docs/serve-model.md):
 *                      layers.{i}.weight F32 [out, in], layers.{i}.bias F32 [out],
 *                      metadata cairn.arch=mlp, cairn.activation=relu,
 *                      cairn.output=softmax, cairn.classes=0,...,9.
 *                      The network trains on pixels / 16; the 1/16 is folded
 *                      into layers.0.weight so the model takes raw pixels.
 *   metrics.json       {"accuracy", "loss", "train_accuracy", "train_loss",
 *                      "epochs", "test_rows", "train_rows"} (accuracy and loss
 *                      on the test set)
 *   params.json        the flags, as a flat JSON object
 * Each file is written to a temporary name and renamed into place.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NPIX       64
#define NCLASS     10
#define MAX_ROWS   100000
#define MAX_LAYERS 8
#define MAX_WIDTH  4096

struct data {
    float *x; /* rows * NPIX, scaled to [0, 1] */
    int *y;
    size_t rows;
};

struct net {
    int nl;                  /* number of weight layers */
    int dim[MAX_LAYERS + 1]; /* dim[0] = NPIX ... dim[nl] = NCLASS */
    float *w[MAX_LAYERS];    /* [dim[l+1], dim[l]] */
    float *b[MAX_LAYERS];
    float *gw[MAX_LAYERS], *gb[MAX_LAYERS];
    float *act[MAX_LAYERS + 1]; /* activations of one sample */
    float *delta[MAX_LAYERS + 1];
};

struct opts {
    const char *train, *test, *out;
    int hidden[MAX_LAYERS];
    int nhidden;
    int epochs, batch;
    double lr, corrupt;
    uint64_t seed;
};

static const char *prog = "cairn-digits-train";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void usage(int status)
{
    fprintf(status ? stderr : stdout,
            "usage: %s --train FILE --test FILE --out DIR [--hidden N[,N...]] [--epochs N]\n"
            "          [--lr F] [--batch N] [--seed N] [--corrupt-labels F]\n"
            "\n"
            "Train a ReLU MLP on 8x8 digit images (CSV: p0..p63,label) and write\n"
            "DIR/model.safetensors, DIR/metrics.json and DIR/params.json.\n"
            "Defaults: --hidden 32 --epochs 20 --lr 0.1 --batch 32 --seed 1 --corrupt-labels 0\n",
            prog);
    exit(status);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        die("out of memory");
    return p;
}

/* splitmix64: tiny, seedable, the same on every machine. */
static uint64_t rng;
static uint64_t rnext(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static double runif(void) /* [0, 1) */
{
    return (double)(rnext() >> 11) * 0x1.0p-53;
}
static size_t rbelow(size_t n) /* [0, n), without modulo bias worth caring about at these sizes */
{
    return (size_t)(runif() * (double)n);
}
static double rnormal(void)
{
    double u1 = runif(), u2 = runif();
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static long parse_long(const char *s, const char *flag, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi)
        die("%s wants an integer between %ld and %ld, not '%s'", flag, lo, hi, s);
    return v;
}

static double parse_double(const char *s, const char *flag, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !(v >= lo && v <= hi))
        die("%s wants a number between %g and %g, not '%s'", flag, lo, hi, s);
    return v;
}

static void parse_hidden(struct opts *o, const char *s)
{
    char buf[256];
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof(buf))
        die("--hidden wants sizes like 32 or 64,32, not '%s'", s);
    memcpy(buf, s, n + 1);
    o->nhidden = 0;
    for (char *p = buf, *comma;; p = comma + 1) {
        comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (o->nhidden == MAX_LAYERS - 1)
            die("--hidden: at most %d hidden layers", MAX_LAYERS - 1);
        o->hidden[o->nhidden++] = (int)parse_long(p, "--hidden", 1, MAX_WIDTH);
        if (!comma)
            break;
    }
}

static void parse_args(struct opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    o->hidden[0] = 32;
    o->nhidden = 1;
    o->epochs = 20;
    o->batch = 32;
    o->lr = 0.1;
    o->seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            usage(0);
        if (i + 1 >= argc)
            usage(2);
        const char *v = argv[++i];
        if (!strcmp(a, "--train"))
            o->train = v;
        else if (!strcmp(a, "--test"))
            o->test = v;
        else if (!strcmp(a, "--out"))
            o->out = v;
        else if (!strcmp(a, "--hidden"))
            parse_hidden(o, v);
        else if (!strcmp(a, "--epochs"))
            o->epochs = (int)parse_long(v, a, 1, 100000);
        else if (!strcmp(a, "--batch"))
            o->batch = (int)parse_long(v, a, 1, MAX_ROWS);
        else if (!strcmp(a, "--lr"))
            o->lr = parse_double(v, a, 1e-9, 100.0);
        else if (!strcmp(a, "--seed"))
            o->seed = (uint64_t)parse_long(v, a, 0, 0x7fffffffL);
        else if (!strcmp(a, "--corrupt-labels"))
            o->corrupt = parse_double(v, a, 0.0, 1.0);
        else {
            fprintf(stderr, "%s: unknown option '%s'\n", prog, a);
            usage(2);
        }
    }
    if (!o->train || !o->test || !o->out)
        usage(2);
}

/* Read a digits CSV strictly: header, then rows of 64 pixels 0..16 and a label 0..9. */
static void load_csv(struct data *d, const char *path)
{
    char line[1024];
    FILE *f = fopen(path, "r");
    size_t lineno = 0, cap = 0;
    if (!f)
        die("cannot open '%s': %s", path, strerror(errno));
    memset(d, 0, sizeof(*d));
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        size_t n = strlen(line);
        if (n == sizeof(line) - 1 && line[n - 1] != '\n')
            die("'%s' line %zu: too long", path, lineno);
        if (lineno == 1) {
            if (strncmp(line, "p0,", 3))
                die("'%s': header must start with 'p0,'", path);
            continue;
        }
        if (n <= 1)
            continue;
        if (d->rows == MAX_ROWS)
            die("'%s': more than %d rows", path, MAX_ROWS);
        if (d->rows == cap) {
            cap = cap ? cap * 2 : 1024;
            d->x = realloc(d->x, cap * NPIX * sizeof(*d->x));
            d->y = realloc(d->y, cap * sizeof(*d->y));
            if (!d->x || !d->y)
                die("out of memory");
        }
        char *p = line;
        for (int c = 0; c <= NPIX; c++) {
            char *end;
            errno = 0;
            long v = strtol(p, &end, 10);
            int ok = end != p && !errno && v >= 0 && v <= (c < NPIX ? 16 : NCLASS - 1);
            if (c < NPIX)
                ok = ok && *end == ',';
            else
                ok = ok && (*end == '\0' || *end == '\n' || *end == '\r');
            if (!ok)
                die("'%s' line %zu: field %d is not a %s", path, lineno, c + 1,
                    c < NPIX ? "pixel 0..16" : "label 0..9");
            if (c < NPIX)
                d->x[d->rows * NPIX + (size_t)c] = (float)v / 16.0f;
            else
                d->y[d->rows] = (int)v;
            p = end + 1;
        }
        d->rows++;
    }
    if (ferror(f))
        die("cannot read '%s': %s", path, strerror(errno));
    fclose(f);
    if (d->rows == 0)
        die("'%s': no rows", path);
}

static void net_init(struct net *n, const struct opts *o)
{
    memset(n, 0, sizeof(*n));
    n->nl = o->nhidden + 1;
    n->dim[0] = NPIX;
    for (int l = 0; l < o->nhidden; l++)
        n->dim[l + 1] = o->hidden[l];
    n->dim[n->nl] = NCLASS;
    for (int l = 0; l <= n->nl; l++) {
        n->act[l] = xcalloc((size_t)n->dim[l], sizeof(float));
        n->delta[l] = xcalloc((size_t)n->dim[l], sizeof(float));
    }
    for (int l = 0; l < n->nl; l++) {
        size_t in = (size_t)n->dim[l], out = (size_t)n->dim[l + 1];
        double sd = sqrt(2.0 / (double)in); /* He initialisation for ReLU */
        n->w[l] = xcalloc(in * out, sizeof(float));
        n->gw[l] = xcalloc(in * out, sizeof(float));
        n->b[l] = xcalloc(out, sizeof(float));
        n->gb[l] = xcalloc(out, sizeof(float));
        for (size_t i = 0; i < in * out; i++)
            n->w[l][i] = (float)(rnormal() * sd);
    }
}

/* Forward one sample; returns the softmax probabilities (n->act[nl]). */
static const float *forward(struct net *n, const float *x)
{
    memcpy(n->act[0], x, NPIX * sizeof(float));
    for (int l = 0; l < n->nl; l++) {
        int in = n->dim[l], out = n->dim[l + 1];
        const float *a = n->act[l];
        float *z = n->act[l + 1];
        for (int o = 0; o < out; o++) {
            const float *wr = n->w[l] + (size_t)o * (size_t)in;
            float s = n->b[l][o];
            for (int i = 0; i < in; i++)
                s += wr[i] * a[i];
            z[o] = (l + 1 < n->nl && s < 0.0f) ? 0.0f : s;
        }
    }
    float *z = n->act[n->nl], m = z[0], sum = 0.0f;
    for (int c = 1; c < NCLASS; c++)
        if (z[c] > m)
            m = z[c];
    for (int c = 0; c < NCLASS; c++) {
        z[c] = expf(z[c] - m);
        sum += z[c];
    }
    for (int c = 0; c < NCLASS; c++)
        z[c] /= sum;
    return z;
}

static int argmax(const float *p)
{
    int best = 0;
    for (int c = 1; c < NCLASS; c++)
        if (p[c] > p[best])
            best = c;
    return best;
}

/* Accumulate the gradient of the cross-entropy of one sample (after forward()). */
static void backward(struct net *n, int label)
{
    float *d = n->delta[n->nl];
    for (int c = 0; c < NCLASS; c++)
        d[c] = n->act[n->nl][c] - (c == label ? 1.0f : 0.0f);
    for (int l = n->nl - 1; l >= 0; l--) {
        int in = n->dim[l], out = n->dim[l + 1];
        const float *a = n->act[l], *dl = n->delta[l + 1];
        float *dprev = n->delta[l];
        for (int o = 0; o < out; o++) {
            float *g = n->gw[l] + (size_t)o * (size_t)in;
            for (int i = 0; i < in; i++)
                g[i] += dl[o] * a[i];
            n->gb[l][o] += dl[o];
        }
        if (l == 0)
            break;
        for (int i = 0; i < in; i++) {
            float s = 0.0f;
            if (a[i] > 0.0f) /* ReLU' */
                for (int o = 0; o < out; o++)
                    s += n->w[l][(size_t)o * (size_t)in + (size_t)i] * dl[o];
            dprev[i] = s;
        }
    }
}

static void step(struct net *n, float lr_over_batch)
{
    for (int l = 0; l < n->nl; l++) {
        size_t in = (size_t)n->dim[l], out = (size_t)n->dim[l + 1];
        for (size_t i = 0; i < in * out; i++) {
            n->w[l][i] -= lr_over_batch * n->gw[l][i];
            n->gw[l][i] = 0.0f;
        }
        for (size_t o = 0; o < out; o++) {
            n->b[l][o] -= lr_over_batch * n->gb[l][o];
            n->gb[l][o] = 0.0f;
        }
    }
}

static void evaluate(struct net *n, const struct data *d, double *acc, double *loss)
{
    size_t right = 0;
    double total = 0.0;
    for (size_t r = 0; r < d->rows; r++) {
        const float *p = forward(n, d->x + r * NPIX);
        right += argmax(p) == d->y[r];
        total += -log(fmax((double)p[d->y[r]], 1e-12));
    }
    *acc = (double)right / (double)d->rows;
    *loss = total / (double)d->rows;
}

/* Replace round(f * rows) labels, chosen without repetition, by a different random class. */
static size_t corrupt_labels(struct data *d, double f)
{
    size_t k = (size_t)floor(f * (double)d->rows + 0.5), *idx = xcalloc(d->rows, sizeof(size_t));
    for (size_t i = 0; i < d->rows; i++)
        idx[i] = i;
    for (size_t i = 0; i < k; i++) {
        size_t j = i + rbelow(d->rows - i), t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
        int wrong = (int)rbelow(NCLASS - 1);
        d->y[idx[i]] = wrong >= d->y[idx[i]] ? wrong + 1 : wrong;
    }
    free(idx);
    return k;
}

static void path_in(char *out, size_t len, const char *dir, const char *name)
{
    if ((size_t)snprintf(out, len, "%s/%s", dir, name) >= len)
        die("path too long: '%s/%s'", dir, name);
}

/* Write `len` bytes to DIR/NAME through a temporary file and rename. */
static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[4096], tmp[4200];
    path_in(path, sizeof(path), dir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        die("cannot create '%s': %s", tmp, strerror(errno));
    if (fwrite(data, 1, len, f) != len || fflush(f) || fsync(fileno(f)) || fclose(f))
        die("cannot write '%s': %s", tmp, strerror(errno));
    if (rename(tmp, path))
        die("cannot rename '%s': %s", tmp, strerror(errno));
}

/* A growable string for the small text files this program writes. */
struct sbuf {
    char *p;
    size_t len, cap;
};

static void sb_add(struct sbuf *s, const void *data, size_t n)
{
    if (s->len + n + 1 > s->cap) {
        while (s->len + n + 1 > s->cap)
            s->cap = s->cap ? s->cap * 2 : 4096;
        if (!(s->p = realloc(s->p, s->cap)))
            die("out of memory");
    }
    memcpy(s->p + s->len, data, n);
    s->len += n;
    s->p[s->len] = '\0';
}

static void sb_printf(struct sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *s, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        die("internal: formatted text too long");
    sb_add(s, tmp, (size_t)n);
}

static void put_f32le(struct sbuf *s, float v)
{
    uint32_t u;
    unsigned char b[4];
    memcpy(&u, &v, sizeof(u));
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(u >> (8 * i));
    sb_add(s, b, 4);
}

/*
 * safetensors: 8-byte little-endian header length, a JSON header padded with
 * spaces to a multiple of 8, then the tensors back to back in header order.
 */
static void write_model(const struct net *n, const char *dir)
{
    struct sbuf h = { 0 }, file = { 0 };
    size_t off = 0;
    sb_printf(&h,
              "{\"__metadata__\":{\"cairn.arch\":\"mlp\",\"cairn.activation\":\"relu\","
              "\"cairn.output\":\"softmax\",\"cairn.classes\":\"0,1,2,3,4,5,6,7,8,9\"}");
    for (int l = 0; l < n->nl; l++) {
        size_t in = (size_t)n->dim[l], out = (size_t)n->dim[l + 1];
        sb_printf(&h,
                  ",\"layers.%d.weight\":{\"dtype\":\"F32\",\"shape\":[%zu,%zu],"
                  "\"data_offsets\":[%zu,%zu]}",
                  l, out, in, off, off + 4 * in * out);
        off += 4 * in * out;
        sb_printf(&h,
                  ",\"layers.%d.bias\":{\"dtype\":\"F32\",\"shape\":[%zu],"
                  "\"data_offsets\":[%zu,%zu]}",
                  l, out, off, off + 4 * out);
        off += 4 * out;
    }
    sb_add(&h, "}", 1);
    while (h.len % 8)
        sb_add(&h, " ", 1);
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    sb_add(&file, len8, 8);
    sb_add(&file, h.p, h.len);
    for (int l = 0; l < n->nl; l++) {
        size_t in = (size_t)n->dim[l], out = (size_t)n->dim[l + 1];
        /* Training saw pixels / 16: fold that into the first layer so the model takes raw pixels.
         */
        float k = l == 0 ? 1.0f / 16.0f : 1.0f;
        for (size_t i = 0; i < in * out; i++)
            put_f32le(&file, n->w[l][i] * k);
        for (size_t o = 0; o < out; o++)
            put_f32le(&file, n->b[l][o]);
    }
    write_file(dir, "model.safetensors", file.p, file.len);
    free(h.p);
    free(file.p);
}

int main(int argc, char **argv)
{
    struct opts o;
    struct data train, test;
    struct net n;
    double train_acc = 0, train_loss = 0, acc = 0, loss = 0;

    parse_args(&o, argc, argv);
    load_csv(&train, o.train);
    load_csv(&test, o.test);
    if (mkdir(o.out, 0777) < 0 && errno != EEXIST)
        die("cannot create '%s': %s", o.out, strerror(errno));

    rng = o.seed * 0x2545f4914f6cdd1dULL + 1;
    size_t corrupted = o.corrupt > 0 ? corrupt_labels(&train, o.corrupt) : 0;
    net_init(&n, &o);

    size_t *order = xcalloc(train.rows, sizeof(size_t));
    for (size_t i = 0; i < train.rows; i++)
        order[i] = i;
    for (int e = 0; e < o.epochs; e++) {
        for (size_t i = train.rows - 1; i > 0; i--) {
            size_t j = rbelow(i + 1), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (size_t s = 0; s < train.rows; s += (size_t)o.batch) {
            size_t end = s + (size_t)o.batch < train.rows ? s + (size_t)o.batch : train.rows;
            for (size_t r = s; r < end; r++) {
                forward(&n, train.x + order[r] * NPIX);
                backward(&n, train.y[order[r]]);
            }
            step(&n, (float)(o.lr / (double)(end - s)));
        }
        evaluate(&n, &train, &train_acc, &train_loss);
        fprintf(stderr, "epoch %d/%d: train loss %.4f accuracy %.4f\n", e + 1, o.epochs, train_loss,
                train_acc);
    }
    evaluate(&n, &test, &acc, &loss);

    write_model(&n, o.out);
    struct sbuf m = { 0 }, p = { 0 };
    sb_printf(&m,
              "{\n  \"accuracy\": %.6f,\n  \"loss\": %.6f,\n  \"train_accuracy\": %.6f,\n"
              "  \"train_loss\": %.6f,\n  \"epochs\": %d,\n  \"train_rows\": %zu,\n"
              "  \"test_rows\": %zu\n}\n",
              acc, loss, train_acc, train_loss, o.epochs, train.rows, test.rows);
    write_file(o.out, "metrics.json", m.p, m.len);
    sb_printf(&p, "{\n  \"hidden\": \"");
    for (int l = 0; l < o.nhidden; l++)
        sb_printf(&p, "%s%d", l ? "," : "", o.hidden[l]);
    sb_printf(&p,
              "\",\n  \"epochs\": %d,\n  \"lr\": %g,\n  \"batch\": %d,\n  \"seed\": %llu,\n"
              "  \"corrupt_labels\": %g,\n  \"corrupted_rows\": %zu\n}\n",
              o.epochs, o.lr, o.batch, (unsigned long long)o.seed, o.corrupt, corrupted);
    write_file(o.out, "params.json", p.p, p.len);
    printf("test accuracy %.4f, loss %.4f (train accuracy %.4f); wrote %s/model.safetensors\n", acc,
           loss, train_acc, o.out);

    free(m.p);
    free(p.p);
    free(order);
    for (int l = 0; l < n.nl; l++) {
        free(n.w[l]);
        free(n.b[l]);
        free(n.gw[l]);
        free(n.gb[l]);
    }
    for (int l = 0; l <= n.nl; l++) {
        free(n.act[l]);
        free(n.delta[l]);
    }
    free(train.x);
    free(train.y);
    free(test.x);
    free(test.y);
    return 0;
}
