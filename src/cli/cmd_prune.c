/*
 * cairn prune REF --sparsity F [--structured] [-m MSG] [--json]: a new
 * version of the model with a share F of its weights zeroed by magnitude,
 * derived from REF. The work is cairn_model_derive() (lib/model/derive.c);
 * printing is shared with quantize.
 */
#include <getopt.h>
#include <stdio.h>

#include "cairn/model.h"
#include "cli.h"
#include "derive.h"

const char cmd_prune_summary[] = "derive a version with the smallest weights zeroed";
const char cmd_prune_help[] =
    "usage: cairn prune REF --sparsity F [--structured] [-m MSG] [--json]\n"
    "\n"
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
    "  --sparsity F         share of weights (or rows) to zero, 0 < F < 1 (required)\n"
    "  --structured         zero whole output rows instead of single weights\n"
    "  -m, --message MSG    the version's message (default \"prune REF to sparsity F\")\n"
    "  --json               print the result as JSON (docs/compression.md)\n"
    "\n"
    "Exit status: 2 for F outside (0, 1) or a version without a *.safetensors or\n"
    "*.gguf file.\n";

int cmd_prune(int argc, char **argv)
{
    static const struct option opts[] = { { "sparsity", required_argument, NULL, 's' },
                                          { "structured", no_argument, NULL, 'S' },
                                          { "message", required_argument, NULL, 'm' },
                                          { "json", no_argument, NULL, 'j' },
                                          { NULL, 0, NULL, 0 } };
    struct cairn_transform_opts t;
    const char *sparsity = NULL, *msg = NULL;
    int c, json = 0, structured = 0;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "m:", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            sparsity = optarg;
            break;
        case 'S':
            structured = 1;
            break;
        case 'm':
            msg = optarg;
            break;
        case 'j':
            json = 1;
            break;
        default:
            if (optopt && optopt != '?')
                return cli_usage("prune", "option '%s' needs a value", argv[optind - 1]);
            return cli_usage("prune", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return cli_usage("prune",
                         optind >= argc ? "which version? give a REF" : "too many arguments");
    if (!sparsity)
        return cli_usage("prune", "a sparsity is required (--sparsity F, 0 < F < 1)");
    if (cairn_transform_opts_prune(&t, sparsity, structured) < 0)
        return cli_usage("prune", "%s", cairn_error_last());
    if (!(t.sparsity > 0.0 && t.sparsity < 1.0))
        return cli_usage("prune",
                         "sparsity '%s' is outside (0, 1): give a share strictly between "
                         "0 and 1",
                         sparsity);
    return cli_derive_run(argv[optind], &t, msg, json);
}
