/* Error paths of the AscendCL session API, through the ACL simulator.
 *
 *   acl_session_errors SIM_LIB OM NOT_AN_OM   library/model/run errors and NULL arguments
 *   acl_session_errors --init-fails SIM_LIB   run with ASCEND_PTQ_SIM_FAIL=aclInit:500001
 *
 * Prints "ok" when every check holds, else the failed check and exits 1. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ascend_ptq.h"

static int failures = 0;

static void expect(aptq_status got, aptq_status want, const char *needle, const char *what) {
    const char *msg = aptq_last_error();
    if (got != want) {
        printf("FAIL %s: status %d, expected %d (%s)\n", what, (int)got, (int)want, msg ? msg : "no message");
        failures++;
    } else if (needle && (!msg || !strstr(msg, needle))) {
        printf("FAIL %s: message \"%s\" lacks \"%s\"\n", what, msg ? msg : "(null)", needle);
        failures++;
    }
}

static void check(int cond, const char *what) {
    if (!cond) {
        printf("FAIL %s\n", what);
        failures++;
    }
}

/* Total of the simulator's live ACL objects (aclsimGetLiveCounts: nine size_t counters). */
static size_t live_objects(const char *lib) {
    void *h = dlopen(lib, RTLD_NOW | RTLD_NOLOAD);
    if (!h) return (size_t)-1;
    int (*fn)(size_t *) = (int (*)(size_t *))dlsym(h, "aclsimGetLiveCounts");
    size_t c[9] = {0}, total = 0;
    if (!fn || fn(c) != 0) total = (size_t)-1;
    else for (int i = 0; i < 9; i++) total += c[i];
    dlclose(h);
    return total;
}

static int init_fails(const char *lib) {
    aptq_acl *acl = NULL;
    expect(aptq_acl_open(lib, 0, &acl), APTQ_ACL_ERROR, "aclInit failed: 500001 ACL_ERROR_FAILURE", "aclInit failing");
    check(acl == NULL, "no handle after a failed open");
    return failures;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--init-fails") == 0) {
        if (init_fails(argv[2])) return 1;
        printf("ok\n");
        return 0;
    }
    if (argc != 4) {
        fprintf(stderr, "usage: %s SIM_LIB OM NOT_AN_OM | --init-fails SIM_LIB\n", argv[0]);
        return 2;
    }
    const char *lib = argv[1], *om = argv[2], *not_om = argv[3];
    aptq_acl *acl = NULL;
    aptq_model *model = NULL;
    aptq_outputs *outs = NULL;
    char *s = NULL;

    /* The library. */
    expect(aptq_acl_open("/nonexistent/libascendcl.so", 0, &acl), APTQ_ACL_LIBRARY_ERROR, "/nonexistent/libascendcl.so",
           "missing library");
    check(acl == NULL, "no handle for a missing library");
    expect(aptq_acl_open(lib, 0, NULL), APTQ_INVALID_ARGUMENT, "out is NULL", "NULL out of aptq_acl_open");
    expect(aptq_acl_open(lib, 0, &acl), APTQ_OK, NULL, "opening the simulator");
    if (!acl) return 1;
    check(aptq_acl_is_simulator(acl) == 1, "the simulator says it is one");
    check(aptq_acl_is_simulator(NULL) == 0, "aptq_acl_is_simulator(NULL) is 0");
    expect(aptq_acl_soc_name(acl, &s), APTQ_OK, NULL, "soc name");
    check(s && strlen(s) > 4 && strcmp(s + strlen(s) - 4, "-sim") == 0, "the simulator's soc name ends in -sim");
    aptq_string_free(s);
    expect(aptq_acl_soc_name(NULL, &s), APTQ_INVALID_ARGUMENT, "acl is NULL", "soc name of NULL");

    /* The model file. */
    expect(aptq_model_load(acl, "/nonexistent/model.om", &model), APTQ_IO_ERROR, "/nonexistent/model.om", "missing OM");
    check(model == NULL, "no handle for a missing OM");
    expect(aptq_model_load(acl, not_om, &model), APTQ_ACL_ERROR, "aclmdlLoadFromFile failed", "a file that is not an OM");
    expect(aptq_model_load(NULL, om, &model), APTQ_INVALID_ARGUMENT, "acl is NULL", "NULL acl");
    expect(aptq_model_load(acl, NULL, &model), APTQ_INVALID_ARGUMENT, "om_path is NULL", "NULL om_path");
    expect(aptq_model_load(acl, om, NULL), APTQ_INVALID_ARGUMENT, "out is NULL", "NULL out of aptq_model_load");
    expect(aptq_model_load(acl, om, &model), APTQ_OK, NULL, "loading the OM");
    if (!model) return 1;
    aptq_acl_free(acl); /* the model keeps its context alive */
    acl = NULL;

    /* Description. */
    check(aptq_model_num_inputs(model) == 1 && aptq_model_num_outputs(model) == 1, "one input and one output");
    check(aptq_model_num_inputs(NULL) == 0 && aptq_model_input_size(NULL, 0) == 0, "NULL model counts 0");
    size_t need = aptq_model_input_size(model, 0);
    check(need > 4 && aptq_model_input_size(model, 1) == 0, "input size, 0 out of range");
    expect(aptq_model_input_info(model, 1, &s), APTQ_INVALID_ARGUMENT, "input index 1 out of range", "input info out of range");
    expect(aptq_model_output_info(model, 0, NULL), APTQ_INVALID_ARGUMENT, "json_out is NULL", "NULL json_out");

    /* Running. */
    char *buf = calloc(need, 1);
    const void *inputs[1] = {buf};
    size_t sizes[1] = {need - 4};
    char expected_size[64];
    snprintf(expected_size, sizeof expected_size, "needs %zu bytes, %zu given", need, need - 4);
    expect(aptq_model_run(model, inputs, sizes, 1, &outs), APTQ_INVALID_ARGUMENT, expected_size, "wrong input size");
    expect(aptq_model_run(model, inputs, sizes, 1, &outs), APTQ_INVALID_ARGUMENT, "input 0 `x`", "wrong input size names the input");
    check(outs == NULL, "no outputs after a failed run");
    expect(aptq_model_run(model, NULL, NULL, 0, &outs), APTQ_INVALID_ARGUMENT, "0 input(s) given, the model has 1 (x)", "no inputs");
    expect(aptq_model_run(model, NULL, sizes, 1, &outs), APTQ_INVALID_ARGUMENT, "inputs or sizes is NULL", "NULL inputs");
    expect(aptq_model_run(NULL, inputs, sizes, 1, &outs), APTQ_INVALID_ARGUMENT, "model is NULL", "NULL model");
    sizes[0] = need;
    expect(aptq_model_run(model, inputs, sizes, 1, NULL), APTQ_INVALID_ARGUMENT, "out is NULL", "NULL out of aptq_model_run");
    expect(aptq_model_run(model, inputs, sizes, 1, &outs), APTQ_OK, NULL, "a good run after the failed ones");
    size_t size = 1;
    check(aptq_outputs_count(outs) == 1 && aptq_outputs_data(outs, 0, &size) != NULL && size == aptq_model_output_size(model, 0),
          "one output of the described size");
    check(aptq_outputs_data(outs, 1, &size) == NULL && size == 0 && aptq_outputs_name(outs, 1) == NULL, "output 1 out of range");
    check(aptq_outputs_count(NULL) == 0 && aptq_outputs_data(NULL, 0, NULL) == NULL && aptq_outputs_name(NULL, 0) == NULL,
          "NULL outputs are empty");
    free(buf);

    /* Freeing: NULL is ignored; afterwards no ACL object is left in the simulator. */
    aptq_outputs_free(outs);
    aptq_model_free(model);
    aptq_outputs_free(NULL);
    aptq_model_free(NULL);
    aptq_acl_free(NULL);
    size_t live = live_objects(lib);
    if (live != 0) {
        printf("FAIL %zu simulator objects alive after every free\n", live);
        failures++;
    }
    if (failures) return 1;
    printf("ok\n");
    return 0;
}
