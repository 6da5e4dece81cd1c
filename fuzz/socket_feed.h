/*
 * Feeding a fuzz input to a server of lib/serve through one end of a
 * socketpair, for the targets that drive real connections (fuzz_http,
 * fuzz_router). Header-only: each target is its own program.
 */
#ifndef CAIRN_FUZZ_SOCKET_FEED_H
#define CAIRN_FUZZ_SOCKET_FEED_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

/* Read and drop whatever the server has answered so far. */
static inline void feed_drain(int fd)
{
    char buf[4096];
    while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
        ;
}

/*
 * Send data[0, size) on fd in writes of at most `step` bytes, running the
 * loop and dropping the answers after each, so the server sees its reads cut
 * where the input says. When the server stops reading (it closed, or
 * backpressure) sending stops. Then the write side is shut and the loop run
 * `settle` more times, for answers still on their way.
 */
static inline void feed(uv_loop_t *loop, int fd, const uint8_t *data, size_t size, size_t step,
                        int settle)
{
    size_t pos = 0;

    while (pos < size) {
        size_t n = size - pos < step ? size - pos : step;
        ssize_t w = send(fd, data + pos, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0)
            pos += (size_t)w;
        uv_run(loop, UV_RUN_NOWAIT);
        feed_drain(fd);
        if (w <= 0 && pos < size) {
            uv_run(loop, UV_RUN_NOWAIT);
            feed_drain(fd);
            if (send(fd, data + pos, 1, MSG_DONTWAIT | MSG_NOSIGNAL) <= 0)
                break;
            pos++;
        }
    }
    shutdown(fd, SHUT_WR);
    for (int i = 0; i < settle; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        feed_drain(fd);
    }
}

#endif
