/*
 * openloop: an open-loop HTTP/1.1 load generator at a fixed request rate,
 * for bench/router.sh's half-load latencies (SPEC section 9: p99 overhead of
 * the router over calling the upstream directly).
 *
 *   openloop -a HOST:PORT -p PATH -b BODY -r RATE -d SECONDS
 *            [-c CONNECTIONS] [-w WARMUP_SECONDS]
 *
 * Request i is due at start + i / RATE, whatever the server does (wrk has
 * no rate limit; wrk2 is not in Debian). It goes out on an idle keep-alive
 * connection at once, or waits for one; its latency runs from the time it
 * was due to the last byte of the answer, so a stalled server is charged
 * for every request it delayed (no coordinated omission). The timer is a
 * timerfd armed at the next due time, so requests leave one by one rather
 * than in bursts of a millisecond's worth. Latencies go to a histogram of
 * 1 us buckets up to 100 ms, exact enough for a 100 us budget.
 *
 * Plain C and Linux (epoll, timerfd), no libcairn: the load must not come
 * from the code it measures. Prints one line of key=value figures, in
 * microseconds.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS   1024
#define HIST_US     100000 /* 1 us buckets up to 100 ms; beyond counts as overflow */
#define RBUF        16384
#define QUEUE_SLOTS (1 << 20)

struct conn {
    int fd;
    int busy;
    uint64_t due, sent; /* ns */
    size_t got;
    char buf[RBUF];
};

static uint32_t hist[HIST_US + 1], hist_sent[HIST_US + 1];
static uint64_t overflow_max;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "openloop: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void record(uint32_t *h, uint64_t ns)
{
    uint64_t us = ns / 1000;
    if (us >= HIST_US) {
        if (us > overflow_max)
            overflow_max = us;
        us = HIST_US;
    }
    h[us]++;
}

static uint64_t percentile(const uint32_t *h, uint64_t n, double p)
{
    uint64_t want = (uint64_t)(p / 100.0 * (double)n + 0.5), seen = 0;
    if (want == 0)
        want = 1;
    for (size_t i = 0; i <= HIST_US; i++) {
        seen += h[i];
        if (seen >= want)
            return i == HIST_US ? overflow_max : i;
    }
    return 0;
}

/* Bytes of a complete response in c->buf, 0 if not complete yet; *status set. */
static size_t response_len(struct conn *c, int *status)
{
    char *end, *cl;
    size_t head, clen = 0;
    c->buf[c->got] = '\0';
    if (!(end = strstr(c->buf, "\r\n\r\n")))
        return 0;
    head = (size_t)(end - c->buf) + 4;
    *status = atoi(c->buf + 9);
    if ((cl = strcasestr(c->buf, "\r\nContent-Length:")) && cl < end)
        clen = strtoull(cl + 17, NULL, 10);
    return c->got >= head + clen ? head + clen : 0;
}

int main(int argc, char **argv)
{
    const char *addr = NULL, *path = "/", *body = "";
    double rate = 0, dur = 0, warm = 1;
    int nconns = 64, opt, ep, tfd;
    char req[8192], host[64];
    size_t reqlen;
    struct sockaddr_in sa;
    static struct conn conns[MAX_CONNS];
    int idle[MAX_CONNS], nidle = 0;
    uint64_t *queue, qhead = 0, qtail = 0; /* due times waiting for a connection */
    uint64_t start, end, next_i = 0, total, done = 0, errors = 0, non200 = 0, measured = 0;
    uint64_t maxq = 0, sent_late = 0;

    while ((opt = getopt(argc, argv, "a:p:b:r:d:c:w:")) != -1) {
        switch (opt) {
        case 'a':
            addr = optarg;
            break;
        case 'p':
            path = optarg;
            break;
        case 'b':
            body = optarg;
            break;
        case 'r':
            rate = atof(optarg);
            break;
        case 'd':
            dur = atof(optarg);
            break;
        case 'c':
            nconns = atoi(optarg);
            break;
        case 'w':
            warm = atof(optarg);
            break;
        default:
            goto usage;
        }
    }
    if (!addr || rate <= 0 || dur <= 0 || nconns < 1 || nconns > MAX_CONNS || warm < 0)
        goto usage;
    {
        const char *colon = strrchr(addr, ':');
        if (!colon || (size_t)(colon - addr) >= sizeof(host))
            goto usage;
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)atoi(colon + 1));
        if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
            goto usage;
    }
    reqlen = (size_t)snprintf(req, sizeof(req),
                              "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                              "Content-Length: %zu\r\n\r\n%s",
                              path, addr, strlen(body), body);
    if (reqlen >= sizeof(req))
        goto usage;
    if ((ep = epoll_create1(0)) < 0)
        die("epoll_create1");
    for (int i = 0; i < nconns; i++) {
        int one = 1;
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
        conns[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        if (conns[i].fd < 0 || connect(conns[i].fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
            die("connect");
        setsockopt(conns[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev) < 0)
            die("epoll_ctl");
        idle[nidle++] = i;
    }
    if ((tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK)) < 0)
        die("timerfd_create");
    {
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = MAX_CONNS };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev) < 0)
            die("epoll_ctl");
    }
    if (!(queue = malloc(QUEUE_SLOTS * sizeof(*queue))))
        die("malloc");
    total = (uint64_t)((warm + dur) * rate);
    start = now_ns() + 10000000ull; /* 10 ms to settle */
    end = start + (uint64_t)((warm + dur) * 1e9);

    while (done < total) {
        struct epoll_event evs[64];
        uint64_t now = now_ns();
        int n;
        /* Everything due by now joins the queue, then goes out on idle connections. */
        while (next_i < total) {
            uint64_t due = start + (uint64_t)((double)next_i * 1e9 / rate);
            if (due > now)
                break;
            if (qtail - qhead >= QUEUE_SLOTS) {
                fprintf(stderr, "openloop: the server fell %d requests behind\n", QUEUE_SLOTS);
                return 1;
            }
            queue[qtail++ % QUEUE_SLOTS] = due;
            next_i++;
        }
        if (qtail - qhead > maxq)
            maxq = qtail - qhead;
        while (qhead < qtail && nidle) {
            struct conn *c = &conns[idle[--nidle]];
            c->due = queue[qhead++ % QUEUE_SLOTS];
            c->sent = now_ns();
            c->busy = 1;
            c->got = 0;
            if (c->sent - c->due > 1000000)
                sent_late++;
            if (write(c->fd, req, reqlen) != (ssize_t)reqlen)
                die("write");
        }
        if (next_i < total) {
            struct itimerspec its = { { 0, 0 }, { 0, 0 } };
            uint64_t due = start + (uint64_t)((double)next_i * 1e9 / rate);
            its.it_value.tv_sec = (time_t)(due / 1000000000ull);
            its.it_value.tv_nsec = (long)(due % 1000000000ull);
            timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
        }
        n = epoll_wait(ep, evs, 64, now > end + 10000000000ull ? 0 : 1000);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        if (n == 0 && now_ns() > end + 10000000000ull)
            break; /* answers missing 10 s after the end: count them as errors */
        for (int i = 0; i < n; i++) {
            struct conn *c;
            ssize_t r;
            size_t len;
            int status = 0;
            if (evs[i].data.u32 == MAX_CONNS) {
                uint64_t x;
                if (read(tfd, &x, sizeof(x)) < 0 && errno != EAGAIN)
                    die("read timerfd");
                continue;
            }
            c = &conns[evs[i].data.u32];
            r = read(c->fd, c->buf + c->got, RBUF - 1 - c->got);
            if (r <= 0 || !c->busy) {
                fprintf(stderr, "openloop: connection closed or stray bytes\n");
                return 1;
            }
            c->got += (size_t)r;
            if (!(len = response_len(c, &status))) {
                if (c->got >= RBUF - 1) {
                    fprintf(stderr, "openloop: response too large\n");
                    return 1;
                }
                continue;
            }
            if (len != c->got) {
                fprintf(stderr, "openloop: bytes after the response\n");
                return 1;
            }
            {
                uint64_t t = now_ns();
                done++;
                c->busy = 0;
                idle[nidle++] = (int)(c - conns);
                if (status != 200)
                    non200++;
                if (c->due >= start + (uint64_t)(warm * 1e9)) {
                    measured++;
                    record(hist, t - c->due);
                    record(hist_sent, t - c->sent);
                }
            }
        }
    }
    errors = total - done;
    printf(
        "rate=%.0f duration=%.0f connections=%d requests=%llu measured=%llu errors=%llu "
        "non200=%llu late_sends=%llu max_queue=%llu p50=%llu p90=%llu p99=%llu p999=%llu "
        "max=%llu p50_sent=%llu p99_sent=%llu\n",
        rate, dur, nconns, (unsigned long long)done, (unsigned long long)measured,
        (unsigned long long)errors, (unsigned long long)non200, (unsigned long long)sent_late,
        (unsigned long long)maxq, (unsigned long long)percentile(hist, measured, 50),
        (unsigned long long)percentile(hist, measured, 90),
        (unsigned long long)percentile(hist, measured, 99),
        (unsigned long long)percentile(hist, measured, 99.9),
        (unsigned long long)percentile(hist, measured, 100),
        (unsigned long long)percentile(hist_sent, measured, 50),
        (unsigned long long)percentile(hist_sent, measured, 99));
    return errors || non200 ? 1 : 0;
usage:
    fprintf(stderr,
            "usage: openloop -a HOST:PORT -p PATH -b BODY -r RATE -d SECONDS "
            "[-c CONNECTIONS] [-w WARMUP_SECONDS]\n");
    return 2;
}
