/*
 * Running a user's evaluation command (`cairn eval --cmd`): `/bin/sh -c
 * COMMAND` in its own process group, stdin from /dev/null, stdout captured
 * up to a cap, stderr passed through or tail-captured, a deadline enforced
 * with SIGTERM to the whole group and SIGKILL after a grace period.
 *
 * The child is started with posix_spawn (no code of ours runs between fork
 * and exec, so this is safe in a threaded process) with the environment
 * built beforehand in the parent. The parent waits for the child with
 * waitid(WNOWAIT), which leaves it a zombie so its process-group id cannot
 * be reused before we have killed whatever it left behind; only then is it
 * reaped. Polling runs at 10-50 ms steps: the cost is a few wake-ups per
 * second for commands that run minutes.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cairn/common.h"
#include "cairn/gate.h"
#include "util/buf.h"
#include "util/fs.h"

extern char **environ;

#define DEFAULT_GRACE_MS 2000
/* After the command exits, how long its leftovers may keep our pipes open. */
#define LINGER_SECONDS 0.2

void cairn_evalcmd_result_release(struct cairn_evalcmd_result *r)
{
    if (!r)
        return;
    free(r->out);
    free(r->err_tail);
    memset(r, 0, sizeof(*r));
}

static size_t name_len(const char *kv)
{
    const char *eq = strchr(kv, '=');
    return eq ? (size_t)(eq - kv) : strlen(kv);
}

/* environ with `add` overriding same-named entries; the array is malloc'd, strings borrowed. */
static int build_env(char ***out, const char *const *add)
{
    size_t n = 0, m = 0, k = 0;
    char **env;

    while (environ && environ[n])
        n++;
    while (add && add[m])
        m++;
    env = calloc(n + m + 1, sizeof(*env));
    if (!env)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        bool replaced = false;
        size_t l = name_len(environ[i]);
        for (size_t j = 0; j < m && !replaced; j++)
            replaced = name_len(add[j]) == l && strncmp(add[j], environ[i], l) == 0;
        if (!replaced)
            env[k++] = environ[i];
    }
    for (size_t j = 0; j < m; j++)
        env[k++] = (char *)add[j];
    env[k] = NULL;
    *out = env;
    return 0;
}

static int spawn(pid_t *out, const struct cairn_evalcmd_opts *opts, int outfd, int errfd)
{
    static const int reset[] = { SIGPIPE, SIGINT,  SIGTERM, SIGQUIT, SIGHUP,  SIGCHLD,
                                 SIGALRM, SIGUSR1, SIGUSR2, SIGTSTP, SIGTTIN, SIGTTOU };
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t def, none;
    char **env = NULL;
    char *argv[] = { "sh", "-c", (char *)opts->command, NULL };
    int error, rc;

    if ((error = build_env(&env, opts->env)) < 0)
        return error;
    sigemptyset(&def);
    sigemptyset(&none);
    for (size_t i = 0; i < sizeof(reset) / sizeof(reset[0]); i++)
        sigaddset(&def, reset[i]);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                        POSIX_SPAWN_SETSIGMASK);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigdefault(&attr, &def);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, outfd, 1);
    if (errfd >= 0)
        posix_spawn_file_actions_adddup2(&fa, errfd, 2);
    if (opts->cwd)
        posix_spawn_file_actions_addchdir_np(&fa, opts->cwd);
    rc = posix_spawn(out, "/bin/sh", &fa, &attr, argv, env);
    if (rc != 0) {
        errno = rc;
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot run '/bin/sh'");
    }
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    free(env);
    return error;
}

/* Append to `b`, keeping at most `tail` bytes (the last ones). */
static int keep_tail(struct cairn_buf *b, const char *data, size_t len, size_t tail)
{
    int error;
    if (len > tail) {
        data += len - tail;
        len = tail;
    }
    if ((error = cairn_buf_put(b, data, len)) < 0)
        return error;
    if (b->len > tail) {
        memmove(b->ptr, b->ptr + (b->len - tail), tail);
        b->len = tail;
        b->ptr[tail] = '\0';
    }
    return 0;
}

int cairn_evalcmd_run(struct cairn_evalcmd_result *out, const struct cairn_evalcmd_opts *opts)
{
    struct cairn_buf obuf = CAIRN_BUF_INIT, ebuf = CAIRN_BUF_INIT;
    size_t limit = opts->stdout_limit ? opts->stdout_limit : CAIRN_EVALCMD_DEFAULT_STDOUT_LIMIT;
    double grace = (opts->kill_grace_ms ? opts->kill_grace_ms : DEFAULT_GRACE_MS) / 1000.0;
    double start, deadline = 0, kill_at = 0, exited_at = 0;
    int opipe[2] = { -1, -1 }, epipe[2] = { -1, -1 };
    bool exited = false, term_sent = false, kill_sent = false;
    pid_t pid = -1;
    int status = 0, error;
    char chunk[65536];

    memset(out, 0, sizeof(*out));
    /* One byte over the limit tells "exactly at the limit" from "over it". */
    cairn_buf_init(&obuf, limit + 1);
    cairn_buf_init(&ebuf, opts->stderr_tail * 2 + sizeof(chunk));
    if (pipe2(opipe, O_CLOEXEC) < 0 || (opts->stderr_tail && pipe2(epipe, O_CLOEXEC) < 0)) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot create a pipe");
        goto done;
    }
    start = cairn_time_monotonic();
    if (opts->timeout_ms)
        deadline = start + opts->timeout_ms / 1000.0;
    if ((error = spawn(&pid, opts, opipe[1], epipe[1])) < 0)
        goto done;
    close(opipe[1]);
    opipe[1] = -1;
    if (epipe[1] >= 0) {
        close(epipe[1]);
        epipe[1] = -1;
    }

    for (;;) {
        struct pollfd pfd[2];
        int nfd = 0, wait_ms;
        double now = cairn_time_monotonic(), next;
        siginfo_t si;

        if (!exited) {
            memset(&si, 0, sizeof(si));
            if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
                si.si_pid == pid) {
                exited = true;
                exited_at = now;
            }
        }
        if (exited && ((opipe[0] < 0 && epipe[0] < 0) || now - exited_at > LINGER_SECONDS))
            break;
        if (!term_sent && !exited && deadline > 0 && now >= deadline) {
            out->timed_out = true;
            kill(-pid, SIGTERM);
            term_sent = true;
            kill_at = now + grace;
        }
        if (term_sent && !kill_sent && now >= kill_at) {
            kill(-pid, SIGKILL);
            kill_sent = true;
        }

        next = opipe[0] < 0 && epipe[0] < 0 ? 0.01 : 0.05;
        if (!term_sent && deadline > 0 && deadline - now < next)
            next = deadline - now;
        if (term_sent && !kill_sent && kill_at - now < next)
            next = kill_at - now;
        wait_ms = next > 0 ? (int)(next * 1000) + 1 : 0;
        if (opipe[0] >= 0)
            pfd[nfd++] = (struct pollfd){ .fd = opipe[0], .events = POLLIN };
        if (epipe[0] >= 0)
            pfd[nfd++] = (struct pollfd){ .fd = epipe[0], .events = POLLIN };
        if (poll(pfd, (nfds_t)nfd, wait_ms) < 0 && errno != EINTR) {
            error = cairn_error_set_errno(CAIRN_ERROR, "poll failed");
            goto done;
        }
        for (int i = 0; i < nfd; i++) {
            bool is_out = pfd[i].fd == opipe[0];
            ssize_t n;
            if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            n = read(pfd[i].fd, chunk, sizeof(chunk));
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n <= 0) {
                close(pfd[i].fd);
                *(is_out ? &opipe[0] : &epipe[0]) = -1;
                continue;
            }
            if (!is_out) {
                if ((error = keep_tail(&ebuf, chunk, (size_t)n, opts->stderr_tail)) < 0)
                    goto done;
                continue;
            }
            if (obuf.len + (size_t)n > limit) {
                /* Over the cap the output is useless: stop the command now. */
                out->truncated = true;
                close(opipe[0]);
                opipe[0] = -1;
                if (!term_sent && !exited) {
                    kill(-pid, SIGTERM);
                    term_sent = true;
                    kill_at = cairn_time_monotonic() + grace;
                }
                continue;
            }
            if ((error = cairn_buf_put(&obuf, chunk, (size_t)n)) < 0)
                goto done;
        }
    }
    out->elapsed = cairn_time_monotonic() - start;

done:
    if (pid > 0) {
        /* The zombie leader still holds the group id: nothing else can own it yet. */
        kill(-pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        if (WIFEXITED(status)) {
            out->exited = true;
            out->exit_code = WEXITSTATUS(status);
        } else if (WIFSIGNALED(status)) {
            out->signaled = true;
            out->term_signal = WTERMSIG(status);
        }
    }
    for (int i = 0; i < 2; i++) {
        if (opipe[i] >= 0)
            close(opipe[i]);
        if (epipe[i] >= 0)
            close(epipe[i]);
    }
    if (error == 0 && !obuf.ptr)
        error = cairn_buf_put(&obuf, "", 0);
    if (error == 0) {
        out->out = cairn_buf_detach(&obuf, &out->out_len);
        if (opts->stderr_tail && ebuf.len)
            out->err_tail = cairn_buf_detach(&ebuf, NULL);
    }
    cairn_buf_release(&obuf);
    cairn_buf_release(&ebuf);
    if (error < 0)
        cairn_evalcmd_result_release(out);
    return error;
}

/* The last non-empty line of the stderr tail, cut to 200 bytes, into buf. */
static const char *last_line(char *buf, size_t cap, const char *tail)
{
    const char *end, *begin;
    size_t n;

    buf[0] = '\0';
    if (!tail)
        return buf;
    end = tail + strlen(tail);
    while (end > tail && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
        end--;
    begin = end;
    while (begin > tail && begin[-1] != '\n')
        begin--;
    n = (size_t)(end - begin);
    if (n > 200)
        n = 200;
    snprintf(buf, cap, "%.*s", (int)n, begin);
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    return buf;
}

int cairn_evalcmd_check(const struct cairn_evalcmd_result *r)
{
    char what[128], line[256];

    if (r->timed_out)
        snprintf(what, sizeof(what), "command timed out after %.3gs", r->elapsed);
    else if (r->truncated)
        snprintf(what, sizeof(what), "command output larger than the limit");
    else if (r->signaled)
        snprintf(what, sizeof(what), "command killed by signal %d (%s)", r->term_signal,
                 strsignal(r->term_signal));
    else if (!r->exited)
        snprintf(what, sizeof(what), "command ended in an unknown state");
    else if (r->exit_code == 127)
        snprintf(what, sizeof(what), "command exited with status 127 (command not found?)");
    else if (r->exit_code != 0)
        snprintf(what, sizeof(what), "command exited with status %d", r->exit_code);
    else
        return 0;
    last_line(line, sizeof(line), r->err_tail);
    if (line[0])
        return cairn_error_set(CAIRN_ERROR, "%s; stderr: %s", what, line);
    return cairn_error_set(CAIRN_ERROR, "%s", what);
}

int cairn_evalcmd_metrics(struct cairn_values *out, const struct cairn_evalcmd_opts *opts)
{
    struct cairn_evalcmd_result r;
    const char *p;
    int error;

    if ((error = cairn_evalcmd_run(&r, opts)) < 0)
        return error;
    if ((error = cairn_evalcmd_check(&r)) < 0)
        goto done;
    for (p = r.out; *p == ' ' || *p == '\n' || *p == '\t' || *p == '\r'; p++)
        ;
    if (*p == '\0') {
        error = cairn_error_set(CAIRN_EINVALID,
                                "command printed nothing; expected a JSON object of metrics");
        goto done;
    }
    error = cairn_values_parse_json(out, "command output", r.out, r.out_len);
done:
    cairn_evalcmd_result_release(&r);
    return error;
}
