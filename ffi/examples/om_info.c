/* Prints the JSON summary of an Ascend OM model (no CANN needed) through the ascend-ptq C API.
 *
 *   om_info MODEL.om
 *
 * Exit status: 0 on success, 1 on a library error (status and message on stderr),
 * 2 on a usage error. */
#include <stdio.h>

#include "ascend_ptq.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.om\n", argv[0]);
        return 2;
    }
    char *json = NULL;
    aptq_status status = aptq_om_info(argv[1], &json);
    if (status != APTQ_OK) {
        fprintf(stderr, "aptq_om_info failed (status %d): %s\n", (int)status, aptq_last_error());
        return 1;
    }
    printf("%s\n", json);
    aptq_string_free(json);
    return 0;
}
