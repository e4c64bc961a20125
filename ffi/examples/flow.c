/* The guide's whole flow (preprocess, calibration, ATC int8 + fp16, compare) through the
 * ascend-ptq C API, as `ascend-ptq flow` runs it.
 *
 *   flow PARAMS.json [OPTIONS_JSON]
 *
 * OPTIONS_JSON is the options object of aptq_flow, e.g. '{"simulate": true}' or
 * '{"atc": "/usr/local/Ascend/ascend-toolkit/latest/bin/atc"}'. Prints flow.json's content.
 * Exit status: 0 when the flow finished (see "verdict_pass"), 1 on a library error (status
 * and message on stderr), 2 on a usage error. */
#include <stdio.h>

#include "ascend_ptq.h"

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s PARAMS.json [OPTIONS_JSON]\n", argv[0]);
        return 2;
    }
    char *summary = NULL;
    aptq_status status = aptq_flow(argv[1], argc == 3 ? argv[2] : NULL, &summary);
    if (status != APTQ_OK) {
        fprintf(stderr, "aptq_flow failed (status %d): %s\n", (int)status, aptq_last_error());
        return 1;
    }
    printf("%s\n", summary);
    aptq_string_free(summary);
    return 0;
}
