/*
 * Fuzz target for the .cairn/config reader (lib/repo/config.c). Whatever
 * parses must format to text that parses again to the same values, and a
 * set on the parsed config must keep it parseable with the new value
 * readable. A broken invariant traps; nothing is printed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cairn_config *c = NULL, *back = NULL;
    char *text = NULL;
    const char *a, *b;

    if (cairn_config_parse(&c, "fuzz", (const char *)data, size) != 0)
        return 0;
    /* only the line limit can refuse this set */
    if (cairn_config_set(c, "alias", "production", "policy", "gates/p.yaml") != 0)
        goto done;
    if (cairn_config_format(&text, c) != 0)
        goto done;
    if (cairn_config_parse(&back, "again", text, strlen(text)) != 0)
        __builtin_trap();
    a = cairn_config_get(c, "core", NULL, "format");
    b = cairn_config_get(back, "core", NULL, "format");
    if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0))
        __builtin_trap();
    b = cairn_config_get(back, "alias", "production", "policy");
    if (!b || strcmp(b, "gates/p.yaml") != 0)
        __builtin_trap();
done:
    free(text);
    cairn_config_free(back);
    cairn_config_free(c);
    return 0;
}
