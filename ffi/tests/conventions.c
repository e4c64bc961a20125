/* Checks the conventions every aptq_* function follows: NULL arguments are rejected with
 * APTQ_INVALID_ARGUMENT and a message naming the parameter, errors set a thread-local
 * message, and freeing NULL is harmless. Prints "ok" and exits 0 when all hold. */
#include <stdio.h>
#include <string.h>

#include "ascend_ptq.h"

static int failures = 0;

static void expect(int cond, const char *what) {
    if (!cond) {
        fprintf(stderr, "FAILED: %s\n", what);
        failures++;
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MISSING_PATH NOT_A_MODEL_PATH\n", argv[0]);
        return 2;
    }
    const char *missing = argv[1];
    const char *not_a_model = argv[2];
    char *json = (char *)0x1; /* must stay untouched on failure */

    expect(aptq_version() != NULL && strchr(aptq_version(), '.') != NULL, "aptq_version is a dotted version");

    expect(aptq_inspect(NULL, NULL, &json) == APTQ_INVALID_ARGUMENT, "NULL model_path is APTQ_INVALID_ARGUMENT");
    expect(strstr(aptq_last_error(), "model_path") != NULL, "message names model_path");
    expect(json == (char *)0x1, "json_out untouched on failure");

    expect(aptq_inspect(missing, NULL, NULL) != APTQ_OK, "NULL json_out fails");

    expect(aptq_inspect(missing, NULL, &json) == APTQ_IO_ERROR, "missing file is APTQ_IO_ERROR");
    expect(strstr(aptq_last_error(), missing) != NULL, "message names the file");

    expect(aptq_inspect(not_a_model, NULL, &json) == APTQ_INVALID_MODEL, "a non-ONNX file is APTQ_INVALID_MODEL");
    expect(strstr(aptq_last_error(), not_a_model) != NULL, "message names the non-ONNX file");
    expect(json == (char *)0x1, "json_out untouched on failure");

    expect(aptq_inspect(missing, "images", &json) == APTQ_INVALID_ARGUMENT, "bad input_shape is APTQ_INVALID_ARGUMENT");
    expect(strstr(aptq_last_error(), "--input_shape") != NULL, "message names --input_shape");

    aptq_string_free(NULL);
    if (failures == 0) printf("ok\n");
    return failures == 0 ? 0 : 1;
}
