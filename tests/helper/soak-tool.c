/*
 * cairn-soak-tool: hostile clients beside normal traffic against an HTTP
 * server on the loopback (tests/e2e/t4300-soak.bats), for a bounded time.
 *
 *   cairn-soak-tool --target 127.0.0.1:PORT --path /v2/models/m/infer
 *       --body JSON --duration SECONDS [--pid PID] [--normal N]
 *       [--big N] [--big-size BYTES] [--slow-big N] [--slowloris N]
 *       [--flood N] [--oversize N] [--oversize-size BYTES]
 *
 * Normal clients (source 127.0.0.1) send the body in a loop on keep-alive
 * connections and count every answer that is not a 200 (or no answer
 * within 10 s) as an error. Hostile clients each come from their own
 * loopback address (127.0.0.2 and up, so per-client caps see them apart):
 *
 *   big        bodies of --big-size bytes (default 63 MB) at full speed (D6)
 *   slow-big   the same declared size, 64 KiB every 100 ms
 *   slowloris  a request line, then one header byte every 200 ms
 *   flood      connections opened and closed as fast as possible, every
 *              other one left open and silent
 *   oversize   a Content-Length over any sane limit
 *
 * At the end it prints "key value" lines: the normal traffic's requests,
 * errors, error rate and worst latency, what each hostile class got back
 * (status codes, or "closed"), and with --pid the server's peak RSS
 * (VmHWM) and current RSS from /proc/PID/status. Exit 0 unless the
 * arguments are bad or the target never answered a normal request.
 *
 * Plain libc and pthreads: one thread per client, blocking sockets with
 * timeouts, so the tool stays simple and every client is bounded in time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum cls { NORMAL, BIG, SLOWBIG, SLOWLORIS, FLOOD, OVERSIZE, NCLS };
static const char *const cls_name[NCLS] = { "normal",    "big",   "slow_big",
                                            "slowloris", "flood", "oversize" };

static char target_ip[64] = "127.0.0.1";
static int target_port;
static const char *path = "/";
static const char *body = "{}";
static double deadline;
static size_t big_size = 63u * 1000 * 1000, oversize_size = (size_t)1 << 40;

/* Answers by class: [0] closed without a status, [1..5] 1xx..5xx, by code below. */
#define NCODES 600
static atomic_ulong seen[NCLS][NCODES];
static atomic_ulong normal_ok, normal_err, normal_max_us;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* A connection from 127.0.0.SRC to the target; -1 on failure. */
static int dial(int src, int timeout_s)
{
    struct sockaddr_in sa, from;
    struct timeval tv = { timeout_s, 0 };
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    memset(&from, 0, sizeof(from));
    from.sin_family = AF_INET;
    from.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)src);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)target_port);
    inet_pton(AF_INET, target_ip, &sa.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&from, sizeof(from)) < 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/*
 * Read one response: its status, and its body when `whole` (by
 * Content-Length). Returns the status, or 0 if the connection closed or
 * timed out first.
 */
static int read_response(int fd, int whole)
{
    char buf[65536];
    size_t n = 0;
    char *end = NULL;
    long status, clen = 0;
    const char *cl;

    while (!end) {
        ssize_t r = recv(fd, buf + n, sizeof(buf) - 1 - n, 0);
        if (r <= 0)
            return 0;
        n += (size_t)r;
        buf[n] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (!end && n >= sizeof(buf) - 1)
            return 0;
    }
    if (strncmp(buf, "HTTP/1.", 7) || n < 12)
        return 0;
    status = strtol(buf + 9, NULL, 10);
    if (!whole)
        return (int)status;
    if ((cl = strcasestr(buf, "\r\nContent-Length:")))
        clen = strtol(cl + 17, NULL, 10);
    for (size_t have = n - (size_t)(end + 4 - buf); (long)have < clen;) {
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r <= 0)
            return 0;
        have += (size_t)r;
    }
    return (int)status;
}

static void count(enum cls c, int status)
{
    atomic_fetch_add(&seen[c][status > 0 && status < NCODES ? status : 0], 1);
}

struct client {
    pthread_t th;
    enum cls c;
    int src; /* 127.0.0.SRC */
    int index;
};

static void run_normal(struct client *cl)
{
    char head[512];
    size_t blen = strlen(body);
    int hl = snprintf(head, sizeof(head),
                      "POST %s HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      path, blen);
    int fd = -1;
    while (now_s() < deadline) {
        double t0 = now_s();
        int status;
        unsigned long us;
        if (fd < 0 && (fd = dial(cl->src, 10)) < 0) {
            atomic_fetch_add(&normal_err, 1);
            nap_ms(10);
            continue;
        }
        if (send_all(fd, head, (size_t)hl) < 0 || send_all(fd, body, blen) < 0)
            status = 0;
        else
            status = read_response(fd, 1);
        us = (unsigned long)((now_s() - t0) * 1e6);
        if (us > atomic_load(&normal_max_us))
            atomic_store(&normal_max_us, us);
        count(NORMAL, status);
        if (status == 200) {
            atomic_fetch_add(&normal_ok, 1);
        } else {
            atomic_fetch_add(&normal_err, 1);
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0)
        close(fd);
}

/* A body of `size` declared bytes, sent in 64 KiB pieces `gap_ms` apart (0: at once). */
static void run_body(struct client *cl, size_t size, int gap_ms)
{
    static char chunk[65536];
    char head[512];
    int hl = snprintf(head, sizeof(head),
                      "POST %s HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      path, size);
    memset(chunk, ' ', sizeof(chunk));
    while (now_s() < deadline) {
        int fd = dial(cl->src, 10), status = 0;
        if (fd < 0) {
            count(cl->c, 0);
            nap_ms(50);
            continue;
        }
        if (send_all(fd, head, (size_t)hl) == 0) {
            size_t left = size;
            while (left && now_s() < deadline) {
                size_t n = left < sizeof(chunk) ? left : sizeof(chunk);
                if (send_all(fd, chunk, n) < 0)
                    break;
                left -= n;
                if (gap_ms)
                    nap_ms(gap_ms);
            }
            /* Refused early or sent whole: the answer is there either way. */
            status = read_response(fd, 0);
        }
        count(cl->c, status);
        close(fd);
        if (!status)
            nap_ms(20);
    }
}

static void run_slowloris(struct client *cl)
{
    static const char line[] = "POST /v2/models/x/infer HTTP/1.1\r\nX-Slow: ";
    while (now_s() < deadline) {
        int fd = dial(cl->src, 2), status = 0;
        if (fd < 0) {
            count(cl->c, 0);
            nap_ms(200);
            continue;
        }
        if (send_all(fd, line, sizeof(line) - 1) == 0) {
            /* One byte at a time until the server gives up on us. */
            while (now_s() < deadline && send_all(fd, "a", 1) == 0) {
                char c;
                ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
                    break;
                if (r > 0) {
                    char rest[256] = { c };
                    ssize_t m = recv(fd, rest + 1, sizeof(rest) - 2, 0);
                    rest[m > 0 ? m + 1 : 1] = '\0';
                    status = !strncmp(rest, "HTTP/1.", 7) ? atoi(rest + 9) : 0;
                    break;
                }
                nap_ms(200);
            }
        }
        if (status || now_s() < deadline) /* not just cut short by the end of the run */
            count(cl->c, status);
        close(fd);
    }
}

static void run_flood(struct client *cl)
{
    int held = -1;
    for (unsigned i = 0; now_s() < deadline; i++) {
        int fd = dial(cl->src, 2);
        if (fd < 0) {
            count(cl->c, 0);
            nap_ms(5);
            continue;
        }
        if (i % 2) {
            /* Connect and hang up at once. */
            close(fd);
            continue;
        }
        /* Keep one silent connection; the server may refuse it (a status) or drop it. */
        if (held >= 0) {
            char c[256];
            ssize_t r = recv(held, c, sizeof(c) - 1, MSG_DONTWAIT);
            if (r > 0) {
                c[r] = '\0';
                count(cl->c, !strncmp(c, "HTTP/1.", 7) ? atoi(c + 9) : 0);
            } else if (r == 0) {
                count(cl->c, 0);
            }
            close(held);
        }
        held = fd;
        nap_ms(2);
    }
    if (held >= 0)
        close(held);
}

static void *client_main(void *arg)
{
    struct client *cl = arg;
    switch (cl->c) {
    case NORMAL:
        run_normal(cl);
        break;
    case BIG:
        run_body(cl, big_size, 0);
        break;
    case SLOWBIG:
        run_body(cl, big_size, 100);
        break;
    case SLOWLORIS:
        run_slowloris(cl);
        break;
    case FLOOD:
        run_flood(cl);
        break;
    case OVERSIZE:
        run_body(cl, oversize_size, 0);
        break;
    default:
        break;
    }
    return NULL;
}

static long proc_kib(int pid, const char *key)
{
    char fn[64], line[256];
    long v = -1;
    FILE *f;
    snprintf(fn, sizeof(fn), "/proc/%d/status", pid);
    if (!(f = fopen(fn, "r")))
        return -1;
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, key, strlen(key)))
            v = strtol(line + strlen(key) + 1, NULL, 10);
    fclose(f);
    return v;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: cairn-soak-tool --target HOST:PORT --path PATH --body JSON "
            "--duration S [--pid PID] [--normal N] [--big N] [--big-size B] "
            "[--slow-big N] [--slowloris N] [--flood N] [--oversize N] "
            "[--oversize-size B]\n");
    return 2;
}

int main(int argc, char **argv)
{
    int n[NCLS] = { 4, 0, 0, 0, 0, 0 }, pid = 0, total = 0, k = 0;
    double duration = 10;
    struct client *cls;
    const char *colon;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return usage();
        i++;
        if (!strcmp(a, "--target")) {
            if (!(colon = strrchr(v, ':')) || (size_t)(colon - v) >= sizeof(target_ip))
                return usage();
            snprintf(target_ip, sizeof(target_ip), "%.*s", (int)(colon - v), v);
            target_port = atoi(colon + 1);
        } else if (!strcmp(a, "--path"))
            path = v;
        else if (!strcmp(a, "--body"))
            body = v;
        else if (!strcmp(a, "--duration"))
            duration = atof(v);
        else if (!strcmp(a, "--pid"))
            pid = atoi(v);
        else if (!strcmp(a, "--normal"))
            n[NORMAL] = atoi(v);
        else if (!strcmp(a, "--big"))
            n[BIG] = atoi(v);
        else if (!strcmp(a, "--big-size"))
            big_size = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--slow-big"))
            n[SLOWBIG] = atoi(v);
        else if (!strcmp(a, "--slowloris"))
            n[SLOWLORIS] = atoi(v);
        else if (!strcmp(a, "--flood"))
            n[FLOOD] = atoi(v);
        else if (!strcmp(a, "--oversize"))
            n[OVERSIZE] = atoi(v);
        else if (!strcmp(a, "--oversize-size"))
            oversize_size = strtoull(v, NULL, 10);
        else
            return usage();
    }
    for (int c = 0; c < NCLS; c++) {
        if (n[c] < 0 || n[c] > 512)
            return usage();
        total += n[c];
    }
    if (!target_port || duration <= 0 || duration > 3600 || !total)
        return usage();
    if (!(cls = calloc((size_t)total, sizeof(*cls))))
        return 1;
    deadline = now_s() + duration;
    /*
     * Sources: normal 127.0.0.1; big over 127.0.0.3-10 (two connections per
     * address), slow-big .2, slowloris .11, flood .12, oversize .13.
     */
    for (int c = 0; c < NCLS; c++) {
        for (int i = 0; i < n[c]; i++, k++) {
            static const int src[NCLS] = { 1, 3, 2, 11, 12, 13 };
            cls[k].c = (enum cls)c;
            cls[k].index = i;
            cls[k].src = c == BIG ? 3 + (i / 2) % 8 : src[c];
            if (pthread_create(&cls[k].th, NULL, client_main, &cls[k]) != 0)
                return 1;
        }
    }
    for (int i = 0; i < total; i++)
        pthread_join(cls[i].th, NULL);
    free(cls);

    {
        unsigned long ok = atomic_load(&normal_ok), err = atomic_load(&normal_err);
        printf("duration_s %.1f\n", duration);
        printf("normal_requests %lu\nnormal_errors %lu\nnormal_error_rate %.6f\n", ok + err, err,
               ok + err ? (double)err / (double)(ok + err) : 0.0);
        printf("normal_max_latency_ms %.1f\n", (double)atomic_load(&normal_max_us) / 1000.0);
    }
    for (int c = 1; c < NCLS; c++) {
        if (!n[c])
            continue;
        printf("%s", cls_name[c]);
        for (int s = 0; s < NCODES; s++)
            if (atomic_load(&seen[c][s]))
                printf(" %s:%lu",
                       s ? (char[4]){ (char)('0' + s / 100), (char)('0' + s / 10 % 10),
                                      (char)('0' + s % 10), 0 }
                         : "closed",
                       atomic_load(&seen[c][s]));
        printf("\n");
    }
    if (pid) {
        printf("server_vmhwm_kib %ld\n", proc_kib(pid, "VmHWM:"));
        printf("server_vmrss_kib %ld\n", proc_kib(pid, "VmRSS:"));
    }
    return atomic_load(&normal_ok) || !n[NORMAL] ? 0 : 1;
}
