/*
 * Fuzz target for the flat metrics readers: the input is read both as JSON
 * (what an eval command prints) and as YAML (a --metrics file). Whatever
 * parses must serialise to JSON that parses back to the same entries. A
 * broken invariant traps; nothing is printed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/gate.h"

static void roundtrip(const struct cairn_values *m)
{
    struct cairn_values back;
    char *json = NULL;

    cairn_values_init(&back);
    if (cairn_values_to_json(&json, m) != 0)
        return;
    if (cairn_values_parse_json(&back, "again", json, strlen(json)) != 0 || back.count != m->count)
        __builtin_trap();
    for (size_t i = 0; i < m->count; i++) {
        const struct cairn_value *a = &m->items[i], *b = &back.items[i];
        if (strcmp(a->name, b->name) != 0 || a->type != b->type)
            __builtin_trap();
        if (a->type == CAIRN_VALUE_NUMBER && a->number != b->number)
            __builtin_trap();
        if (a->type == CAIRN_VALUE_STRING && strcmp(a->string, b->string) != 0)
            __builtin_trap();
        if (a->type == CAIRN_VALUE_BOOL && a->boolean != b->boolean)
            __builtin_trap();
    }
    free(json);
    cairn_values_release(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cairn_values m;

    cairn_values_init(&m);
    if (cairn_values_parse_json(&m, "fuzz", data, size) == 0)
        roundtrip(&m);
    cairn_values_release(&m);
    cairn_values_init(&m);
    if (cairn_values_parse_yaml(&m, "fuzz", data, size) == 0)
        roundtrip(&m);
    cairn_values_release(&m);
    return 0;
}
