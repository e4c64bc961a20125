/* Prints the JSON summary of an ONNX model through the ascend-ptq C API.
 *
 *   inspect MODEL.onnx ["name:n,c,h,w;..."]
 *
 * Exit status: 0 on success, 1 on a library error (status and message on stderr),
 * 2 on a usage error. */
#include <stdio.h>

#include "ascend_ptq.h"

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s MODEL.onnx [INPUT_SHAPE]\n", argv[0]);
        return 2;
    }
    char *json = NULL;
    aptq_status status = aptq_inspect(argv[1], argc == 3 ? argv[2] : NULL, &json);
    if (status != APTQ_OK) {
        fprintf(stderr, "aptq_inspect failed (status %d): %s\n", (int)status, aptq_last_error());
        return 1;
    }
    printf("ascend-ptq %s\n%s\n", aptq_version(), json);
    aptq_string_free(json);
    return 0;
}
