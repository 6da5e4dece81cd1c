/*
 * Benchmark helper for the CSV reader (lib/data/csv.c), driven by
 * bench/csv.sh:
 *
 *   csv_bench gen FILE MB SEED   write a deterministic CSV of about MB MiB
 *   csv_bench read FILE          read it with cairn's reader, print
 *                                "rows bytes wall-seconds cpu-seconds"
 *
 * The generated table looks like real training data: an integer id, eight
 * floats, a category label, and a free-text column of which one row in
 * sixteen is quoted (with an embedded comma, quote or newline), so both the
 * fast path and the quoted path are measured.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/csv.h"

static uint64_t rng;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int gen(const char *path, long mb, unsigned long long seed)
{
    static const char *const words[] = { "alpha", "bravo", "charlie", "delta", "echo", "foxtrot" };
    FILE *f = fopen(path, "w");
    unsigned long long want = (unsigned long long)mb << 20, written = 0, id = 0;
    char line[512];

    if (!f) {
        perror(path);
        return 1;
    }
    rng = seed * 2654435761ULL + 88172645463325252ULL;
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    written += (unsigned long long)fprintf(f, "id,f0,f1,f2,f3,f4,f5,f6,f7,label,text\n");
    while (written < want) {
        int n = snprintf(line, sizeof(line), "%llu", id++);
        for (int i = 0; i < 8; i++)
            n += snprintf(line + n, sizeof(line) - (size_t)n, ",%.6f",
                          (double)(next() % 2000000) / 100000.0 - 10.0);
        n += snprintf(line + n, sizeof(line) - (size_t)n, ",%u", (unsigned)(next() % 10));
        uint64_t r = next();
        if (r % 16 == 0)
            n += snprintf(line + n, sizeof(line) - (size_t)n, ",\"%s, \"\"%s\"\"\n%s\"\n",
                          words[r % 6], words[(r >> 8) % 6], words[(r >> 16) % 6]);
        else
            n += snprintf(line + n, sizeof(line) - (size_t)n, ",%s %s\n", words[r % 6],
                          words[(r >> 8) % 6]);
        fwrite(line, 1, (size_t)n, f);
        written += (unsigned long long)n;
    }
    if (fclose(f) != 0) {
        perror(path);
        return 1;
    }
    return 0;
}

static int readbench(const char *path)
{
    struct cairn_csv *c;
    const struct cairn_csv_field *fl;
    size_t n;
    unsigned long long rows = 0, sum = 0;
    struct timespec a, b, ca, cb;
    int r;

    clock_gettime(CLOCK_MONOTONIC, &a);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ca);
    if (cairn_csv_open(&c, path, NULL) < 0) {
        fprintf(stderr, "csv_bench: %s\n", cairn_error_last());
        return 1;
    }
    while ((r = cairn_csv_next(c, &fl, &n)) == 1) {
        rows++;
        sum += n; /* touch the result so the loop is not optimised away */
    }
    if (r < 0) {
        fprintf(stderr, "csv_bench: %s\n", cairn_error_last());
        cairn_csv_free(c);
        return 1;
    }
    unsigned long long bytes = cairn_csv_bytes(c);
    cairn_csv_free(c);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cb);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    double cpu = (double)(cb.tv_sec - ca.tv_sec) + (double)(cb.tv_nsec - ca.tv_nsec) / 1e9;
    printf("%llu %llu %.6f %.6f\n", rows, bytes, s, cpu);
    return sum == 0 && rows != 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "gen") == 0)
        return gen(argv[2], atol(argv[3]), strtoull(argv[4], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "read") == 0)
        return readbench(argv[2]);
    fprintf(stderr, "usage: csv_bench gen FILE MB SEED | csv_bench read FILE\n");
    return 2;
}
