/* cairn tag REF TAG: an immutable extra name for a version. */
#include <stdio.h>
#include <string.h>

#include "cairn/registry.h"
#include "cairn/repo.h"
#include "cli.h"
#include "util/hash.h"

const char cmd_tag_summary[] = "give a version an immutable name (NAME@TAG)";
const char cmd_tag_help[] =
    "usage: cairn tag REF TAG\n"
    "\n"
    "Name the version REF as NAME@TAG. Tags are immutable: a tag that exists\n"
    "cannot be moved to another version (use an alias for moving names).\n";

int cmd_tag(int argc, char **argv)
{
    struct cairn_repo *repo = NULL;
    struct cairn_registry *r;
    struct cairn_version v;
    int error, rc;
    char sid[16];

    if (argc != 3)
        return cli_usage("tag", "give a version and a tag: REF TAG");
    if (argv[1][0] == '-' || argv[2][0] == '-')
        return cli_usage("tag", "unknown option '%s'", argv[1][0] == '-' ? argv[1] : argv[2]);
    if (cairn_name_valid(argv[2], "tag") < 0)
        return cli_fail(CAIRN_EINVALID);
    if (!strncmp(argv[2], "v", 1) && argv[2][1] >= '0' && argv[2][1] <= '9')
        return cli_usage("tag", "tag '%s' looks like a version number", argv[2]);
    if ((rc = cli_open_repo(&repo)) != 0)
        return rc;
    r = cairn_repo_registry(repo);
    if ((error = cairn_repo_resolve(repo, argv[1], &v)) < 0)
        goto done;
    if ((error = cairn_registry_begin(r)) < 0)
        goto done;
    if ((error = cairn_registry_tag_add(r, v.model, argv[2], &v.id, cairn_repo_user(repo))) == 0) {
        char subject[160], details[160], hex[CAIRN_OID_HEXSZ + 1];
        snprintf(subject, sizeof(subject), "%s@%s", v.model, argv[2]);
        snprintf(details, sizeof(details), "{\"id\":\"%s\",\"version\":%d}",
                 cairn_oid_fmt(hex, &v.id), v.number);
        error = cairn_registry_audit_append(r, cairn_repo_user(repo), "tag", subject, details);
    }
    if (error < 0)
        cairn_registry_rollback(r);
    else
        error = cairn_registry_commit(r);
    if (!error)
        printf("tagged %s@v%d (%s) as %s@%s\n", v.model, v.number, cli_short_id(sid, &v.id),
               v.model, argv[2]);
    cairn_version_release(&v);
done:
    cairn_repo_free(repo);
    return error < 0 ? cli_fail(error) : EXIT_OK;
}
