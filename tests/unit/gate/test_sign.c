/*
 * Unit tests for lib/gate/sign.c: keygen files and modes, refusal to
 * overwrite, sign/verify round trip, tampering, the wrong key, signature
 * text form and the trusted key ring.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/common.h"
#include "cairn/gate.h"
#include "util/fs.h"
#include "util/hash.h"

struct fixture {
    char dir[64];
    char sec[128], pub[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/cairn-sign-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->sec, sizeof(f->sec), "%s/signing.key", f->dir);
    snprintf(f->pub, sizeof(f->pub), "%s/signing.pub", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cairn_fs_rm_rf(f->dir);
    free(f);
    return 0;
}

static void version_id(cairn_oid *out, const char *s)
{
    cairn_hash(out, s, strlen(s));
}

static void test_keygen_files(void **state)
{
    struct fixture *f = *state;
    struct cairn_pubkey pub, loaded;
    struct cairn_seckey sk;
    struct stat st;
    mode_t old = umask(0077);

    assert_int_equal(cairn_keygen(&pub, f->sec, f->pub), 0);
    umask(old);
    assert_int_equal(stat(f->sec, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(f->pub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644); /* even under umask 077 */
    assert_int_equal(strlen(pub.id), 16);
    assert_int_equal(cairn_pubkey_load(&loaded, f->pub), 0);
    assert_memory_equal(loaded.key, pub.key, 32);
    assert_string_equal(loaded.id, pub.id);
    assert_int_equal(cairn_seckey_load(&sk, f->sec), 0);
    assert_string_equal(sk.pub.id, pub.id);
    cairn_seckey_release(&sk);

    /* Refuses to overwrite either file, and leaves both untouched. */
    assert_int_equal(cairn_keygen(NULL, f->sec, f->pub), CAIRN_EEXISTS);
    char other[160];
    snprintf(other, sizeof(other), "%s/other.key", f->dir);
    assert_int_equal(cairn_keygen(NULL, other, f->pub), CAIRN_EEXISTS);
    assert_int_equal(access(other, F_OK), -1);
    assert_int_equal(cairn_pubkey_load(&loaded, f->pub), 0);
    assert_string_equal(loaded.id, pub.id);
    /* No temporary files are left behind. */
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "test $(ls -A %s | wc -l) -eq 2", f->dir);
    assert_int_equal(system(cmd), 0);
}

static void test_sign_verify(void **state)
{
    struct fixture *f = *state;
    struct cairn_pubkey pub;
    struct cairn_seckey sk;
    struct cairn_signature sig, back;
    cairn_oid v, w;
    char *text;

    assert_int_equal(cairn_keygen(&pub, f->sec, f->pub), 0);
    assert_int_equal(cairn_seckey_load(&sk, f->sec), 0);
    version_id(&v, "version one");
    version_id(&w, "version two");
    assert_int_equal(cairn_sign_version(&sig, &sk, &v), 0);
    assert_string_equal(sig.key_id, pub.id);
    assert_int_equal(cairn_verify_version(&sig, &pub, &v), 0);
    /* Another message (version) does not verify. */
    assert_int_equal(cairn_verify_version(&sig, &pub, &w), CAIRN_ECHECK);
    /* A flipped bit in the signature does not verify. */
    back = sig;
    back.sig[17] ^= 0x04;
    assert_int_equal(cairn_verify_version(&back, &pub, &v), CAIRN_ECHECK);

    /* Text round trip. */
    assert_int_equal(cairn_signature_format(&text, &sig), 0);
    assert_int_equal(strlen(text), 8 + 16 + 1 + 128);
    assert_int_equal(cairn_signature_parse(&back, text), 0);
    assert_memory_equal(back.sig, sig.sig, 64);
    assert_string_equal(back.key_id, sig.key_id);
    text[30] = 'z';
    assert_int_equal(cairn_signature_parse(&back, text), CAIRN_EINVALID);
    free(text);
    assert_int_equal(cairn_signature_parse(&back, "ed25519:"), CAIRN_EINVALID);
    assert_int_equal(cairn_signature_parse(&back, ""), CAIRN_EINVALID);
    cairn_seckey_release(&sk);
}

static void test_other_key_and_ring(void **state)
{
    struct fixture *f = *state;
    struct cairn_pubkey pub1, pub2;
    struct cairn_seckey sk2;
    struct cairn_signature sig1, sig2;
    struct cairn_keyring ring;
    char sec2[160], pub2path[160], trusted[160], path[200];
    cairn_oid v;
    FILE *fp;

    snprintf(trusted, sizeof(trusted), "%s/trusted_keys", f->dir);
    assert_int_equal(cairn_fs_mkdir_p(trusted), 0);
    snprintf(sec2, sizeof(sec2), "%s/two.key", f->dir);
    snprintf(pub2path, sizeof(pub2path), "%s/two.pub", f->dir);
    snprintf(path, sizeof(path), "%s/one.pub", trusted);
    /* Key one is trusted (its .pub is in the ring), key two is not. */
    assert_int_equal(cairn_keygen(&pub1, f->sec, path), 0);
    assert_int_equal(cairn_keygen(&pub2, sec2, pub2path), 0);
    assert_int_equal(cairn_seckey_load(&sk2, sec2), 0);
    version_id(&v, "v");
    assert_int_equal(cairn_sign_version(&sig2, &sk2, &v), 0);
    /* Verifying with the wrong public key fails. */
    assert_int_equal(cairn_verify_version(&sig2, &pub1, &v), CAIRN_ECHECK);
    /* Even with the key id forged, the bytes do not verify. */
    sig1 = sig2;
    memcpy(sig1.key_id, pub1.id, sizeof(sig1.key_id));
    assert_int_equal(cairn_verify_version(&sig1, &pub1, &v), CAIRN_ECHECK);

    assert_int_equal(cairn_keyring_load_dir(&ring, trusted), 0);
    assert_int_equal(ring.count, 1);
    assert_non_null(cairn_keyring_find(&ring, pub1.id));
    assert_int_equal(cairn_keyring_check(&ring, NULL, &v), CAIRN_SIG_MISSING);
    assert_int_equal(cairn_keyring_check(&ring, &sig2, &v), CAIRN_SIG_UNTRUSTED);
    assert_int_equal(cairn_keyring_check(&ring, &sig1, &v), CAIRN_SIG_INVALID);
    {
        struct cairn_seckey sk1;
        assert_int_equal(cairn_seckey_load(&sk1, f->sec), 0);
        assert_int_equal(cairn_sign_version(&sig1, &sk1, &v), 0);
        cairn_seckey_release(&sk1);
    }
    assert_int_equal(cairn_keyring_check(&ring, &sig1, &v), CAIRN_SIG_VALID);
    cairn_keyring_release(&ring);

    /* A damaged .pub in the trust store fails the load; other files are ignored. */
    snprintf(path, sizeof(path), "%s/README", trusted);
    fp = fopen(path, "w");
    fputs("not a key", fp);
    fclose(fp);
    assert_int_equal(cairn_keyring_load_dir(&ring, trusted), 0);
    assert_int_equal(ring.count, 1);
    cairn_keyring_release(&ring);
    snprintf(path, sizeof(path), "%s/bad.pub", trusted);
    fp = fopen(path, "w");
    fputs("cairn-ed25519-public-v1\nzz\n", fp);
    fclose(fp);
    assert_int_equal(cairn_keyring_load_dir(&ring, trusted), CAIRN_EINVALID);
    assert_int_equal(ring.count, 0);
    /* A missing directory is an empty ring. */
    snprintf(path, sizeof(path), "%s/none", f->dir);
    assert_int_equal(cairn_keyring_load_dir(&ring, path), 0);
    assert_int_equal(ring.count, 0);
    cairn_seckey_release(&sk2);
}

static void test_key_parse_hostile(void **state)
{
    (void)state;
    struct cairn_pubkey k;
    static const char *bad[] = {
        "",
        "cairn-ed25519-public-v1",
        "cairn-ed25519-public-v1\n",
        "cairn-ed25519-public-"
        "v2\n0000000000000000000000000000000000000000000000000000000000000000\n",
        "cairn-ed25519-public-"
        "v1\n000000000000000000000000000000000000000000000000000000000000000\n",
        "cairn-ed25519-public-"
        "v1\n0000000000000000000000000000000000000000000000000000000000000000x\n",
        "cairn-ed25519-secret-"
        "v1\n0000000000000000000000000000000000000000000000000000000000000000\n",
    };
    const char *good =
        "cairn-ed25519-public-v1\r\n"
        "00000000000000000000000000000000000000000000000000000000000000AB\r\n\n";
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(cairn_pubkey_parse(&k, "k", bad[i], strlen(bad[i])), CAIRN_EINVALID);
    assert_int_equal(cairn_pubkey_parse(&k, "k", good, strlen(good)), 0);
    assert_int_equal(k.key[31], 0xab);
}

static void test_secret_mode_warning(void **state)
{
    struct fixture *f = *state;
    struct cairn_seckey sk;
    assert_int_equal(cairn_keygen(NULL, f->sec, f->pub), 0);
    assert_int_equal(chmod(f->sec, 0644), 0);
    /* Still loads (the warning goes to the handler), and a missing file is NOTFOUND. */
    assert_int_equal(cairn_seckey_load(&sk, f->sec), 0);
    cairn_seckey_release(&sk);
    assert_int_equal(cairn_seckey_load(&sk, "/nonexistent/key"), CAIRN_ENOTFOUND);
}

static void test_repo_store(void **state)
{
    struct fixture *f = *state;
    struct cairn_pubkey pub1;
    struct cairn_seckey sk1, sk2;
    struct cairn_signature sig;
    enum cairn_sig_status st;
    char trusted[160], pubpath[200], sec2[160], pub2[160], path[300], hex[CAIRN_OID_HEXSZ + 1];
    char *detail = NULL;
    cairn_oid v, w;
    FILE *fp;

    snprintf(trusted, sizeof(trusted), "%s/" CAIRN_TRUSTED_KEYS_DIR, f->dir);
    assert_int_equal(cairn_fs_mkdir_p(trusted), 0);
    snprintf(pubpath, sizeof(pubpath), "%s/me.pub", trusted);
    snprintf(sec2, sizeof(sec2), "%s/two.key", f->dir);
    snprintf(pub2, sizeof(pub2), "%s/two.pub", f->dir);
    assert_int_equal(cairn_keygen(&pub1, f->sec, pubpath), 0);
    assert_int_equal(cairn_keygen(NULL, sec2, pub2), 0);
    assert_int_equal(cairn_seckey_load(&sk1, f->sec), 0);
    assert_int_equal(cairn_seckey_load(&sk2, sec2), 0);
    version_id(&v, "v");
    version_id(&w, "w");

    assert_int_equal(cairn_signature_status(&st, &detail, f->dir, &v), 0);
    assert_int_equal(st, CAIRN_SIG_MISSING);
    assert_null(detail);
    /* Only an untrusted signature. */
    assert_int_equal(cairn_sign_version(&sig, &sk2, &v), 0);
    assert_int_equal(cairn_signature_store(f->dir, &v, &sig), 0);
    assert_int_equal(cairn_signature_status(&st, NULL, f->dir, &v), 0);
    assert_int_equal(st, CAIRN_SIG_UNTRUSTED);
    /* Plus a trusted one: valid, naming the trusted key. */
    assert_int_equal(cairn_sign_version(&sig, &sk1, &v), 0);
    assert_int_equal(cairn_signature_store(f->dir, &v, &sig), 0);
    assert_int_equal(cairn_signature_status(&st, &detail, f->dir, &v), 0);
    assert_int_equal(st, CAIRN_SIG_VALID);
    assert_non_null(strstr(detail, pub1.id));
    free(detail);
    /* A signature for v stored under w (a replay) is invalid. */
    assert_int_equal(cairn_signature_store(f->dir, &w, &sig), 0);
    assert_int_equal(cairn_signature_status(&st, NULL, f->dir, &w), 0);
    assert_int_equal(st, CAIRN_SIG_INVALID);
    /* A damaged file beside a good signature makes the whole state invalid. */
    snprintf(path, sizeof(path), "%s/" CAIRN_SIGNATURES_DIR "/%s/junk.sig", f->dir,
             cairn_oid_fmt(hex, &v));
    fp = fopen(path, "w");
    fputs("ed25519:nothex\n", fp);
    fclose(fp);
    assert_int_equal(cairn_signature_status(&st, NULL, f->dir, &v), 0);
    assert_int_equal(st, CAIRN_SIG_INVALID);
    assert_string_equal(cairn_sig_status_name(st), "invalid");
    cairn_seckey_release(&sk1);
    cairn_seckey_release(&sk2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keygen_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_key_and_ring, setup, teardown),
        cmocka_unit_test(test_key_parse_hostile),
        cmocka_unit_test_setup_teardown(test_secret_mode_warning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repo_store, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
