/*
 * Connection and buffer accounting; see limits.h.
 *
 * The per-client table is a chained hash over a pool of entries, one per
 * possible open connection (a client without a connection has no entry),
 * so open and close are O(1) on average and never allocate. Chains hold
 * pool indices; UINT32_MAX ends a chain and the free list.
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/common.h"
#include "serve/limits.h"

#define NIL UINT32_MAX

struct cairn_limits_client {
    unsigned char key[17]; /* family tag, then 16 address bytes */
    uint32_t next;         /* chain, or free list */
    size_t conns, bytes;
};

struct cairn_limits {
    struct cairn_limits_opts o;
    struct cairn_limits_stats st;
    uint64_t seed;
    uint32_t mask;
    uint32_t *heads;
    uint32_t free_head;
    struct cairn_limits_client *pool;
};

int cairn_limits_new(struct cairn_limits **out, const struct cairn_limits_opts *o, uint64_t seed)
{
    struct cairn_limits *l;
    size_t nb = 1;

    *out = NULL;
    if (o->max_conns < 1 || o->max_conns > CAIRN_LIMITS_MAX_CONNS)
        return cairn_error_set(CAIRN_EINVALID, "connection cap %zu is not in 1..%d", o->max_conns,
                               CAIRN_LIMITS_MAX_CONNS);
    while (nb < o->max_conns)
        nb *= 2;
    if (!(l = calloc(1, sizeof(*l))) || !(l->heads = malloc(nb * sizeof(*l->heads))) ||
        !(l->pool = calloc(o->max_conns, sizeof(*l->pool)))) {
        cairn_limits_free(l);
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    }
    l->o = *o;
    l->seed = seed;
    l->mask = (uint32_t)(nb - 1);
    memset(l->heads, 0xff, nb * sizeof(*l->heads));
    for (size_t i = 0; i < o->max_conns; i++)
        l->pool[i].next = i + 1 < o->max_conns ? (uint32_t)(i + 1) : NIL;
    l->free_head = 0;
    *out = l;
    return 0;
}

void cairn_limits_free(struct cairn_limits *l)
{
    if (!l)
        return;
    free(l->heads);
    free(l->pool);
    free(l);
}

static void make_key(unsigned char key[17], const struct sockaddr *sa, socklen_t len)
{
    static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    memset(key, 0, 17);
    if (sa && sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        key[0] = 4;
        memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa && sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const unsigned char *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        if (!memcmp(a, v4mapped, 12)) {
            key[0] = 4;
            memcpy(key + 1, a + 12, 4);
        } else {
            key[0] = 6;
            memcpy(key + 1, a, 16);
        }
    }
}

/* splitmix64's finaliser over the key's words, keyed by the seed. */
static uint32_t key_hash(const struct cairn_limits *l, const unsigned char key[17])
{
    uint64_t a, b, h = l->seed ^ key[0];
    memcpy(&a, key + 1, 8);
    memcpy(&b, key + 9, 8);
    for (int i = 0; i < 2; i++) {
        h ^= i ? b : a;
        h += 0x9e3779b97f4a7c15ULL;
        h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
        h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
        h ^= h >> 31;
    }
    return (uint32_t)h;
}

enum cairn_limit cairn_limits_open(struct cairn_limits *l, const struct sockaddr *addr,
                                   socklen_t len, struct cairn_limits_client **out)
{
    unsigned char key[17];
    uint32_t b, i;
    struct cairn_limits_client *c = NULL;

    *out = NULL;
    if (l->st.conns >= l->o.max_conns) {
        l->st.refused_conns[CAIRN_LIMIT_GLOBAL]++;
        return CAIRN_LIMIT_GLOBAL;
    }
    make_key(key, addr, len);
    b = key_hash(l, key) & l->mask;
    for (i = l->heads[b]; i != NIL; i = l->pool[i].next)
        if (!memcmp(l->pool[i].key, key, sizeof(key)))
            break;
    if (i != NIL) {
        c = &l->pool[i];
        if (l->o.max_client_conns && c->conns >= l->o.max_client_conns) {
            l->st.refused_conns[CAIRN_LIMIT_CLIENT]++;
            return CAIRN_LIMIT_CLIENT;
        }
    } else {
        /* Fewer than max_conns connections are open, so an entry is free. */
        i = l->free_head;
        c = &l->pool[i];
        l->free_head = c->next;
        memcpy(c->key, key, sizeof(key));
        c->conns = c->bytes = 0;
        c->next = l->heads[b];
        l->heads[b] = i;
        l->st.clients++;
    }
    c->conns++;
    l->st.conns++;
    *out = c;
    return CAIRN_LIMIT_OK;
}

void cairn_limits_close(struct cairn_limits *l, struct cairn_limits_client *c)
{
    uint32_t idx, *pp;
    if (!c)
        return;
    l->st.conns--;
    if (--c->conns > 0)
        return;
    idx = (uint32_t)(c - l->pool);
    for (pp = &l->heads[key_hash(l, c->key) & l->mask]; *pp != idx; pp = &l->pool[*pp].next)
        ;
    *pp = c->next;
    c->next = l->free_head;
    l->free_head = idx;
    l->st.clients--;
}

enum cairn_limit cairn_limits_take(struct cairn_limits *l, struct cairn_limits_client *c, size_t n)
{
    if (l->o.max_bytes && n > l->o.max_bytes - l->st.bytes) {
        l->st.refused_bytes[CAIRN_LIMIT_GLOBAL]++;
        return CAIRN_LIMIT_GLOBAL;
    }
    if (c && l->o.max_client_bytes &&
        (n > l->o.max_client_bytes || c->bytes > l->o.max_client_bytes - n)) {
        l->st.refused_bytes[CAIRN_LIMIT_CLIENT]++;
        return CAIRN_LIMIT_CLIENT;
    }
    l->st.bytes += n;
    if (c)
        c->bytes += n;
    return CAIRN_LIMIT_OK;
}

void cairn_limits_give(struct cairn_limits *l, struct cairn_limits_client *c, size_t n)
{
    l->st.bytes -= n;
    if (c)
        c->bytes -= n;
}

void cairn_limits_stats(const struct cairn_limits *l, struct cairn_limits_stats *out)
{
    *out = l->st;
}
