/*
 * tfjs2st: convert a TensorFlow.js model (model.json plus its .bin weight
 * shards) into one safetensors file, for bench/real_weights.sh (scenario S3:
 * real trained weights).
 *
 *   tfjs2st MODEL.json OUT.safetensors
 *
 * The weightsManifest of model.json lists groups of weights; each group's
 * shards (paths relative to model.json) are concatenated and hold the
 * group's weights back to back, in order. A weight is stored as its own
 * dtype (float32 F32, int32 I32, bool BOOL) unless it carries a
 * `quantization` entry, in which case the bytes are the quantised ones
 * (float16 F16, uint8 U8, uint16 U16) and are written as such: the
 * benchmark measures how well the bytes in the package compress, not the
 * dequantised floats. String weights have no fixed size and are skipped.
 * Tensors keep the manifest's order; the safetensors header is padded with
 * spaces to an 8-byte boundary as the usual writers do.
 *
 * A benchmark helper, not part of cairn: it trusts its input only as far as
 * it checks sizes (shards must hold exactly what the manifest says).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

struct tensor {
    const char *name;
    const char *dtype; /* safetensors spelling */
    json_t *shape;
    uint64_t bytes;
};

static int fail(const char *what, const char *subject)
{
    fprintf(stderr, "tfjs2st: %s '%s'%s%s\n", what, subject, errno ? ": " : "",
            errno ? strerror(errno) : "");
    return 1;
}

/* dtype of a manifest weight and its element size; NULL for unsupported ones. */
static const char *map_dtype(json_t *w, unsigned *size)
{
    json_t *q = json_object_get(w, "quantization");
    const char *dt = json_string_value(json_object_get(q ? q : w, "dtype"));

    if (!dt)
        return NULL;
    if (!strcmp(dt, "float32"))
        return *size = 4, "F32";
    if (!strcmp(dt, "int32"))
        return *size = 4, "I32";
    if (!strcmp(dt, "float16"))
        return *size = 2, "F16";
    if (!strcmp(dt, "uint16"))
        return *size = 2, "U16";
    if (!strcmp(dt, "uint8"))
        return *size = 1, "U8";
    if (!strcmp(dt, "bool"))
        return *size = 1, "BOOL";
    return NULL;
}

/* Append the shards of one group to `f`'s data file, returning bytes written. */
static int copy_shards(FILE *out, const char *dir, json_t *paths, uint64_t *written)
{
    char buf[1 << 16], path[4096];
    size_t i;
    json_t *p;

    *written = 0;
    json_array_foreach(paths, i, p)
    {
        FILE *in;
        size_t n;
        if (!json_is_string(p))
            return fail("bad shard path in", dir);
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, json_string_value(p)) >=
            sizeof(path))
            return fail("shard path too long in", dir);
        if (!(in = fopen(path, "rb")))
            return fail("cannot open", path);
        while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
            if (fwrite(buf, 1, n, out) != n) {
                fclose(in);
                return fail("cannot write", "output");
            }
            *written += n;
        }
        fclose(in);
    }
    return 0;
}

int main(int argc, char **argv)
{
    json_t *root, *manifest, *group;
    json_error_t jerr;
    struct tensor *t = NULL;
    size_t nt = 0, cap = 0, gi;
    char dir[4096], *slash;
    FILE *data, *out;
    uint64_t off = 0;
    char *hdr;
    size_t hlen;
    json_t *h;

    if (argc != 3) {
        fprintf(stderr, "usage: tfjs2st MODEL.json OUT.safetensors\n");
        return 2;
    }
    snprintf(dir, sizeof(dir), "%s", argv[1]);
    slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    if (!(root = json_load_file(argv[1], 0, &jerr))) {
        errno = 0;
        return fail(jerr.text, argv[1]);
    }
    manifest = json_object_get(root, "weightsManifest");
    if (!json_is_array(manifest)) {
        errno = 0;
        return fail("no weightsManifest in", argv[1]);
    }
    /* Weight bytes go to a temp file first; the header needs every offset. */
    if (!(data = tmpfile()))
        return fail("cannot create a temp file for", argv[2]);
    h = json_object();
    json_array_foreach(manifest, gi, group)
    {
        json_t *weights = json_object_get(group, "weights"), *w;
        uint64_t got, want = 0;
        size_t wi;

        if (copy_shards(data, dir, json_object_get(group, "paths"), &got))
            return 1;
        json_array_foreach(weights, wi, w)
        {
            json_t *shape = json_object_get(w, "shape"), *d;
            const char *name = json_string_value(json_object_get(w, "name"));
            uint64_t elems = 1;
            unsigned size = 0;
            const char *dt = map_dtype(w, &size);
            size_t k;
            json_array_foreach(shape, k, d) elems *= (uint64_t)json_integer_value(d);
            if (!name || !json_is_array(shape) || !dt) {
                errno = 0;
                return fail("unsupported weight in", argv[1]);
            }
            if (nt == cap) {
                cap = cap ? 2 * cap : 64;
                if (!(t = realloc(t, cap * sizeof(*t))))
                    return fail("out of memory for", argv[1]);
            }
            t[nt].name = name;
            t[nt].dtype = dt;
            t[nt].shape = shape;
            t[nt].bytes = elems * size;
            want += t[nt].bytes;
            nt++;
        }
        if (got != want) {
            errno = 0;
            fprintf(stderr, "tfjs2st: shards hold %llu bytes, manifest %llu\n",
                    (unsigned long long)got, (unsigned long long)want);
            return fail("size mismatch in", argv[1]);
        }
    }
    for (size_t i = 0; i < nt; i++) {
        json_t *e = json_object();
        char name[1024];
        int dup = 0;
        if ((size_t)snprintf(name, sizeof(name), "%s", t[i].name) >= sizeof(name))
            return fail("tensor name too long in", argv[1]);
        while (json_object_get(h, name))
            if ((size_t)snprintf(name, sizeof(name), "%s.%d", t[i].name, ++dup) >= sizeof(name))
                return fail("tensor name too long in", argv[1]);
        json_object_set_new(e, "dtype", json_string(t[i].dtype));
        json_object_set(e, "shape", t[i].shape);
        json_object_set_new(e, "data_offsets",
                            json_pack("[II]", (json_int_t)off, (json_int_t)(off + t[i].bytes)));
        json_object_set_new(h, name, e);
        off += t[i].bytes;
    }
    hdr = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!hdr)
        return fail("cannot encode the header of", argv[2]);
    hlen = strlen(hdr);
    if (!(out = fopen(argv[2], "wb")))
        return fail("cannot create", argv[2]);
    {
        size_t pad = (8 - hlen % 8) % 8;
        uint64_t total = hlen + pad;
        unsigned char le[8];
        char buf[1 << 16];
        size_t n;
        for (int i = 0; i < 8; i++)
            le[i] = (unsigned char)(total >> (8 * i));
        if (fwrite(le, 1, 8, out) != 8 || fwrite(hdr, 1, hlen, out) != hlen ||
            fwrite("        ", 1, pad, out) != pad)
            return fail("cannot write", argv[2]);
        rewind(data);
        while ((n = fread(buf, 1, sizeof(buf), data)) > 0)
            if (fwrite(buf, 1, n, out) != n)
                return fail("cannot write", argv[2]);
    }
    if (fclose(out) != 0)
        return fail("cannot write", argv[2]);
    fclose(data);
    free(hdr);
    free(t);
    json_decref(h);
    json_decref(root);
    return 0;
}
