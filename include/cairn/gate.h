/*
 * Gates, metrics, evaluation commands and signatures (SPEC §5).
 *
 *  - Metrics: struct cairn_values (cairn/values.h), read from the JSON an
 *    eval command prints or from a --metrics/--params file.
 *  - Policies: the YAML gate file, parsed into checks of pluggable kinds
 *    (metric, signature, data), with a stable digest so "did this version
 *    pass THIS policy" can be asked later.
 *  - Evaluation: a policy against one version, with facts supplied by the
 *    caller through struct cairn_gate_ctx callbacks (the registry
 *    implements them), giving a result per check and a JSON form to store.
 *  - Eval commands: run `sh -c COMMAND` in its own process group with a
 *    timeout and capture its stdout.
 *  - Signatures: ed25519 (libsodium) keys in small text files, signatures
 *    over a version id, trusted public keys loaded from a directory.
 *
 * Nothing here prints or exits. Unless stated, functions are safe to call
 * from several threads on different objects; objects themselves are not
 * locked.
 */
#ifndef CAIRN_GATE_H
#define CAIRN_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn/common.h"
#include "cairn/values.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- policies ---------------------------------------------------------- */

struct cairn_policy;

/*
 * Parse a gate policy. Any mistake - YAML syntax, unknown key or check kind,
 * wrong type, a metric check without `metric`, an empty check list - fails
 * with CAIRN_EINVALID and "NAME:LINE:COL: message". *out is a new policy the
 * caller frees with cairn_policy_free().
 */
int cairn_policy_parse(struct cairn_policy **out, const char *name, const void *data, size_t len);
int cairn_policy_load_file(struct cairn_policy **out, const char *path);
void cairn_policy_free(struct cairn_policy *p);

/* Number of checks. */
size_t cairn_policy_count(const struct cairn_policy *p);

/*
 * Canonical JSON of the parsed policy (defaults filled in, keys sorted,
 * numbers at full precision), and its BLAKE3: two files that mean the same
 * checks have the same digest whatever their comments, order of keys or
 * spelling of numbers. *out is malloc'd.
 */
int cairn_policy_to_json(char **out, const struct cairn_policy *p);
int cairn_policy_digest(cairn_oid *out, const struct cairn_policy *p);

/* ---- evaluation ---------------------------------------------------------- */

enum cairn_sig_status {
    CAIRN_SIG_VALID,     /* signed by a trusted key, signature verifies */
    CAIRN_SIG_MISSING,   /* no signature recorded */
    CAIRN_SIG_UNTRUSTED, /* signed, but by a key not in the trusted set */
    CAIRN_SIG_INVALID,   /* a signature that does not verify */
};

/*
 * Facts the evaluator needs, supplied by the caller (the registry). Each
 * callback returns 0, or a negative CAIRN_E* code with a message set for a
 * runtime failure (the check then gets verdict ERROR with that message).
 * Absent facts are not errors: they are reported through the out flags. A
 * NULL callback makes checks that need it ERROR. `version` is the hex id.
 */
struct cairn_gate_ctx {
    void *payload;
    /* The version's metric `name` (numeric); *found false when not recorded. */
    int (*metric)(const struct cairn_gate_ctx *ctx, const char *version, const char *name,
                  double *value, bool *found);
    /*
     * The metric of the version that `alias` of the same model points to now.
     * *alias_found false when the alias is not set; *found false when that
     * version has no such metric.
     */
    int (*alias_metric)(const struct cairn_gate_ctx *ctx, const char *alias, const char *name,
                        double *value, bool *alias_found, bool *found);
    /* Signature state; *detail (malloc'd, may stay NULL) names the key. */
    int (*signature_status)(const struct cairn_gate_ctx *ctx, const char *version,
                            enum cairn_sig_status *status, char **detail);
    /* Whether the version's datasets passed `data validate`; *detail malloc'd or NULL. */
    int (*data_validated)(const struct cairn_gate_ctx *ctx, const char *version, bool *ok,
                          char **detail);
};

enum cairn_verdict { CAIRN_VERDICT_PASS, CAIRN_VERDICT_FAIL, CAIRN_VERDICT_ERROR };

/* "pass", "fail", "error"; cairn_verdict_parse returns -1 for anything else. */
const char *cairn_verdict_name(enum cairn_verdict v);
int cairn_verdict_parse(const char *s);

struct cairn_check_result {
    char *kind;     /* "metric", "signature", "data", ... */
    char *metric;   /* metric checks: the metric name; else NULL */
    bool has_value; /* numeric value present */
    double value;
    char *value_text; /* human form of the value ("0.912", "signed by 1a2b…", "missing") */
    char *bound;      /* "≥ 0.900", "≥ production 0.912 - 0.005", "required" */
    enum cairn_verdict verdict;
    char *reason;  /* why it failed or errored; NULL on pass */
    int line, col; /* position of the check in the policy file */
};

struct cairn_gate_result {
    char *version;              /* hex id evaluated */
    cairn_oid policy;           /* cairn_policy_digest() of the policy */
    enum cairn_verdict verdict; /* PASS only if every check passed; FAIL if any failed */
    size_t count;
    struct cairn_check_result *checks;
};

/*
 * Evaluate every check of `p` for `version`. Failing checks are not errors:
 * the function returns 0 and the verdicts say what failed. Negative only
 * when the evaluation itself could not run (out of memory). *out is a new
 * result freed with cairn_gate_result_free().
 */
int cairn_gate_evaluate(struct cairn_gate_result **out, const struct cairn_policy *p,
                        const struct cairn_gate_ctx *ctx, const char *version);
void cairn_gate_result_free(struct cairn_gate_result *r);

/*
 * Stable JSON schema (docs/gates.md):
 * {"version":"..","policy":"<hex>","verdict":"pass|fail|error",
 *  "checks":[{"kind":..,"metric":..|null,"value":n|null,"value_text":..,
 *             "bound":..,"verdict":..,"reason":..|null,"line":n,"col":n}]}
 * *out is malloc'd. _from_json reads it back (for stored results).
 */
int cairn_gate_result_to_json(char **out, const struct cairn_gate_result *r);
int cairn_gate_result_from_json(struct cairn_gate_result **out, const char *json, size_t len);

/* ---- eval commands ---------------------------------------------------- */

#define CAIRN_EVALCMD_DEFAULT_STDOUT_LIMIT ((size_t)1 << 20)

struct cairn_evalcmd_opts {
    const char *command;    /* run as `/bin/sh -c COMMAND` */
    const char *const *env; /* NULL-terminated "NAME=VALUE" additions/overrides; may be NULL */
    const char *cwd;        /* working directory, NULL for ours */
    uint64_t timeout_ms;    /* 0: no timeout */
    uint64_t kill_grace_ms; /* SIGTERM to SIGKILL delay; 0 means 2000 */
    size_t stdout_limit;    /* 0 means CAIRN_EVALCMD_DEFAULT_STDOUT_LIMIT */
    size_t stderr_tail;     /* 0: stderr goes to ours; else keep its last N bytes */
};

struct cairn_evalcmd_result {
    char *out; /* captured stdout, NUL-terminated (malloc'd) */
    size_t out_len;
    char *err_tail; /* last stderr_tail bytes of stderr, or NULL */
    bool exited;    /* normal exit: exit_code is valid */
    int exit_code;
    bool signaled; /* killed by a signal: term_signal is valid */
    int term_signal;
    bool timed_out; /* we killed it at the deadline */
    bool truncated; /* stdout went over the limit; we killed it */
    double elapsed; /* seconds */
};

/*
 * Run the command in its own process group with stdin from /dev/null,
 * stdout captured and stderr passed through or tail-captured. At the
 * timeout, or when stdout exceeds its limit, the whole group gets SIGTERM
 * and, after the grace period, SIGKILL; any processes left in the group
 * when the command exits are killed too. Returns 0 when the command ran
 * (whatever its status; see the result) and negative when it could not be
 * started. Blocks the calling thread; safe in a multi-threaded process
 * (posix_spawn, no allocation in the child). Release with
 * cairn_evalcmd_result_release().
 */
int cairn_evalcmd_run(struct cairn_evalcmd_result *out, const struct cairn_evalcmd_opts *opts);
void cairn_evalcmd_result_release(struct cairn_evalcmd_result *r);

/*
 * 0 when the command exited 0 and was not truncated, else CAIRN_ERROR with
 * a precise message ("command exited with status 2", "command killed by
 * signal 9 (Killed)", "command timed out after 30s", "command output larger
 * than the limit"), plus the last line of the stderr tail when one was
 * captured.
 */
int cairn_evalcmd_check(const struct cairn_evalcmd_result *r);

/*
 * Run, check, and parse stdout as a flat JSON metrics object into `out`
 * (initialised by the caller). Any failure leaves `out` empty: nothing is
 * half-recorded.
 */
int cairn_evalcmd_metrics(struct cairn_values *out, const struct cairn_evalcmd_opts *opts);

/* ---- signatures -------------------------------------------------------- */

#define CAIRN_KEY_ID_HEXSZ    16
#define CAIRN_SIGNATURE_BYTES 64
#define CAIRN_PUBKEY_BYTES    32
/* The domain prefix every version signature covers, NUL included. */
#define CAIRN_SIGN_DOMAIN_VERSION "cairn-version-v1"

struct cairn_pubkey {
    uint8_t key[CAIRN_PUBKEY_BYTES];
    char id[CAIRN_KEY_ID_HEXSZ + 1]; /* first 16 hex of BLAKE3(key) */
};

/* A secret key; cairn_seckey_release() wipes it. */
struct cairn_seckey {
    uint8_t key[64]; /* libsodium ed25519 secret key (seed || public key) */
    struct cairn_pubkey pub;
};

struct cairn_signature {
    uint8_t sig[CAIRN_SIGNATURE_BYTES];
    char key_id[CAIRN_KEY_ID_HEXSZ + 1];
};

/*
 * Generate a key pair and write the secret key to `secret_path` (mode 0600)
 * and the public key to `public_path` (mode 0644). Refuses with
 * CAIRN_EEXISTS, writing nothing, when either file exists; a crash leaves
 * either a complete file or none. `pub_out` may be NULL.
 */
int cairn_keygen(struct cairn_pubkey *pub_out, const char *secret_path, const char *public_path);

/* Load a secret key; warns (cairn_warn) when the file is readable by others. */
int cairn_seckey_load(struct cairn_seckey *out, const char *path);
void cairn_seckey_release(struct cairn_seckey *k);

int cairn_pubkey_load(struct cairn_pubkey *out, const char *path);
int cairn_pubkey_parse(struct cairn_pubkey *out, const char *source, const void *data, size_t len);
/* The file text of a public key ("cairn-ed25519-public-v1\n<hex>\n"); malloc'd. */
int cairn_pubkey_format(char **out, const struct cairn_pubkey *k);

/* Sign/verify CAIRN_SIGN_DOMAIN_VERSION "\0" || the 32 id bytes. */
int cairn_sign_version(struct cairn_signature *out, const struct cairn_seckey *k,
                       const cairn_oid *version);
/* 0 when valid; CAIRN_ECHECK when the signature does not verify with `k`. */
int cairn_verify_version(const struct cairn_signature *sig, const struct cairn_pubkey *k,
                         const cairn_oid *version);

/*
 * Text form of a signature for storage: "ed25519:KEYID:HEX128" (malloc'd),
 * and its strict parser.
 */
int cairn_signature_format(char **out, const struct cairn_signature *sig);
int cairn_signature_parse(struct cairn_signature *out, const char *text);

/* Trusted public keys, e.g. every *.pub file of .cairn/trusted_keys/. */
struct cairn_keyring {
    struct cairn_pubkey *keys;
    size_t count;
};
/*
 * Load every regular "*.pub" file of `dir` (a missing directory is an empty
 * ring). A file that does not parse fails the load: a trust store should not
 * silently shrink. Release with cairn_keyring_release().
 */
int cairn_keyring_load_dir(struct cairn_keyring *out, const char *dir);
void cairn_keyring_release(struct cairn_keyring *ring);
const struct cairn_pubkey *cairn_keyring_find(const struct cairn_keyring *ring, const char *key_id);
/*
 * Classify a stored signature: VALID (trusted key, verifies), UNTRUSTED (key
 * not in the ring) or INVALID (does not verify). `sig` NULL gives MISSING.
 */
enum cairn_sig_status cairn_keyring_check(const struct cairn_keyring *ring,
                                          const struct cairn_signature *sig,
                                          const cairn_oid *version);

/*
 * Signatures of a repository's versions. The registry has no table for
 * them, so they are files beside it: CAIRNDIR/signatures/<version hex>/
 * <key id>.sig, one formatted signature each, written atomically (a
 * re-signature by the same key replaces the file). Trusted keys are the
 * *.pub files of CAIRNDIR/trusted_keys/.
 */
#define CAIRN_SIGNATURES_DIR   "signatures"
#define CAIRN_TRUSTED_KEYS_DIR "trusted_keys"

int cairn_signature_store(const char *cairndir, const cairn_oid *version,
                          const struct cairn_signature *sig);

/*
 * The signature state of `version` against the repository's trusted keys:
 * INVALID if any signature by a trusted key fails to verify (or a stored
 * signature file is damaged), else VALID if one verifies, else UNTRUSTED if
 * there are signatures by other keys, else MISSING. *detail (malloc'd, may
 * be NULL) names the key concerned. This is what a gate context's
 * signature_status callback needs.
 */
int cairn_signature_status(enum cairn_sig_status *out, char **detail, const char *cairndir,
                           const cairn_oid *version);

/* "valid", "missing", "untrusted", "invalid". */
const char *cairn_sig_status_name(enum cairn_sig_status s);

/* ---- a gate context answered by a repository ---------------------------- */

struct cairn_repo;

/*
 * Facts from a repository for versions of `model`: numeric metrics from the
 * registry, the metric of the version an alias of `model` points to, and
 * cairn_signature_status(). data_validated is left NULL here: lib/gate does
 * not reach into repositories' dataset lineage; cairn_repo_gate_ctx_init()
 * (include/cairn/release.h) sets it. A metric recorded as a string or
 * boolean is an ERROR for a metric check.
 * Pass &x.ctx to cairn_gate_evaluate(); `repo` must outlive it.
 */
struct cairn_gate_repo_ctx {
    struct cairn_gate_ctx ctx;
    struct cairn_repo *repo;
    char model[65];
};
void cairn_gate_repo_ctx_init(struct cairn_gate_repo_ctx *out, struct cairn_repo *repo,
                              const char *model);

#ifdef __cplusplus
}
#endif

#endif
