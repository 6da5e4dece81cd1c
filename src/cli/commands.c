/*
 * The command table. Keep it sorted by name; `cairn help` prints it in this
 * order. Each command's help page lives beside its code in cmd_NAME.c.
 */
#include <string.h>

#include "cli.h"
#include "opt.h"

/*
 * A command that declares its options as a table (opt.h) defines
 * cmd_NAME_opts; its --help is then the usage line and option list made
 * from the table around the prose of cmd_NAME_help; a command made of
 * subcommands defines cmd_NAME_subs instead (a table per subcommand). The
 * weak declarations make the tables optional while the commands move to
 * them.
 */
#define CMD(name)                                                          \
    extern int cmd_##name(int, char **);                                   \
    extern const char cmd_##name##_summary[];                              \
    extern const char cmd_##name##_help[];                                 \
    extern const struct cli_opt cmd_##name##_opts[] __attribute__((weak)); \
    extern const struct cli_subcommand cmd_##name##_subs[] __attribute__((weak));
CMD(add)
CMD(alias)
CMD(audit)
CMD(checkout)
CMD(clone)
CMD(commit)
CMD(completion)
CMD(data)
CMD(diff)
CMD(eval)
CMD(fsck)
CMD(gate)
CMD(gc)
CMD(help)
CMD(init)
CMD(keygen)
CMD(lineage)
CMD(loadgen)
CMD(log)
CMD(metrics)
CMD(promote)
CMD(prune)
CMD(pull)
CMD(push)
CMD(quantize)
CMD(remote)
CMD(report)
CMD(rollback)
CMD(rollout)
CMD(serve)
CMD(serve_model)
CMD(show)
CMD(sign)
CMD(status)
CMD(tag)
CMD(token)
CMD(verify)
CMD(version)
#undef CMD

/* Braced macro bodies: clang-format 14 would split this one over four lines. */
/* clang-format off */
#define ROWN(str, name) { str, cmd_##name, cmd_##name##_summary, cmd_##name##_help, cmd_##name##_opts, cmd_##name##_subs }
/* clang-format on */
#define ROW(name) ROWN(#name, name)
/* One row per line, sorted: clang-format would pack them. */
/* clang-format off */
const struct cli_command cli_commands[] = {
    ROW(add),
    ROW(alias),
    ROW(audit),
    ROW(checkout),
    ROW(clone),
    ROW(commit),
    ROW(completion),
    ROW(data),
    ROW(diff),
    ROW(eval),
    ROW(fsck),
    ROW(gate),
    ROW(gc),
    ROW(help),
    ROW(init),
    ROW(keygen),
    ROW(lineage),
    ROW(loadgen),
    ROW(log),
    ROW(metrics),
    ROW(promote),
    ROW(prune),
    ROW(pull),
    ROW(push),
    ROW(quantize),
    ROW(remote),
    ROW(report),
    ROW(rollback),
    ROW(rollout),
    ROW(serve),
    ROWN("serve-model", serve_model),
    ROW(show),
    ROW(sign),
    ROW(status),
    ROW(tag),
    ROW(token),
    ROW(verify),
    ROW(version),
    { NULL, NULL, NULL, NULL, NULL, NULL },
};
/* clang-format on */
#undef ROW
#undef ROWN

const struct cli_command *cli_find(const char *name)
{
    for (const struct cli_command *c = cli_commands; c->name; c++)
        if (!strcmp(c->name, name))
            return c;
    return NULL;
}
