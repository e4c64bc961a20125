/* Post-training INT8 quantization through the ascend-ptq C API.
 *
 *   calibrate MODEL SAVE_PATH INPUT_SHAPE DATA_DIR DATA_TYPES [BATCH_NUM]
 *
 * The arguments are those of `ascend-ptq calibration` (--model, --save_path, ...). Writes
 * SAVE_PATH_deploy_model.onnx, SAVE_PATH_fake_quant_model.onnx, SAVE_PATH_record.txt,
 * SAVE_PATH_quant.json (msaccucmp fusion rule) and SAVE_PATH_quant_report.json, and prints
 * the JSON summary.
 * Exit status: 0 on success, 1 on a library error (status and message on stderr),
 * 2 on a usage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ascend_ptq.h"

/* Appends `s` to `out` as a JSON string literal; returns the new end. `out` must have room
 * for 6 bytes per character of `s` plus 3. */
static char *json_string(char *out, const char *s) {
    *out++ = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            *out++ = '\\';
            *out++ = (char)c;
        } else if (c < 0x20) {
            out += sprintf(out, "\\u%04x", c);
        } else {
            *out++ = (char)c;
        }
    }
    *out++ = '"';
    *out = '\0';
    return out;
}

int main(int argc, char **argv) {
    static const char *const keys[] = {"model", "save_path", "input_shape", "data_dir", "data_types"};
    if (argc < 6 || argc > 7) {
        fprintf(stderr, "usage: %s MODEL SAVE_PATH INPUT_SHAPE DATA_DIR DATA_TYPES [BATCH_NUM]\n", argv[0]);
        return 2;
    }
    size_t room = 64;
    for (int i = 1; i < argc; i++) {
        room += 32 + 6 * strlen(argv[i]);
    }
    char *options = malloc(room);
    if (options == NULL) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    char *end = options;
    *end++ = '{';
    for (int i = 0; i < 5; i++) {
        end += sprintf(end, "%s\"%s\": ", i > 0 ? ", " : "", keys[i]);
        end = json_string(end, argv[i + 1]);
    }
    if (argc == 7) {
        char *rest = NULL;
        unsigned long batch_num = strtoul(argv[6], &rest, 10);
        if (*argv[6] == '\0' || *rest != '\0' || argv[6][0] == '-') {
            fprintf(stderr, "BATCH_NUM must be a non-negative integer, got '%s'\n", argv[6]);
            free(options);
            return 2;
        }
        end += sprintf(end, ", \"batch_num\": %lu", batch_num);
    }
    strcpy(end, "}");

    char *summary = NULL;
    aptq_status status = aptq_calibrate(options, &summary);
    free(options);
    if (status != APTQ_OK) {
        fprintf(stderr, "aptq_calibrate failed (status %d): %s\n", (int)status, aptq_last_error());
        return 1;
    }
    printf("%s\n", summary);
    aptq_string_free(summary);
    return 0;
}
