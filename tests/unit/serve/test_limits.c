/*
 * Unit tests for lib/serve/limits.c: the connection caps (global and per
 * client address), the byte caps, entries that come and go with their
 * clients' connections (the pool never runs dry), IPv4-mapped IPv6 counted
 * as IPv4, and the refusal counters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "cairn/common.h"
#include "serve/limits.h"

static struct sockaddr_in v4(const char *ip, int port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, ip, &sa.sin_addr);
    return sa;
}

static struct sockaddr_in6 v6(const char *ip)
{
    struct sockaddr_in6 sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin6_family = AF_INET6;
    inet_pton(AF_INET6, ip, &sa.sin6_addr);
    return sa;
}

#define OPEN(l, sa, out) cairn_limits_open((l), (struct sockaddr *)&(sa), sizeof(sa), (out))

static void test_connection_caps(void **state)
{
    (void)state;
    struct cairn_limits_opts o = { 4, 0, 2, 0 };
    struct cairn_limits *l;
    struct cairn_limits_client *a1, *a2, *a3, *b1, *b2, *c1, *x;
    struct cairn_limits_stats st;
    struct sockaddr_in a = v4("10.0.0.1", 1000), a_other_port = v4("10.0.0.1", 2000),
                       b = v4("10.0.0.2", 1000), c = v4("10.0.0.3", 1);

    assert_int_equal(cairn_limits_new(&l, &o, 42), 0);
    assert_int_equal(OPEN(l, a, &a1), CAIRN_LIMIT_OK);
    /* The port does not matter: the same client. */
    assert_int_equal(OPEN(l, a_other_port, &a2), CAIRN_LIMIT_OK);
    assert_ptr_equal(a1, a2);
    assert_int_equal(OPEN(l, a, &a3), CAIRN_LIMIT_CLIENT);
    assert_null(a3);
    assert_int_equal(OPEN(l, b, &b1), CAIRN_LIMIT_OK);
    assert_ptr_not_equal(a1, b1);
    assert_int_equal(OPEN(l, b, &b2), CAIRN_LIMIT_OK);
    /* Four open: the global cap refuses even a new client. */
    assert_int_equal(OPEN(l, c, &c1), CAIRN_LIMIT_GLOBAL);
    cairn_limits_stats(l, &st);
    assert_int_equal(st.conns, 4);
    assert_int_equal(st.clients, 2);
    assert_int_equal(st.refused_conns[CAIRN_LIMIT_CLIENT], 1);
    assert_int_equal(st.refused_conns[CAIRN_LIMIT_GLOBAL], 1);
    /* A closed connection makes room, and a client with none left is forgotten. */
    cairn_limits_close(l, b1);
    cairn_limits_close(l, b2);
    cairn_limits_stats(l, &st);
    assert_int_equal(st.conns, 2);
    assert_int_equal(st.clients, 1);
    assert_int_equal(OPEN(l, c, &c1), CAIRN_LIMIT_OK);
    assert_int_equal(OPEN(l, c, &x), CAIRN_LIMIT_OK);
    assert_int_equal(OPEN(l, b, &x), CAIRN_LIMIT_GLOBAL);
    cairn_limits_close(l, NULL); /* a refused connection has no entry: nothing happens */
    cairn_limits_stats(l, &st);
    assert_int_equal(st.conns, 4);
    cairn_limits_free(l);
    cairn_limits_free(NULL);

    o.max_conns = 0;
    assert_int_equal(cairn_limits_new(&l, &o, 1), CAIRN_EINVALID);
    assert_null(l);
}

static void test_families(void **state)
{
    (void)state;
    struct cairn_limits_opts o = { 8, 0, 1, 0 };
    struct cairn_limits *l;
    struct cairn_limits_client *p, *q, *r, *s;
    struct sockaddr_in a = v4("192.0.2.7", 1);
    struct sockaddr_in6 mapped = v6("::ffff:192.0.2.7"), six = v6("2001:db8::7"),
                        six2 = v6("2001:db8::8");
    struct sockaddr un = { .sa_family = AF_UNIX };

    assert_int_equal(cairn_limits_new(&l, &o, 7), 0);
    assert_int_equal(OPEN(l, a, &p), CAIRN_LIMIT_OK);
    /* IPv4-mapped IPv6 is the same client as its IPv4 address. */
    assert_int_equal(OPEN(l, mapped, &q), CAIRN_LIMIT_CLIENT);
    assert_int_equal(OPEN(l, six, &q), CAIRN_LIMIT_OK);
    assert_int_equal(OPEN(l, six2, &r), CAIRN_LIMIT_OK);
    assert_ptr_not_equal(q, r);
    /* No address, or another family: one shared client. */
    assert_int_equal(cairn_limits_open(l, NULL, 0, &s), CAIRN_LIMIT_OK);
    assert_int_equal(cairn_limits_open(l, &un, sizeof(un), &s), CAIRN_LIMIT_CLIENT);
    cairn_limits_free(l);
}

static void test_byte_caps(void **state)
{
    (void)state;
    struct cairn_limits_opts o = { 8, 1000, 0, 600 };
    struct cairn_limits *l;
    struct cairn_limits_client *a, *b;
    struct cairn_limits_stats st;
    struct sockaddr_in sa = v4("10.1.1.1", 1), sb = v4("10.1.1.2", 1);

    assert_int_equal(cairn_limits_new(&l, &o, 3), 0);
    assert_int_equal(OPEN(l, sa, &a), CAIRN_LIMIT_OK);
    assert_int_equal(OPEN(l, sb, &b), CAIRN_LIMIT_OK);
    assert_int_equal(cairn_limits_take(l, a, 600), CAIRN_LIMIT_OK);
    assert_int_equal(cairn_limits_take(l, a, 1), CAIRN_LIMIT_CLIENT);
    assert_int_equal(cairn_limits_take(l, a, SIZE_MAX), CAIRN_LIMIT_GLOBAL);
    assert_int_equal(cairn_limits_take(l, b, 400), CAIRN_LIMIT_OK);
    /* 1000 taken: the global cap refuses b although b is under its own. */
    assert_int_equal(cairn_limits_take(l, b, 1), CAIRN_LIMIT_GLOBAL);
    assert_int_equal(cairn_limits_take(l, NULL, 1), CAIRN_LIMIT_GLOBAL);
    cairn_limits_give(l, a, 100);
    /* Bytes no client owns count against the global cap only. */
    assert_int_equal(cairn_limits_take(l, NULL, 100), CAIRN_LIMIT_OK);
    cairn_limits_stats(l, &st);
    assert_int_equal(st.bytes, 1000);
    assert_int_equal(st.refused_bytes[CAIRN_LIMIT_CLIENT], 1);
    assert_int_equal(st.refused_bytes[CAIRN_LIMIT_GLOBAL], 3);
    cairn_limits_give(l, NULL, 100);
    cairn_limits_give(l, a, 500);
    cairn_limits_give(l, b, 400);
    cairn_limits_stats(l, &st);
    assert_int_equal(st.bytes, 0);
    cairn_limits_close(l, a);
    cairn_limits_close(l, b);
    cairn_limits_free(l);
}

/* Many clients coming and going through a small table: chains and the free list stay sound. */
static void test_churn(void **state)
{
    (void)state;
    enum { CAP = 64 };
    struct cairn_limits_opts o = { CAP, 0, 3, 0 };
    struct cairn_limits *l;
    struct cairn_limits_client *open[CAP] = { 0 };
    struct cairn_limits_stats st;
    uint64_t rng = 12345;

    assert_int_equal(cairn_limits_new(&l, &o, 99), 0);
    for (int round = 0; round < 20000; round++) {
        int slot;
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        slot = (int)((rng >> 33) % CAP);
        if (open[slot]) {
            cairn_limits_close(l, open[slot]);
            open[slot] = NULL;
        } else {
            /* 200 addresses, so clients share entries and some reach their cap of 3. */
            char ip[32];
            snprintf(ip, sizeof(ip), "10.9.%d.%d", (int)((rng >> 20) % 200) / 100,
                     (int)((rng >> 20) % 100));
            struct sockaddr_in sa = v4(ip, slot);
            enum cairn_limit v = OPEN(l, sa, &open[slot]);
            assert_true(v == CAIRN_LIMIT_OK || v == CAIRN_LIMIT_CLIENT);
        }
    }
    for (int i = 0; i < CAP; i++)
        if (open[i])
            cairn_limits_close(l, open[i]);
    cairn_limits_stats(l, &st);
    assert_int_equal(st.conns, 0);
    assert_int_equal(st.clients, 0);
    /* All entries are free again: CAP distinct clients fit. */
    for (int i = 0; i < CAP; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.8.0.%d", i);
        struct sockaddr_in sa = v4(ip, 1);
        assert_int_equal(OPEN(l, sa, &open[i]), CAIRN_LIMIT_OK);
    }
    cairn_limits_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connection_caps),
        cmocka_unit_test(test_families),
        cmocka_unit_test(test_byte_caps),
        cmocka_unit_test(test_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
