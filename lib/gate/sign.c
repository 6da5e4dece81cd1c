/*
 * Version signatures: ed25519 keys (libsodium), their text files, signing
 * and verifying a version id, and the ring of trusted public keys.
 *
 * A version id is the BLAKE3 of the canonical version record, which
 * includes the manifest digest, which commits to every chunk: signing the
 * 32 id bytes signs the whole model. The signed message is prefixed by a
 * domain string (CAIRN_SIGN_DOMAIN_VERSION and its NUL) so a signature over
 * a version can never be replayed as a signature over anything else a
 * future cairn signs with the same key.
 *
 * Key files are two lines, a header naming the format and the key in hex:
 *   cairn-ed25519-secret-v1 / 128 hex digits (libsodium's seed || public key)
 *   cairn-ed25519-public-v1 / 64 hex digits
 * Files are created under a temporary name with O_EXCL, synced, and then
 * link()ed into place, which fails if the name exists: keygen can never
 * overwrite a key, and a crash never leaves half a key behind.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/common.h"
#include "cairn/gate.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"

#define SECRET_HEADER "cairn-ed25519-secret-v1"
#define PUBLIC_HEADER "cairn-ed25519-public-v1"
#define KEYFILE_MAX   4096
#define KEYRING_MAX   1024

static int sodium_ready(void)
{
    /* sodium_init() is idempotent and thread-safe; 1 means "already done". */
    if (sodium_init() < 0)
        return cairn_error_set(CAIRN_ERROR, "cannot initialise libsodium");
    return 0;
}

static void key_id(char out[CAIRN_KEY_ID_HEXSZ + 1], const uint8_t pk[CAIRN_PUBKEY_BYTES])
{
    cairn_oid h;
    cairn_hash(&h, pk, CAIRN_PUBKEY_BYTES);
    cairn_hex_encode(out, h.id, CAIRN_KEY_ID_HEXSZ / 2);
}

static int pubkey_from_raw(struct cairn_pubkey *out, const uint8_t pk[CAIRN_PUBKEY_BYTES])
{
    memcpy(out->key, pk, CAIRN_PUBKEY_BYTES);
    key_id(out->id, pk);
    return 0;
}

/* Create `path` with exactly `data`, mode `mode`; CAIRN_EEXISTS if it exists. */
static int write_new(const char *path, const void *data, size_t len, mode_t mode)
{
    char tmp[PATH_MAX];
    int fd = -1, error = 0;
    bool made = false;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
        return cairn_error_set(CAIRN_EINVALID, "path too long '%s'", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot create '%s'", tmp);
        goto done;
    }
    made = true;
    /* The umask may only narrow the mode; 0644 should really be 0644. */
    if (fchmod(fd, mode) < 0) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot chmod '%s'", tmp);
        goto done;
    }
    if ((error = cairn_fs_write_all(fd, data, len)) < 0)
        goto done;
    if (fsync(fd) < 0) {
        error = cairn_error_set_errno(CAIRN_ERROR, "cannot fsync '%s'", tmp);
        goto done;
    }
    if (link(tmp, path) < 0) {
        error = errno == EEXIST ? cairn_error_set(CAIRN_EEXISTS,
                                                  "'%s' exists; refusing to overwrite a key", path)
                                : cairn_error_set_errno(CAIRN_ERROR, "cannot create '%s'", path);
        goto done;
    }
    error = cairn_fs_fsync_parent(path);
done:
    if (fd >= 0)
        close(fd);
    if (made)
        unlink(tmp);
    return error;
}

static int refuse_existing(const char *path)
{
    struct stat st;
    if (lstat(path, &st) == 0)
        return cairn_error_set(CAIRN_EEXISTS, "'%s' exists; refusing to overwrite a key", path);
    if (errno != ENOENT)
        return cairn_error_set_errno(CAIRN_ERROR, "cannot stat '%s'", path);
    return 0;
}

int cairn_pubkey_format(char **out, const struct cairn_pubkey *k)
{
    char hex[2 * CAIRN_PUBKEY_BYTES + 1];
    cairn_hex_encode(hex, k->key, CAIRN_PUBKEY_BYTES);
    if (asprintf(out, PUBLIC_HEADER "\n%s\n", hex) < 0) {
        *out = NULL;
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    }
    return 0;
}

int cairn_keygen(struct cairn_pubkey *pub_out, const char *secret_path, const char *public_path)
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    char text[sizeof(SECRET_HEADER) + 2 * crypto_sign_SECRETKEYBYTES + 4];
    char hex[2 * crypto_sign_SECRETKEYBYTES + 1];
    struct cairn_pubkey pub;
    char *pubtext = NULL;
    int error, n;

    if ((error = sodium_ready()) < 0 || (error = refuse_existing(secret_path)) < 0 ||
        (error = refuse_existing(public_path)) < 0)
        return error;
    crypto_sign_keypair(pk, sk);
    pubkey_from_raw(&pub, pk);
    cairn_hex_encode(hex, sk, sizeof(sk));
    n = snprintf(text, sizeof(text), SECRET_HEADER "\n%s\n", hex);
    if ((error = cairn_pubkey_format(&pubtext, &pub)) < 0)
        goto done;
    if ((error = write_new(secret_path, text, (size_t)n, 0600)) < 0)
        goto done;
    if ((error = write_new(public_path, pubtext, strlen(pubtext), 0644)) < 0) {
        /* Without its public half the new secret key is useless: take it back. */
        unlink(secret_path);
        goto done;
    }
    if (pub_out)
        *pub_out = pub;
done:
    sodium_memzero(sk, sizeof(sk));
    sodium_memzero(hex, sizeof(hex));
    sodium_memzero(text, sizeof(text));
    free(pubtext);
    return error;
}

/*
 * Split a key file into its body: "HEADER\nHEX\n" with optional \r and
 * trailing blank lines; `hex` receives exactly `hexlen` digits.
 */
static int parse_keyfile(char *hex, size_t hexlen, const char *source, const char *data, size_t len,
                         const char *header)
{
    size_t hl = strlen(header), i;

    if (len < hl + 1 || memcmp(data, header, hl) != 0 || (data[hl] != '\n' && data[hl] != '\r'))
        return cairn_error_set(CAIRN_EINVALID, "'%s' is not a %s file", source, header);
    i = hl;
    if (data[i] == '\r')
        i++;
    if (i >= len || data[i] != '\n')
        return cairn_error_set(CAIRN_EINVALID, "'%s': bad header line", source);
    i++;
    if (len - i < hexlen)
        return cairn_error_set(CAIRN_EINVALID, "'%s': key is truncated", source);
    memcpy(hex, data + i, hexlen);
    hex[hexlen] = '\0';
    for (i += hexlen; i < len; i++)
        if (data[i] != '\n' && data[i] != '\r' && data[i] != ' ')
            return cairn_error_set(CAIRN_EINVALID, "'%s': unexpected data after the key", source);
    return 0;
}

int cairn_pubkey_parse(struct cairn_pubkey *out, const char *source, const void *data, size_t len)
{
    char hex[2 * CAIRN_PUBKEY_BYTES + 1];
    uint8_t pk[CAIRN_PUBKEY_BYTES];
    int error;

    if ((error = parse_keyfile(hex, sizeof(hex) - 1, source, data, len, PUBLIC_HEADER)) < 0)
        return error;
    if (cairn_hex_decode(pk, hex, sizeof(pk)) < 0)
        return cairn_error_set(CAIRN_EINVALID, "'%s': key is not hex", source);
    return pubkey_from_raw(out, pk);
}

int cairn_pubkey_load(struct cairn_pubkey *out, const char *path)
{
    struct cairn_buf buf = CAIRN_BUF_INIT;
    int error;
    if ((error = cairn_fs_read_file(&buf, path, KEYFILE_MAX)) >= 0)
        error = cairn_pubkey_parse(out, path, buf.ptr, buf.len);
    cairn_buf_release(&buf);
    return error;
}

void cairn_seckey_release(struct cairn_seckey *k)
{
    if (k)
        sodium_memzero(k, sizeof(*k));
}

int cairn_seckey_load(struct cairn_seckey *out, const char *path)
{
    struct cairn_buf buf = CAIRN_BUF_INIT;
    char hex[2 * sizeof(out->key) + 1];
    uint8_t pk[CAIRN_PUBKEY_BYTES];
    struct stat st;
    int error;

    memset(out, 0, sizeof(*out));
    if ((error = sodium_ready()) < 0)
        return error;
    if ((error = cairn_fs_read_file(&buf, path, KEYFILE_MAX)) < 0)
        goto done;
    if (stat(path, &st) == 0 && (st.st_mode & 077))
        cairn_warn("secret key '%s' is accessible by other users (mode %03o); chmod 600 it", path,
                   (unsigned)(st.st_mode & 0777));
    if ((error = parse_keyfile(hex, sizeof(hex) - 1, path, buf.ptr, buf.len, SECRET_HEADER)) < 0)
        goto done;
    if (cairn_hex_decode(out->key, hex, sizeof(out->key)) < 0) {
        error = cairn_error_set(CAIRN_EINVALID, "'%s': key is not hex", path);
        goto done;
    }
    crypto_sign_ed25519_sk_to_pk(pk, out->key);
    pubkey_from_raw(&out->pub, pk);
done:
    sodium_memzero(hex, sizeof(hex));
    if (buf.ptr)
        sodium_memzero(buf.ptr, buf.len);
    cairn_buf_release(&buf);
    if (error < 0)
        cairn_seckey_release(out);
    return error;
}

static void version_message(uint8_t *msg, const cairn_oid *version)
{
    memcpy(msg, CAIRN_SIGN_DOMAIN_VERSION, sizeof(CAIRN_SIGN_DOMAIN_VERSION));
    memcpy(msg + sizeof(CAIRN_SIGN_DOMAIN_VERSION), version->id, CAIRN_OID_RAWSZ);
}

#define MSG_LEN (sizeof(CAIRN_SIGN_DOMAIN_VERSION) + CAIRN_OID_RAWSZ)

int cairn_sign_version(struct cairn_signature *out, const struct cairn_seckey *k,
                       const cairn_oid *version)
{
    uint8_t msg[MSG_LEN];
    int error;
    if ((error = sodium_ready()) < 0)
        return error;
    version_message(msg, version);
    crypto_sign_detached(out->sig, NULL, msg, sizeof(msg), k->key);
    memcpy(out->key_id, k->pub.id, sizeof(out->key_id));
    return 0;
}

int cairn_verify_version(const struct cairn_signature *sig, const struct cairn_pubkey *k,
                         const cairn_oid *version)
{
    uint8_t msg[MSG_LEN];
    int error;
    if ((error = sodium_ready()) < 0)
        return error;
    if (strcmp(sig->key_id, k->id) != 0)
        return cairn_error_set(CAIRN_ECHECK, "signature is by key %s, not %s", sig->key_id, k->id);
    version_message(msg, version);
    if (crypto_sign_verify_detached(sig->sig, msg, sizeof(msg), k->key) != 0)
        return cairn_error_set(CAIRN_ECHECK, "signature by key %s does not verify", k->id);
    return 0;
}

int cairn_signature_format(char **out, const struct cairn_signature *sig)
{
    char hex[2 * CAIRN_SIGNATURE_BYTES + 1];
    cairn_hex_encode(hex, sig->sig, sizeof(sig->sig));
    if (asprintf(out, "ed25519:%s:%s", sig->key_id, hex) < 0) {
        *out = NULL;
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    }
    return 0;
}

int cairn_signature_parse(struct cairn_signature *out, const char *text)
{
    static const char prefix[] = "ed25519:";
    const char *p = text;
    char id[CAIRN_KEY_ID_HEXSZ + 1];
    uint8_t raw[CAIRN_KEY_ID_HEXSZ / 2];

    if (strncmp(p, prefix, sizeof(prefix) - 1) != 0)
        goto bad;
    p += sizeof(prefix) - 1;
    if (strlen(p) != CAIRN_KEY_ID_HEXSZ + 1 + 2 * CAIRN_SIGNATURE_BYTES ||
        p[CAIRN_KEY_ID_HEXSZ] != ':')
        goto bad;
    memcpy(id, p, CAIRN_KEY_ID_HEXSZ);
    id[CAIRN_KEY_ID_HEXSZ] = '\0';
    if (cairn_hex_decode(raw, id, sizeof(raw)) < 0 ||
        cairn_hex_decode(out->sig, p + CAIRN_KEY_ID_HEXSZ + 1, sizeof(out->sig)) < 0)
        goto bad;
    /* Store the id in canonical lowercase so lookups compare byte for byte. */
    cairn_hex_encode(out->key_id, raw, sizeof(raw));
    return 0;
bad:
    return cairn_error_set(CAIRN_EINVALID, "malformed signature (expected ed25519:KEYID:HEX)");
}

void cairn_keyring_release(struct cairn_keyring *ring)
{
    if (!ring)
        return;
    free(ring->keys);
    ring->keys = NULL;
    ring->count = 0;
}

const struct cairn_pubkey *cairn_keyring_find(const struct cairn_keyring *ring, const char *key_id)
{
    for (size_t i = 0; i < ring->count; i++)
        if (strcmp(ring->keys[i].id, key_id) == 0)
            return &ring->keys[i];
    return NULL;
}

int cairn_keyring_load_dir(struct cairn_keyring *out, const char *dir)
{
    struct cairn_buf path = CAIRN_BUF_INIT;
    struct dirent *de;
    DIR *d;
    int error = 0;

    out->keys = NULL;
    out->count = 0;
    d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        return cairn_error_set_errno(CAIRN_ERROR, "cannot open '%s'", dir);
    }
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        struct cairn_pubkey k, *keys;
        struct stat st;
        if (n < 5 || strcmp(de->d_name + n - 4, ".pub") != 0 || de->d_name[0] == '.')
            continue;
        cairn_buf_clear(&path);
        if ((error = cairn_fs_join(&path, dir, de->d_name)) < 0)
            break;
        if (stat(path.ptr, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        if ((error = cairn_pubkey_load(&k, path.ptr)) < 0)
            break;
        if (cairn_keyring_find(out, k.id))
            continue;
        if (out->count >= KEYRING_MAX) {
            error = cairn_error_set(CAIRN_EINVALID, "more than %d trusted keys in '%s'",
                                    KEYRING_MAX, dir);
            break;
        }
        keys = realloc(out->keys, (out->count + 1) * sizeof(*keys));
        if (!keys) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
            break;
        }
        out->keys = keys;
        out->keys[out->count++] = k;
    }
    closedir(d);
    cairn_buf_release(&path);
    if (error < 0)
        cairn_keyring_release(out);
    return error;
}

enum cairn_sig_status cairn_keyring_check(const struct cairn_keyring *ring,
                                          const struct cairn_signature *sig,
                                          const cairn_oid *version)
{
    const struct cairn_pubkey *k;
    if (!sig)
        return CAIRN_SIG_MISSING;
    if (!(k = cairn_keyring_find(ring, sig->key_id)))
        return CAIRN_SIG_UNTRUSTED;
    return cairn_verify_version(sig, k, version) == 0 ? CAIRN_SIG_VALID : CAIRN_SIG_INVALID;
}

const char *cairn_sig_status_name(enum cairn_sig_status s)
{
    switch (s) {
    case CAIRN_SIG_VALID:
        return "valid";
    case CAIRN_SIG_MISSING:
        return "missing";
    case CAIRN_SIG_UNTRUSTED:
        return "untrusted";
    case CAIRN_SIG_INVALID:
        return "invalid";
    }
    return "invalid";
}

static int version_sig_dir(struct cairn_buf *out, const char *cairndir, const cairn_oid *version)
{
    char hex[CAIRN_OID_HEXSZ + 1];
    cairn_oid_fmt(hex, version);
    cairn_buf_clear(out);
    return cairn_buf_printf(out, "%s/" CAIRN_SIGNATURES_DIR "/%s", cairndir, hex);
}

int cairn_signature_store(const char *cairndir, const cairn_oid *version,
                          const struct cairn_signature *sig)
{
    struct cairn_buf dir = CAIRN_BUF_INIT, path = CAIRN_BUF_INIT;
    char *text = NULL;
    int error;

    if ((error = version_sig_dir(&dir, cairndir, version)) < 0 ||
        (error = cairn_fs_mkdir_p(dir.ptr)) < 0 ||
        (error = cairn_buf_printf(&path, "%s/%s.sig", dir.ptr, sig->key_id)) < 0 ||
        (error = cairn_signature_format(&text, sig)) < 0)
        goto done;
    /* Reuse dir for the file body: one line. */
    cairn_buf_clear(&dir);
    if ((error = cairn_buf_printf(&dir, "%s\n", text)) < 0)
        goto done;
    error = cairn_fs_write_atomic(path.ptr, dir.ptr, dir.len, 0644);
done:
    free(text);
    cairn_buf_release(&dir);
    cairn_buf_release(&path);
    return error;
}

/* Severity order for combining several signatures: the worst news wins over good news. */
static int rank(enum cairn_sig_status s)
{
    switch (s) {
    case CAIRN_SIG_INVALID:
        return 3;
    case CAIRN_SIG_VALID:
        return 2;
    case CAIRN_SIG_UNTRUSTED:
        return 1;
    default:
        return 0;
    }
}

int cairn_signature_status(enum cairn_sig_status *out, char **detail, const char *cairndir,
                           const cairn_oid *version)
{
    struct cairn_buf dir = CAIRN_BUF_INIT, path = CAIRN_BUF_INIT, body = CAIRN_BUF_INIT;
    struct cairn_keyring ring = { 0 };
    enum cairn_sig_status best = CAIRN_SIG_MISSING;
    char best_key[CAIRN_KEY_ID_HEXSZ + 1] = "";
    struct dirent *de;
    DIR *d = NULL;
    int error;

    *out = CAIRN_SIG_MISSING;
    if (detail)
        *detail = NULL;
    if ((error = cairn_buf_printf(&path, "%s/" CAIRN_TRUSTED_KEYS_DIR, cairndir)) < 0 ||
        (error = cairn_keyring_load_dir(&ring, path.ptr)) < 0 ||
        (error = version_sig_dir(&dir, cairndir, version)) < 0)
        goto done;
    if (!(d = opendir(dir.ptr))) {
        if (errno != ENOENT)
            error = cairn_error_set_errno(CAIRN_ERROR, "cannot open '%s'", dir.ptr);
        goto done;
    }
    while ((de = readdir(d))) {
        struct cairn_signature sig;
        enum cairn_sig_status s;
        size_t n = strlen(de->d_name);
        char id[CAIRN_KEY_ID_HEXSZ + 1];
        if (n < 5 || strcmp(de->d_name + n - 4, ".sig") != 0 || de->d_name[0] == '.')
            continue;
        snprintf(id, sizeof(id), "%.*s",
                 (int)(n - 4 < CAIRN_KEY_ID_HEXSZ ? n - 4 : CAIRN_KEY_ID_HEXSZ), de->d_name);
        cairn_buf_clear(&body);
        if ((error = cairn_fs_join(&path, dir.ptr, de->d_name)) < 0 ||
            (error = cairn_fs_read_file(&body, path.ptr, 1024)) < 0) {
            if (error != CAIRN_EINVALID)
                goto done;
            error = 0; /* an oversized file is a damaged signature */
            s = CAIRN_SIG_INVALID;
        } else {
            while (body.len && (body.ptr[body.len - 1] == '\n' || body.ptr[body.len - 1] == '\r'))
                body.ptr[--body.len] = '\0';
            if (cairn_signature_parse(&sig, body.ptr) < 0)
                s = CAIRN_SIG_INVALID;
            else
                s = cairn_keyring_check(&ring, &sig, version);
        }
        if (rank(s) > rank(best)) {
            best = s;
            memcpy(best_key, id, sizeof(best_key));
        }
    }
    *out = best;
    if (detail && best != CAIRN_SIG_MISSING && asprintf(detail, "key %s", best_key) < 0) {
        *detail = NULL;
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
    }
done:
    if (d)
        closedir(d);
    cairn_keyring_release(&ring);
    cairn_buf_release(&dir);
    cairn_buf_release(&path);
    cairn_buf_release(&body);
    return error;
}
