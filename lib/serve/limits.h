/*
 * Resource accounting for the HTTP server (http.c): how many connections
 * are open and how many bytes they buffer, in all and per client address,
 * against caps. The server asks before it accepts a connection or grows a
 * buffer, so what hostile clients make it hold is bounded by the caps, not
 * by what they send.
 *
 * A client is an IP address (IPv4-mapped IPv6 counts as IPv4; other
 * families, such as a socketpair's, are one client). Its entry lives while
 * it has a connection open; entries come from a pool sized by the
 * connection cap, so the table never allocates after cairn_limits_new(),
 * and entry pointers stay valid until their last connection closes.
 *
 * Not thread-safe: one loop thread uses it. Nothing here allocates or
 * sets an error message after cairn_limits_new().
 */
#ifndef CAIRN_SERVE_LIMITS_H
#define CAIRN_SERVE_LIMITS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cairn_limits_opts {
    size_t max_conns;        /* open connections in all, 1 .. CAIRN_LIMITS_MAX_CONNS */
    size_t max_bytes;        /* buffered bytes in all; 0: no cap */
    size_t max_client_conns; /* per client address; 0: no cap */
    size_t max_client_bytes; /* per client address; 0: no cap */
};
#define CAIRN_LIMITS_MAX_CONNS 1000000

/* What refused a connection or bytes. */
enum cairn_limit {
    CAIRN_LIMIT_OK = 0,
    CAIRN_LIMIT_GLOBAL, /* the cap on everything */
    CAIRN_LIMIT_CLIENT, /* the cap on this client address */
};

struct cairn_limits_stats {
    size_t conns, bytes, clients;
    uint64_t refused_conns[3]; /* by enum cairn_limit; [0] unused */
    uint64_t refused_bytes[3]; /* refusals (not bytes) by enum cairn_limit */
};

struct cairn_limits;
struct cairn_limits_client;

/*
 * A new accounting table. `seed` keys the address hash (pass something
 * random so that addresses cannot be chosen to collide). Returns 0 or
 * CAIRN_EINVALID (max_conns out of range) / CAIRN_ENOMEM.
 */
int cairn_limits_new(struct cairn_limits **out, const struct cairn_limits_opts *o, uint64_t seed);
/* Accepts NULL. */
void cairn_limits_free(struct cairn_limits *l);

/*
 * Count a connection from `addr` (`len` bytes, as accept() gives it; NULL
 * or an unknown family is one shared client). On CAIRN_LIMIT_OK `*out` is
 * the client's entry, to pass to the functions below and to
 * cairn_limits_close(); otherwise nothing was counted but the refusal.
 */
enum cairn_limit cairn_limits_open(struct cairn_limits *l, const struct sockaddr *addr,
                                   socklen_t len, struct cairn_limits_client **out);
/* The connection closed. Every byte it took must have been given back. */
void cairn_limits_close(struct cairn_limits *l, struct cairn_limits_client *c);

/*
 * Take `n` buffered bytes for client `c` (NULL: only the global cap, for
 * bytes no client owns). Nothing is taken when a cap would be exceeded.
 */
enum cairn_limit cairn_limits_take(struct cairn_limits *l, struct cairn_limits_client *c, size_t n);
/* Give back `n` bytes taken for `c` (the same `c`, or NULL for NULL). */
void cairn_limits_give(struct cairn_limits *l, struct cairn_limits_client *c, size_t n);

void cairn_limits_stats(const struct cairn_limits *l, struct cairn_limits_stats *out);

#endif
