/* Unit tests for lib/util/hash.c against BLAKE3's published test vectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "util/hash.h"

/* Official vector: input of length N bytes where byte i is i % 251. */
static void vector(size_t n, const char *hex)
{
    unsigned char *in = calloc(1, n ? n : 1);
    cairn_oid a, b;
    struct cairn_hasher h;
    char out[CAIRN_OID_HEXSZ + 1];
    for (size_t i = 0; i < n; i++)
        in[i] = (unsigned char)(i % 251);
    cairn_hash(&a, in, n);
    assert_string_equal(cairn_oid_fmt(out, &a), hex);
    /* Streaming in odd pieces gives the same digest. */
    cairn_hasher_init(&h);
    for (size_t off = 0; off < n;) {
        size_t k = (n - off) < 7 ? (n - off) : 7;
        cairn_hasher_update(&h, in + off, k);
        off += k;
    }
    cairn_hasher_final(&h, &b);
    assert_int_equal(cairn_oid_cmp(&a, &b), 0);
    free(in);
}

static void test_vectors(void **state)
{
    (void)state;
    vector(0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262");
    vector(1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213");
    vector(1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7");
    vector(1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444");
}

static void test_hex(void **state)
{
    (void)state;
    cairn_oid id, back;
    char hex[CAIRN_OID_HEXSZ + 1];
    for (int i = 0; i < CAIRN_OID_RAWSZ; i++)
        id.id[i] = (uint8_t)(i * 37);
    cairn_oid_fmt(hex, &id);
    assert_int_equal(cairn_oid_parse(&back, hex), 0);
    assert_int_equal(cairn_oid_cmp(&id, &back), 0);
    hex[10] = 'g';
    assert_int_equal(cairn_oid_parse(&back, hex), CAIRN_EINVALID);
    assert_int_equal(cairn_oid_parse(&back, "abcd"), CAIRN_EINVALID);
    memset(&id, 0, sizeof(id));
    assert_true(cairn_oid_is_zero(&id));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
