/*
 * cairn quantize REF --to fp16|bf16|int8 [-m MSG] [--json]: a new version of
 * the model with its weights in a smaller type, derived from REF. The work is
 * cairn_model_derive() (lib/model/derive.c); printing is shared with prune.
 */
#include <getopt.h>
#include <stdio.h>

#include "cairn/model.h"
#include "cli.h"
#include "derive.h"

const char cmd_quantize_summary[] = "derive a version with fp16, bf16 or int8 weights";
const char cmd_quantize_help[] =
    "usage: cairn quantize REF --to fp16|bf16|int8 [-m MSG] [--json]\n"
    "\n"
    "Check out REF, convert the weights of every *.safetensors and *.gguf file\n"
    "and commit the result as a new version of the same model: its parent is\n"
    "REF, a lineage edge \"derived\" (detail \"quantize int8\") points to REF, its params\n"
    "are REF's plus derived.method, derived.to and derived.from, and its only\n"
    "metric is size_bytes (the sum of its file sizes): measure it again with\n"
    "'cairn eval' before a gate lets it replace REF.\n"
    "\n"
    "Only tensors named *.weight with two or more dimensions and a float dtype\n"
    "(F32, F16, BF16) change; biases, normalisation parameters and tensors of\n"
    "other dtypes are kept as they are and listed with the reason. fp16 and\n"
    "bf16 round to nearest even. int8 is symmetric per output row: the weight\n"
    "becomes I8 and a tensor NAME_scale (F32, one value per row) follows it,\n"
    "w = q * scale[row] (docs/serve-model.md). In a GGUF file int8 is GGML's\n"
    "Q8_0 (an fp16 scale per block of 32), which llama.cpp reads; weights whose\n"
    "rows are not whole blocks are kept. Other files are carried over.\n"
    "\n"
    "Prints the raw size before and after, the bytes the new version added to\n"
    "the store, and per tensor the largest absolute error introduced.\n"
    "\n"
    "  --to TYPE            fp16, bf16 or int8 (required)\n"
    "  -m, --message MSG    the version's message (default \"quantize REF to TYPE\")\n"
    "  --json               print the result as JSON (docs/compression.md)\n"
    "\n"
    "Exit status: 2 for an unknown TYPE or a version without a *.safetensors or\n"
    "*.gguf file; 1 for a damaged tensor file (the message names the version and\n"
    "the file in it).\n";

int cmd_quantize(int argc, char **argv)
{
    static const struct option opts[] = { { "to", required_argument, NULL, 't' },
                                          { "message", required_argument, NULL, 'm' },
                                          { "json", no_argument, NULL, 'j' },
                                          { NULL, 0, NULL, 0 } };
    struct cairn_transform_opts t;
    const char *to = NULL, *msg = NULL;
    int c, json = 0;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "m:", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            to = optarg;
            break;
        case 'm':
            msg = optarg;
            break;
        case 'j':
            json = 1;
            break;
        default:
            if (optopt && optopt != '?')
                return cli_usage("quantize", "option '%s' needs a value", argv[optind - 1]);
            return cli_usage("quantize", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return cli_usage("quantize",
                         optind >= argc ? "which version? give a REF" : "too many arguments");
    if (!to)
        return cli_usage("quantize", "a target type is required (--to fp16|bf16|int8)");
    if (cairn_transform_opts_quantize(&t, to) < 0)
        return cli_usage("quantize", "%s", cairn_error_last());
    return cli_derive_run(argv[optind], &t, msg, json);
}
