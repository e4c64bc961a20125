/* aptq_calibrate rejects bad options with a status and a message naming the culprit, and
 * leaves *summary_json untouched. Prints "ok" and exits 0 when all hold.
 *
 *   calibrate_errors A_REGULAR_FILE */
#include <stdio.h>
#include <string.h>

#include "ascend_ptq.h"

static int failures = 0;

static void expect(int cond, const char *what) {
    if (!cond) {
        fprintf(stderr, "FAILED: %s (last error: %s)\n", what, aptq_last_error() ? aptq_last_error() : "NULL");
        failures++;
    }
}

static int mentions(const char *needle) {
    return aptq_last_error() != NULL && strstr(aptq_last_error(), needle) != NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s A_REGULAR_FILE\n", argv[0]);
        return 2;
    }
    char *summary = (char *)0x1; /* must stay untouched on failure */
    char options[4096];

    expect(aptq_calibrate(NULL, &summary) == APTQ_INVALID_ARGUMENT, "NULL options_json is APTQ_INVALID_ARGUMENT");
    expect(mentions("options_json"), "message names options_json");

    expect(aptq_calibrate("{\"save_path\": \"out/m\", \"input_shape\": \"x:1,3,48,192\", \"data_dir\": \"d\", "
                          "\"data_types\": \"float32\"}",
                          &summary) == APTQ_INVALID_ARGUMENT,
           "a missing \"model\" is APTQ_INVALID_ARGUMENT");
    expect(mentions("\"model\""), "message names \"model\"");

    expect(aptq_calibrate("{\"model\": \"m.onnx\", \"save_path\": \"out/m\", \"input_shape\": \"x:1,3,48,192\", "
                          "\"data_dir\": \"d\", \"data_types\": \"float32\", \"batch_num\": \"3\"}",
                          &summary) == APTQ_INVALID_ARGUMENT,
           "a string batch_num is APTQ_INVALID_ARGUMENT");
    expect(mentions("\"batch_num\"") && mentions("integer"), "message names \"batch_num\" and the expected type");

    expect(aptq_calibrate("{\"model\": \"m.onnx\", \"save_path\": \"out/m\", \"input_shape\": \"x:1,3,48,192\", "
                          "\"data_dir\": \"d\", \"data_types\": \"float32\", \"batchnum\": 3}",
                          &summary) == APTQ_INVALID_ARGUMENT,
           "an unknown key is APTQ_INVALID_ARGUMENT");
    expect(mentions("\"batchnum\""), "message names the unknown key");

    expect(aptq_calibrate("[1, 2]", &summary) == APTQ_INVALID_ARGUMENT, "a JSON array is APTQ_INVALID_ARGUMENT");
    expect(mentions("object"), "message says an object was expected");

    /* A save_path under a regular file cannot be created: an I/O error, before any other work
     * (the model and data paths do not exist either). */
    snprintf(options, sizeof options,
             "{\"model\": \"/nonexistent/m.onnx\", \"save_path\": \"%s/out/m\", \"input_shape\": \"x:1,3,48,192\", "
             "\"data_dir\": \"/nonexistent/d\", \"data_types\": \"float32\"}",
             argv[1]);
    expect(aptq_calibrate(options, &summary) == APTQ_IO_ERROR, "an unwritable save_path is APTQ_IO_ERROR");
    expect(mentions("--save_path"), "message names --save_path");

    expect(aptq_calibrate("{}", NULL) == APTQ_INVALID_ARGUMENT, "NULL summary_json is APTQ_INVALID_ARGUMENT");
    expect(mentions("summary_json"), "message names summary_json");

    expect(summary == (char *)0x1, "summary_json untouched on failure");
    if (failures == 0) printf("ok\n");
    return failures == 0 ? 0 : 1;
}
