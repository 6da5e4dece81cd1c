/*
 * Replay driver for the fuzz targets: a main() that feeds each file named on
 * the command line (or each regular file of a named directory, in name
 * order) to LLVMFuzzerTestOneInput, the way libFuzzer replays a corpus. It
 * lets `make check` run every seed through every parser with gcc, and under
 * ASan+UBSan, without a libFuzzer runtime.
 *
 * Each input is copied into a buffer of exactly its size, so a parser that
 * reads one byte too far trips AddressSanitizer as it would under libFuzzer.
 * Inputs larger than REPLAY_MAX_INPUT are refused: a seed corpus holds small
 * files. An argument that names nothing, or a directory without a single
 * input, is an error, so a target registered without its corpus fails
 * rather than passing having tested nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REPLAY_MAX_INPUT ((size_t)64 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a target, as with libFuzzer. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int replay_file(const char *path)
{
    FILE *f = NULL;
    uint8_t *data = NULL;
    struct stat st;
    size_t size;
    int error = -1;

    if (!(f = fopen(path, "rb")) || fstat(fileno(f), &st) < 0) {
        fprintf(stderr, "replay: cannot open '%s': %s\n", path, strerror(errno));
        goto done;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > REPLAY_MAX_INPUT) {
        fprintf(stderr, "replay: '%s' is larger than %zu bytes\n", path, REPLAY_MAX_INPUT);
        goto done;
    }
    size = (size_t)st.st_size;
    /* malloc(0) may return NULL; keep a valid pointer for empty inputs. */
    if (!(data = malloc(size ? size : 1))) {
        fprintf(stderr, "replay: out of memory for '%s'\n", path);
        goto done;
    }
    if (size && fread(data, 1, size, f) != size) {
        fprintf(stderr, "replay: cannot read '%s'\n", path);
        goto done;
    }
    LLVMFuzzerTestOneInput(data, size);
    error = 0;
done:
    free(data);
    if (f)
        fclose(f);
    return error;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Returns the number of inputs replayed, or -1. */
static int replay_path(const char *path)
{
    struct dirent **names = NULL;
    struct stat st;
    int n, count = 0, error = 0;

    if (stat(path, &st) < 0) {
        fprintf(stderr, "replay: cannot open '%s': %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return replay_file(path) < 0 ? -1 : 1;

    if ((n = scandir(path, &names, NULL, by_name)) < 0) {
        fprintf(stderr, "replay: cannot list '%s': %s\n", path, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char file[4096];
        struct stat fst;
        int len = snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name);
        if (len < 0 || (size_t)len >= sizeof(file)) {
            fprintf(stderr, "replay: path too long in '%s'\n", path);
            error = -1;
        } else if (names[i]->d_name[0] != '.' && stat(file, &fst) == 0 && S_ISREG(fst.st_mode)) {
            if (replay_file(file) < 0)
                error = -1;
            else
                count++;
        }
        free(names[i]);
    }
    free(names);
    if (!error && count == 0) {
        fprintf(stderr, "replay: no inputs in '%s'\n", path);
        error = -1;
    }
    return error < 0 ? -1 : count;
}

int main(int argc, char **argv)
{
    int total = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        int n = replay_path(argv[i]);
        if (n < 0)
            return 1;
        total += n;
    }
    printf("replayed %d input(s)\n", total);
    return 0;
}
