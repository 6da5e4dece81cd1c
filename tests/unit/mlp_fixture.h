/*
 * The tiny two-class MLP the serving and evaluation unit tests serve
 * (serve/test_serve_model.c, gate/test_evalendpoint.c): the network of
 * model/test_mlp.c, h = relu(x0, x1 - 1, x0 + x1 + 0.5), classes "no,yes",
 * "yes" when h1 + h2 > h0; x = [2, 1] gives p(yes) = 1 / (1 + e^-1.5).
 * Include after cmocka.h.
 */
#ifndef CAIRN_TESTS_MLP_FIXTURE_H
#define CAIRN_TESTS_MLP_FIXTURE_H

#include <stdint.h>
#include <string.h>

#include "util/buf.h"
#include "util/fs.h"

/* Write it as DIR/model.safetensors. */
static inline void mlp_fixture_write(const char *dir)
{
    const char *hdr =
        "{\"__metadata__\":{\"cairn.arch\":\"mlp\",\"cairn.activation\":\"relu\","
        "\"cairn.output\":\"softmax\",\"cairn.classes\":\"no,yes\"},"
        "\"layers.0.weight\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[0,24]},"
        "\"layers.0.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[24,36]},"
        "\"layers.1.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[36,60]},"
        "\"layers.1.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[60,68]}}";
    const float vals[] = { 1, 0, 0, 1, 1, 1, 0, -1, 0.5f, 1, 0, 0, 0, 1, 1, 0, 0 };
    struct cairn_buf f = CAIRN_BUF_INIT, path = CAIRN_BUF_INIT;
    cairn_buf_put_u64le(&f, strlen(hdr));
    cairn_buf_puts(&f, hdr);
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        uint32_t u;
        memcpy(&u, &vals[i], 4);
        cairn_buf_put_u32le(&f, u);
    }
    cairn_fs_join(&path, dir, "model.safetensors");
    assert_int_equal(cairn_fs_write_atomic(path.ptr, f.ptr, f.len, 0644), 0);
    cairn_buf_release(&f);
    cairn_buf_release(&path);
}

#endif
