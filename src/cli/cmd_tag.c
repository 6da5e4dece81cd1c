/* cairn tag REF TAG: an immutable extra name for a version. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cairn/registry.h"
#include "cairn/repo.h"
#include "cli.h"
#include "opt.h"
#include "util/hash.h"

const char cmd_tag_summary[] = "give a version an immutable name (NAME@TAG)";
const char cmd_tag_help[] =
    "Name the version REF as NAME@TAG. Tags are immutable: a tag that exists\n"
    "cannot be moved to another version (use an alias for moving names).\n";

enum { TAG_REF, TAG_TAG, TAG_JSON };
const struct cli_opt cmd_tag_opts[] = {
    [TAG_REF] = { CLI_OPT_ARG, "REF", 0, NULL, "the version to name", CLI_OPT_REQUIRED },
    [TAG_TAG] = { CLI_OPT_ARG, "TAG", 0, NULL, "the new name", CLI_OPT_REQUIRED },
    [TAG_JSON] = { CLI_OPT_FLAG, "json", 0, NULL, "print the new tag as JSON", 0 },
    CLI_OPTS_END,
};

int cmd_tag(int argc, char **argv)
{
    struct cairn_repo *repo = NULL;
    struct cairn_registry *r;
    struct cairn_version v;
    struct cli_parsed args;
    const char *tag;
    int error = 0, rc;
    char sid[16], hex[CAIRN_OID_HEXSZ + 1];

    if ((rc = cli_opt_parse(&args, "tag", cmd_tag_opts, argc, argv)) != 0)
        return rc;
    tag = args.v[TAG_TAG].str;
    if (cairn_name_valid(tag, "tag") < 0) {
        rc = cli_fail(CAIRN_EINVALID);
        goto done;
    }
    if (!strncmp(tag, "v", 1) && tag[1] >= '0' && tag[1] <= '9') {
        rc = cli_usage("tag", "tag '%s' looks like a version number", tag);
        goto done;
    }
    if ((rc = cli_open_repo(&repo)) != 0)
        goto done;
    r = cairn_repo_registry(repo);
    if ((error = cairn_repo_resolve(repo, args.v[TAG_REF].str, &v)) < 0)
        goto done;
    if ((error = cairn_registry_begin(r)) < 0)
        goto release;
    if ((error = cairn_registry_tag_add(r, v.model, tag, &v.id, cairn_repo_user(repo))) == 0) {
        char subject[160], details[160];
        snprintf(subject, sizeof(subject), "%s@%s", v.model, tag);
        snprintf(details, sizeof(details), "{\"id\":\"%s\",\"version\":%d}",
                 cairn_oid_fmt(hex, &v.id), v.number);
        error = cairn_registry_audit_append(r, cairn_repo_user(repo), "tag", subject, details);
    }
    if (error < 0)
        cairn_registry_rollback(r);
    else
        error = cairn_registry_commit(r);
    if (!error && args.v[TAG_JSON].count)
        cli_print_json(json_pack("{s:s, s:s, s:s++, s:s, s:i}", "model", v.model, "tag", tag, "ref",
                                 v.model, "@", tag, "id", cairn_oid_fmt(hex, &v.id), "version",
                                 v.number));
    else if (!error)
        printf("tagged %s@v%d (%s) as %s@%s\n", v.model, v.number, cli_short_id(sid, &v.id),
               v.model, tag);
release:
    cairn_version_release(&v);
done:
    cairn_repo_free(repo);
    cli_parsed_release(&args);
    return error < 0 ? cli_fail(error) : rc;
}
