/*
 * The built-in check kinds, exported to the table in gate.c. A kind written
 * in another file of the module declares its row here and adds it to
 * cairn__check_kinds[]; see policy.h for the contract of a row.
 */
#ifndef CAIRN_GATE_GATE_H
#define CAIRN_GATE_GATE_H

#include "gate/policy.h"

extern const struct cairn_check_kind
    cairn__check_metric; /* metric: NAME, min/max/no_regression_vs */
extern const struct cairn_check_kind cairn__check_signature; /* signature: required */
extern const struct cairn_check_kind cairn__check_data;      /* data: validated */

#endif
