/* Calibration data and the matching AIPP config through the ascend-ptq C API.
 *
 *   preprocess PARAMS.json OUT_DIR [AIPP_OPTIONS_JSON]
 *
 * Writes OUT_DIR/imgs_batch{B}/batch0001.bin ... and manifest.json, prints the manifest,
 * a line "----", then the static AIPP config for the same parameters.
 * Exit status: 0 on success, 1 on a library error (status and message on stderr),
 * 2 on a usage error. */
#include <stdio.h>

#include "ascend_ptq.h"

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s PARAMS.json OUT_DIR [AIPP_OPTIONS_JSON]\n", argv[0]);
        return 2;
    }
    char *manifest = NULL;
    aptq_status status = aptq_preprocess(argv[1], argv[2], &manifest);
    if (status != APTQ_OK) {
        fprintf(stderr, "aptq_preprocess failed (status %d): %s\n", (int)status, aptq_last_error());
        return 1;
    }
    printf("%s\n----\n", manifest);
    aptq_string_free(manifest);

    char *cfg = NULL;
    status = aptq_aipp(argv[1], argc == 4 ? argv[3] : NULL, &cfg);
    if (status != APTQ_OK) {
        fprintf(stderr, "aptq_aipp failed (status %d): %s\n", (int)status, aptq_last_error());
        return 1;
    }
    printf("%s", cfg);
    aptq_string_free(cfg);
    return 0;
}
