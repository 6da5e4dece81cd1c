/*
 * cairn prune REF --sparsity F [--structured] [-m MSG] [--json]: a new
 * version of the model with a share F of its weights zeroed by magnitude,
 * derived from REF. The work is cairn_model_derive() (lib/model/derive.c);
 * printing is shared with quantize.
 */
#include <stdio.h>

#include "cairn/model.h"
#include "cli.h"
#include "derive.h"
#include "opt.h"

const char cmd_prune_summary[] = "derive a version with the smallest weights zeroed";
const char cmd_prune_help[] =
    "Check out REF, zero a share F (strictly between 0 and 1) of the weights of\n"
    "every *.safetensors and *.gguf file by magnitude and commit the result as\n"
    "a new version of the same model: its parent is REF, a lineage edge\n"
    "\"derived\" (detail \"prune magnitude-unstructured 0.5\") points to REF, its\n"
    "params are REF's plus derived.method, derived.sparsity, derived.structured and\n"
    "derived.from, and its only metric is size_bytes: measure it again with\n"
    "'cairn eval' before a gate lets it replace REF.\n"
    "\n"
    "Per weight tensor (*.weight, two or more dimensions, F32/F16/BF16),\n"
    "unstructured pruning zeroes exactly round(F * elements) elements of\n"
    "smallest magnitude; --structured zeroes round(F * rows) whole output rows\n"
    "of smallest L2 norm. Dtypes stay; the raw size stays, but zeros compress\n"
    "well in the store. Biases, normalisation parameters and other tensors are\n"
    "kept and listed with the reason. Other files are carried over.\n"
    "\n"
    "Prints the raw size before and after, the bytes the new version added to\n"
    "the store, and per tensor the largest absolute error introduced.\n"
    "\n"
    "Exit status: 2 for F outside (0, 1) or a version without a *.safetensors or\n"
    "*.gguf file.\n";

enum { PRUNE_REF, PRUNE_SPARSITY, PRUNE_STRUCTURED, PRUNE_MESSAGE, PRUNE_JSON };
const struct cli_opt cmd_prune_opts[] = {
    [PRUNE_REF] = { CLI_OPT_ARG, "REF", 0, NULL, "the version to prune", CLI_OPT_REQUIRED },
    [PRUNE_SPARSITY] = { CLI_OPT_STRING, "sparsity", 0, "F",
                         "share of weights (or rows) to zero, 0 < F < 1 (required)",
                         CLI_OPT_REQUIRED },
    [PRUNE_STRUCTURED] = { CLI_OPT_FLAG, "structured", 0, NULL,
                           "zero whole output rows instead of single weights", 0 },
    [PRUNE_MESSAGE] = { CLI_OPT_STRING, "message", 'm', "MSG",
                        "the version's message (default \"prune REF to sparsity F\")", 0 },
    [PRUNE_JSON] = { CLI_OPT_FLAG, "json", 0, NULL,
                     "print the result as JSON (docs/compression.md)", 0 },
    CLI_OPTS_END,
};

int cmd_prune(int argc, char **argv)
{
    struct cairn_transform_opts t;
    struct cli_parsed args;
    const char *sparsity;
    int rc;

    if ((rc = cli_opt_parse(&args, "prune", cmd_prune_opts, argc, argv)) != 0)
        return rc;
    sparsity = args.v[PRUNE_SPARSITY].str;
    if (cairn_transform_opts_prune(&t, sparsity, args.v[PRUNE_STRUCTURED].count > 0) < 0)
        rc = cli_usage("prune", "%s", cairn_error_last());
    else if (!(t.sparsity > 0.0 && t.sparsity < 1.0))
        rc = cli_usage("prune",
                       "sparsity '%s' is outside (0, 1): give a share strictly between "
                       "0 and 1",
                       sparsity);
    else
        rc = cli_derive_run(args.v[PRUNE_REF].str, &t, args.v[PRUNE_MESSAGE].str,
                            args.v[PRUNE_JSON].count > 0);
    cli_parsed_release(&args);
    return rc;
}
