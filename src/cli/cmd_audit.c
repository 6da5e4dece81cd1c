/*
 * cairn audit [--verify] [--json]: the hash-chained log of every mutating
 * action, and a check that nobody edited or removed an entry.
 */
#include <jansson.h>
#include <stdio.h>

#include "cairn/registry.h"
#include "cairn/repo.h"
#include "cli.h"
#include "opt.h"
#include "print.h"
#include "util/hash.h"

const char cmd_audit_summary[] = "list the audit log, or verify its hash chain";
const char cmd_audit_help[] =
    "List every event of the audit log, oldest first: commits, tags, alias\n"
    "changes, gate results, promotions (forced ones with their reason),\n"
    "signatures, recorded metrics. Each entry stores the BLAKE3 of the entry\n"
    "before it, so editing or deleting any row breaks the chain.\n";

enum { AUDIT_VERIFY, AUDIT_JSON };
const struct cli_opt cmd_audit_opts[] = {
    [AUDIT_VERIFY] = { CLI_OPT_FLAG, "verify", 0, NULL,
                       "recompute the chain; exit 3 naming the first bad entry", 0 },
    [AUDIT_JSON] = { CLI_OPT_FLAG, "json", 0, NULL, "machine-readable (see docs/cli-json.md)", 0 },
    CLI_OPTS_END,
};

struct audit_ctx {
    json_t *arr;
    long n;
};

static int print_entry(const struct cairn_audit_entry *e, void *payload)
{
    struct audit_ctx *c = payload;
    char when[64];
    c->n++;
    if (c->arr) {
        json_t *o = json_object(), *d = json_loads(e->details, 0, NULL);
        json_object_set_new(o, "seq", json_integer(e->seq));
        json_object_set_new(o, "time_ns", json_integer(e->time_ns));
        json_object_set_new(o, "time", json_string(cli_fmt_time(when, sizeof(when), e->time_ns)));
        json_object_set_new(o, "actor", json_string(e->actor));
        json_object_set_new(o, "action", json_string(e->action));
        json_object_set_new(o, "subject", json_string(e->subject));
        json_object_set_new(o, "details", d ? d : json_string(e->details));
        json_object_set_new(o, "prev", cli_oid_json(&e->prev));
        json_object_set_new(o, "hash", cli_oid_json(&e->hash));
        json_array_append_new(c->arr, o);
    } else {
        if (c->n == 1)
            printf("%5s  %-19s  %-12s  %-9s  %-24s  %s\n", "SEQ", "TIME", "ACTOR", "ACTION",
                   "SUBJECT", "DETAILS");
        printf("%5lld  %-19s  %-12s  %-9s  %-24s  %s\n", (long long)e->seq,
               cli_fmt_time(when, sizeof(when), e->time_ns), e->actor, e->action, e->subject,
               e->details);
    }
    return 0;
}

static int count_entry(const struct cairn_audit_entry *e, void *payload)
{
    (void)e;
    ((struct audit_ctx *)payload)->n++;
    return 0;
}

int cmd_audit(int argc, char **argv)
{
    struct cairn_repo *repo = NULL;
    struct audit_ctx ctx = { NULL, 0 };
    struct cli_parsed args;
    int json, verify, error = 0, rc;
    int64_t bad = 0;

    if ((rc = cli_opt_parse(&args, "audit", cmd_audit_opts, argc, argv)) != 0)
        return rc;
    json = args.v[AUDIT_JSON].count > 0;
    verify = args.v[AUDIT_VERIFY].count > 0;
    cli_parsed_release(&args);
    if ((rc = cli_open_repo(&repo)) != 0)
        return rc;
    if (verify) {
        error = cairn_registry_audit_verify(cairn_repo_registry(repo), &bad);
        if (error < 0 && error != CAIRN_ECHECK)
            goto done;
        if (!error &&
            (error = cairn_registry_audit_list(cairn_repo_registry(repo), count_entry, &ctx)) < 0)
            goto done;
        if (json) {
            json_t *o = json_object();
            json_object_set_new(o, "ok", json_boolean(!error));
            json_object_set_new(o, "entries", error ? json_null() : json_integer(ctx.n));
            json_object_set_new(o, "bad_seq", error ? json_integer(bad) : json_null());
            json_object_set_new(o, "error", error ? json_string(cairn_error_last()) : json_null());
            cli_print_json(o);
        } else if (!error) {
            printf("audit log intact: %ld entr%s\n", ctx.n, ctx.n == 1 ? "y" : "ies");
        }
        goto done;
    }
    if (json)
        ctx.arr = json_array();
    if ((error = cairn_registry_audit_list(cairn_repo_registry(repo), print_entry, &ctx)) < 0)
        goto done;
    if (json) {
        cli_print_json(ctx.arr);
        ctx.arr = NULL;
    } else if (!ctx.n) {
        printf("no audit events\n");
    }
done:
    json_decref(ctx.arr);
    cairn_repo_free(repo);
    return error < 0 ? cli_fail(error) : EXIT_OK;
}
