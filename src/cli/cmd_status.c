/* cairn status: staged, modified, deleted and untracked files. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cairn/repo.h"
#include "cli.h"
#include "print.h"

const char cmd_status_summary[] = "show staged, modified and untracked files";
const char cmd_status_help[] =
    "usage: cairn status [--json]\n"
    "\n"
    "List staged files (and the stage they are in), files changed or deleted on\n"
    "disk since they were staged or committed, and untracked files. Files whose\n"
    "size, times and inode match the stat cache are not read. Patterns in\n"
    ".cairnignore (one fnmatch pattern per line) hide untracked files.\n";

static const char *kind_name[] = { "staged", "modified", "deleted", "untracked" };

struct st_print {
    int json;
    json_t *arr;
    int count[4];
};

static int print_entry(const struct cairn_status_entry *e, void *payload)
{
    struct st_print *p = payload;
    p->count[e->kind]++;
    if (p->json) {
        json_t *o = json_object();
        json_object_set_new(o, "status", json_string(kind_name[e->kind]));
        json_object_set_new(o, "path", json_string(e->path));
        json_object_set_new(o, "stage", json_string(e->model));
        json_object_set_new(o, "size", json_integer((json_int_t)e->size));
        json_array_append_new(p->arr, o);
    } else {
        char sz[32];
        printf("%-10s %-12s %10s  %s\n", kind_name[e->kind], *e->model ? cli_esc(e->model) : "-",
               cli_fmt_bytes(sz, sizeof(sz), e->size), cli_esc(e->path));
    }
    return 0;
}

int cmd_status(int argc, char **argv)
{
    struct cairn_repo *repo = NULL;
    struct st_print p = { 0 };
    int error, rc;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            p.json = 1;
        else
            return cli_usage("status", "unknown argument '%s'", argv[i]);
    }
    if ((rc = cli_open_repo(&repo)) != 0)
        return rc;
    if (p.json)
        p.arr = json_array();
    error = cairn_repo_status(repo, print_entry, &p);
    cairn_repo_free(repo);
    if (error < 0) {
        json_decref(p.arr);
        return cli_fail(error);
    }
    if (p.json)
        cli_print_json(p.arr);
    else if (!p.count[0] && !p.count[1] && !p.count[2] && !p.count[3])
        printf("nothing staged, nothing changed\n");
    return EXIT_OK;
}
