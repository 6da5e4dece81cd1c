/*
 * REF resolution (SPEC §2): NAME, NAME@vN, NAME@ALIAS, NAME@TAG,
 * NAME@REMOTE/ALIAS (where ALIAS stood on REMOTE at the last push or pull,
 * git's origin/main), or a hex id prefix of at least 7 digits. A bare word
 * that is both a model name and a hex prefix means the model: names are
 * what people type.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repo/repo_internal.h"
#include "util/hash.h"

static int is_hex(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isxdigit((unsigned char)*s) || isupper((unsigned char)*s))
            return 0;
    return 1;
}

static int is_vnumber(const char *s, int *out)
{
    char *end;
    long n;
    if (s[0] != 'v' || !isdigit((unsigned char)s[1]))
        return 0;
    n = strtol(s + 1, &end, 10);
    if (*end || n <= 0 || n > 1000000000)
        return 0;
    *out = (int)n;
    return 1;
}

struct tracking_find {
    const char *model, *alias;
    cairn_oid version;
    int found;
};

static int tracking_match(const struct cairn_tracking_ref *t, void *payload)
{
    struct tracking_find *f = payload;
    if (strcmp(t->model, f->model) || strcmp(t->alias, f->alias))
        return 0;
    f->version = t->version;
    f->found = 1;
    return 1;
}

/* NAME@REMOTE/ALIAS: the remote-tracking alias the last push or pull saw. */
static int resolve_tracking(struct cairn_registry *r, const char *ref, const char *name,
                            const char *rest, struct cairn_version *out)
{
    const char *slash = strchr(rest, '/');
    struct tracking_find f = { .model = name, .alias = slash + 1 };
    char remote[80];
    size_t n = (size_t)(slash - rest);
    int error;

    if (n >= sizeof(remote))
        return cairn_error_set(CAIRN_EINVALID, "invalid ref '%s': remote name too long", ref);
    memcpy(remote, rest, n);
    remote[n] = '\0';
    if (cairn_name_valid(remote, "remote name") < 0 || cairn_name_valid(f.alias, "alias") < 0)
        return cairn_error_set(CAIRN_EINVALID,
                               "invalid ref '%s': after '@' give vN, an alias, a tag or"
                               " REMOTE/ALIAS",
                               ref);
    error = cairn_registry_tracking_list(r, remote, tracking_match, &f);
    if (error < 0)
        return error;
    if (!f.found)
        return cairn_error_set(CAIRN_ENOTFOUND,
                               "no remote-tracking alias '%s/%s' of '%s' (push or pull '%s'"
                               " first)",
                               remote, f.alias, name, remote);
    return cairn_registry_version_get(r, &f.version, out);
}

int cairn_repo_resolve(struct cairn_repo *repo, const char *ref, struct cairn_version *out)
{
    struct cairn_registry *r = repo->registry;
    const char *at = strchr(ref, '@');
    char name[80];
    cairn_oid id;
    int error, number;

    memset(out, 0, sizeof(*out));
    if (!*ref)
        return cairn_error_set(
            CAIRN_EINVALID,
            "empty ref: use NAME, NAME@vN, NAME@ALIAS, NAME@TAG, NAME@REMOTE/ALIAS"
            " or an id prefix of 7+ hex digits");
    if (at) {
        const char *rest = at + 1;
        size_t n = (size_t)(at - ref);
        if (n >= sizeof(name))
            return cairn_error_set(CAIRN_EINVALID, "invalid ref '%s': name too long", ref);
        memcpy(name, ref, n);
        name[n] = '\0';
        if ((error = cairn_name_valid(name, "model name")) < 0)
            return error;
        if (is_vnumber(rest, &number))
            return cairn_registry_version_by_number(r, name, number, out);
        if (strchr(rest, '/'))
            return resolve_tracking(r, ref, name, rest, out);
        if (!*rest || cairn_name_valid(rest, "alias or tag") < 0)
            return cairn_error_set(CAIRN_EINVALID,
                                   "invalid ref '%s': after '@' give vN, an alias or a tag", ref);
        {
            cairn_oid a, t;
            int ea = cairn_registry_alias_get(r, name, rest, &a);
            int et = cairn_registry_tag_get(r, name, rest, &t);
            if (ea < 0 && ea != CAIRN_ENOTFOUND)
                return ea;
            if (et < 0 && et != CAIRN_ENOTFOUND)
                return et;
            if (ea == 0 && et == 0 && cairn_oid_cmp(&a, &t))
                return cairn_error_set(CAIRN_EAMBIGUOUS,
                                       "'%s' is both an alias and a tag of '%s' for different"
                                       " versions",
                                       rest, name);
            if (ea == 0 || et == 0)
                return cairn_registry_version_get(r, ea == 0 ? &a : &t, out);
            {
                struct cairn_model_info m;
                if (cairn_registry_model_get(r, name, &m) < 0)
                    return cairn_error_set(CAIRN_ENOTFOUND, "no model named '%s'", name);
            }
            return cairn_error_set(CAIRN_ENOTFOUND, "'%s' has no version, alias or tag '%s'", name,
                                   rest);
        }
    }
    if (cairn_name_valid(ref, "model name") == 0) {
        error = cairn_registry_version_latest(r, ref, out);
        if (error != CAIRN_ENOTFOUND)
            return error;
    }
    if (is_hex(ref)) {
        if (strlen(ref) < 7)
            return cairn_error_set(CAIRN_EINVALID,
                                   "'%s' is neither a model nor a long enough id prefix (7+ hex"
                                   " digits)",
                                   ref);
        if ((error = cairn_registry_version_prefix(r, ref, &id)) < 0)
            return error;
        return cairn_registry_version_get(r, &id, out);
    }
    if (cairn_name_valid(ref, "model name") == 0)
        return cairn_error_set(CAIRN_ENOTFOUND, "no model named '%s'", ref);
    return cairn_error_set(CAIRN_EINVALID,
                           "invalid ref '%s': use NAME, NAME@vN, NAME@ALIAS, NAME@TAG or an id"
                           " prefix of 7+ hex digits",
                           ref);
}
