/*
 * cairn completion bash|zsh: shell completion from the commands' option
 * tables (opt.h), so a new option completes the day it is added.
 *
 * The script is small and asks cairn itself: `cairn completion candidates
 * -- WORD...` gets the words of the command line after "cairn", the last
 * one being completed, and prints one candidate a line: command and
 * subcommand names, the options of that command's table, and for
 * arguments named REF, NAME or MODEL (and options taking them) the models,
 * versions, aliases and tags of the repository. Where a file is wanted it
 * prints nothing and the shell completes file names (complete -o default).
 * Commands without a table yet complete their name and file names only.
 */
#include <stdio.h>
#include <string.h>

#include "cairn/registry.h"
#include "cairn/repo.h"
#include "cli.h"
#include "opt.h"

const char cmd_completion_summary[] = "print a bash or zsh completion script";
const char cmd_completion_help[] =
    "Print the completion script for SHELL (bash or zsh) on stdout. To use it:\n"
    "\n"
    "  bash:  source <(cairn completion bash)     (or save it in\n"
    "         /usr/share/bash-completion/completions/cairn)\n"
    "  zsh:   source <(cairn completion zsh)\n"
    "\n"
    "Commands, subcommands and options come from each command's option table;\n"
    "references (NAME, NAME@vN, NAME@ALIAS, NAME@TAG) from the repository of\n"
    "the current directory or -C DIR.\n";

enum { COMPLETION_SHELL };
const struct cli_opt cmd_completion_opts[] = {
    [COMPLETION_SHELL] = { CLI_OPT_ARG, "SHELL", 0, NULL, "bash or zsh", CLI_OPT_REQUIRED },
    CLI_OPTS_END,
};

static const char bash_script[] =
    "# cairn completion for bash: source <(cairn completion bash)\n"
    "_cairn() {\n"
    "    local IFS=$'\\n'\n"
    "    COMPREPLY=($(\"${COMP_WORDS[0]}\" completion candidates -- "
    "\"${COMP_WORDS[@]:1:COMP_CWORD}\" 2>/dev/null))\n"
    "}\n"
    "complete -o default -o bashdefault -F _cairn cairn\n";

static const char zsh_prelude[] =
    "# cairn completion for zsh: source <(cairn completion zsh)\n"
    "autoload -U +X compinit && compinit\n"
    "autoload -U +X bashcompinit && bashcompinit\n";

static int starts(const char *s, const char *prefix)
{
    return !strncmp(s, prefix, strlen(prefix));
}

static void say(const char *word, const char *cur)
{
    if (starts(word, cur))
        printf("%s\n", word);
}

/* Whether an argument or option value names a version or a model. */
static int wants_ref(const char *name)
{
    return name && (!strcmp(name, "REF") || !strcmp(name, "REF1") || !strcmp(name, "REF2") ||
                    !strcmp(name, "NAME") || !strcmp(name, "MODEL"));
}

struct refs {
    struct cairn_registry *reg;
    const char *cur;
};

static int alias_cb(const struct cairn_alias_entry *e, void *payload)
{
    struct refs *r = payload;
    char ref[160];
    snprintf(ref, sizeof(ref), "%s@%s", e->model, e->alias);
    say(ref, r->cur);
    return 0;
}

struct tag_ctx {
    struct refs *r;
    const char *model;
};

static int tag_cb(const char *tag, const cairn_oid *v, void *payload)
{
    struct tag_ctx *t = payload;
    char ref[160];
    (void)v;
    snprintf(ref, sizeof(ref), "%s@%s", t->model, tag);
    say(ref, t->r->cur);
    return 0;
}

static int version_cb(const struct cairn_version *v, void *payload)
{
    struct refs *r = payload;
    struct tag_ctx t = { r, v->model };
    char ref[160];
    snprintf(ref, sizeof(ref), "%s@v%d", v->model, v->number);
    say(ref, r->cur);
    return cairn_registry_tag_list(r->reg, &v->id, tag_cb, &t);
}

static int model_cb(const struct cairn_model_info *m, void *payload)
{
    struct refs *r = payload;
    say(m->name, r->cur);
    /* Versions only once the model is typed: a repository has many. */
    if (strchr(r->cur, '@') && starts(r->cur, m->name) && r->cur[strlen(m->name)] == '@')
        return cairn_registry_version_list(r->reg, m->name, 0, version_cb, r);
    return 0;
}

static void repo_refs(const char *cur)
{
    struct cairn_repo *repo = NULL;
    struct refs r = { NULL, cur };

    if (cairn_repo_open(&repo, cli_g.dir) < 0)
        return; /* outside a repository: nothing to offer */
    r.reg = cairn_repo_registry(repo);
    cairn_registry_model_list(r.reg, model_cb, &r);
    if (strchr(cur, '@'))
        cairn_registry_alias_list(r.reg, NULL, alias_cb, &r);
    cairn_repo_free(repo);
}

static const struct cli_opt *find_opt(const struct cli_opt *opts, const char *word)
{
    for (const struct cli_opt *o = opts; o && o->type != CLI_OPT_END; o++)
        if (o->type != CLI_OPT_ARG &&
            ((word[0] == '-' && word[1] == '-' && !strcmp(word + 2, o->name)) ||
             (word[0] == '-' && o->alias && word[1] == o->alias && !word[2])))
            return o;
    return NULL;
}

/* The candidates for words[n-1] given words[0..n-2]. */
static void candidates(int n, char **words)
{
    const char *cur = n ? words[n - 1] : "";
    const struct cli_command *cmd = NULL;
    const struct cli_opt *opts = NULL;
    int i = 0, npos = 0;

    /* Global options before the command. */
    while (i < n - 1 && words[i][0] == '-') {
        if (!strcmp(words[i], "-C") && i + 1 < n - 1)
            cli_g.dir = words[++i];
        i++;
    }
    if (i == n - 1) {
        if (cur[0] == '-') {
            static const char *const globals[] = { "-C", "--progress", "--no-progress", "--version",
                                                   "--help" };
            for (size_t k = 0; k < sizeof(globals) / sizeof(*globals); k++)
                say(globals[k], cur);
            return;
        }
        for (const struct cli_command *c = cli_commands; c->name; c++)
            say(c->name, cur);
        return;
    }
    if (!(cmd = cli_find(words[i++])))
        return;
    opts = cmd->opts;
    if (cmd->subs) {
        if (i == n - 1) {
            for (const struct cli_subcommand *s = cmd->subs; s->name; s++)
                say(s->name, cur);
            return;
        }
        for (const struct cli_subcommand *s = cmd->subs; s->name; s++)
            if (!strcmp(s->name, words[i]))
                opts = s->opts;
        i++;
    }
    if (!opts)
        return;
    /* Walk the words before the current one: option values and positionals. */
    for (; i < n - 1; i++) {
        const struct cli_opt *o;
        if (!strcmp(words[i], "--"))
            continue;
        if ((o = find_opt(opts, words[i]))) {
            if (o->type != CLI_OPT_FLAG && i == n - 2) {
                if (wants_ref(o->value_name))
                    repo_refs(cur);
                return; /* the current word is this option's value */
            }
            i += o->type != CLI_OPT_FLAG;
            continue;
        }
        if (words[i][0] != '-')
            npos++;
    }
    if (cur[0] == '-') {
        for (const struct cli_opt *o = opts; o->type != CLI_OPT_END; o++) {
            char name[80];
            if (o->type == CLI_OPT_ARG || (o->flags & CLI_OPT_HIDDEN))
                continue;
            snprintf(name, sizeof(name), "--%s", o->name);
            say(name, cur);
        }
        say("--help", cur);
        return;
    }
    for (const struct cli_opt *o = opts; o->type != CLI_OPT_END; o++) {
        if (o->type != CLI_OPT_ARG)
            continue;
        if (npos == 0 || (o->flags & CLI_OPT_REPEAT)) {
            if (wants_ref(o->name))
                repo_refs(cur);
            return;
        }
        npos--;
    }
}

int cmd_completion(int argc, char **argv)
{
    struct cli_parsed args;
    const char *shell;
    int rc;

    /* The script's call: cairn completion candidates -- WORD... */
    if (argc >= 3 && !strcmp(argv[1], "candidates") && !strcmp(argv[2], "--")) {
        candidates(argc - 3, argv + 3);
        return EXIT_OK;
    }
    if ((rc = cli_opt_parse(&args, "completion", cmd_completion_opts, argc, argv)) != 0)
        return rc;
    shell = args.v[COMPLETION_SHELL].str;
    if (!strcmp(shell, "bash")) {
        fputs(bash_script, stdout);
    } else if (!strcmp(shell, "zsh")) {
        fputs(zsh_prelude, stdout);
        fputs(bash_script, stdout);
    } else {
        rc = cli_usage("completion", "unknown shell '%s': use bash or zsh", shell);
    }
    cli_parsed_release(&args);
    return rc;
}
