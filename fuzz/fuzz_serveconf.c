/*
 * Fuzz target for the `cairn serve` config file (docs/serving.md, "Config
 * file"; config_load() in lib/serve/router.c, reached through
 * cairn__router_config_check()). The reader takes a path, so the input is
 * written to a memfd and read back as /proc/self/fd/N: no disk, nothing
 * left behind. Any input gives 0 or CAIRN_EINVALID; must not crash or leak.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cairn/common.h"
#include "serve/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    size_t off = 0;
    int fd = memfd_create("serveconf", MFD_CLOEXEC), rc;

    if (fd < 0)
        return 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0)
            goto done;
        off += (size_t)w;
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    rc = cairn__router_config_check(path);
    if (rc != 0 && rc != CAIRN_EINVALID && rc != CAIRN_ENOMEM)
        abort();
done:
    close(fd);
    cairn_error_clear();
    return 0;
}
