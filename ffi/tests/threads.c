/* The thread-safety contract of the header, exercised:
 *   threads acl SIM_LIB OM_A IN_A EXPECTED_A OM_B IN_B EXPECTED_B
 *       one aptq_acl shared by two threads, each loading and running its own model 20 times
 *       through the ACL simulator: every output equals the expected bytes, and after the frees
 *       the simulator counts no live object.
 *   threads engine MODEL INPUT_SHAPE IN EXPECTED OUT_DIR
 *       one aptq_engine shared by two threads running it 20 times each, every output equal to
 *       the expected bytes; aptq_run on the same files writes the same bytes; error paths.
 * Prints "ok" when every check holds, else the failed checks and exits 1. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ascend_ptq.h"

#define RUNS 20

static int failures = 0;
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;

static void check(int cond, const char *what) {
    if (!cond) {
        const char *msg = aptq_last_error();
        pthread_mutex_lock(&report_lock);
        printf("FAIL %s (last error on this thread: %s)\n", what, msg ? msg : "none");
        failures++;
        pthread_mutex_unlock(&report_lock);
    }
}

static unsigned char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    *size = fread(buf, 1, (size_t)n, f);
    fclose(f);
    return buf;
}

struct job {
    aptq_acl *acl;       /* acl mode: load the model on this thread */
    aptq_engine *engine; /* engine mode: the shared engine */
    const char *om;
    const unsigned char *input;
    size_t input_size;
    const unsigned char *expected;
    size_t expected_size;
    int good_runs;
};

static int output_matches(struct job *j, aptq_outputs *outs) {
    size_t size = 0;
    const void *data = aptq_outputs_data(outs, 0, &size);
    return aptq_outputs_count(outs) == 1 && data && size == j->expected_size && memcmp(data, j->expected, size) == 0;
}

static void *acl_worker(void *arg) {
    struct job *j = (struct job *)arg;
    aptq_model *model = NULL;
    check(aptq_model_load(j->acl, j->om, &model) == APTQ_OK, "loading a model on a worker thread");
    if (!model) return NULL;
    const void *inputs[1] = {j->input};
    size_t sizes[1] = {j->input_size};
    for (int r = 0; r < RUNS; r++) {
        aptq_outputs *outs = NULL;
        if (aptq_model_run(model, inputs, sizes, 1, &outs) == APTQ_OK && output_matches(j, outs)) j->good_runs++;
        aptq_outputs_free(outs);
    }
    aptq_model_free(model);
    return NULL;
}

static void *engine_worker(void *arg) {
    struct job *j = (struct job *)arg;
    const void *inputs[1] = {j->input};
    size_t sizes[1] = {j->input_size};
    for (int r = 0; r < RUNS; r++) {
        aptq_outputs *outs = NULL;
        if (aptq_engine_run(j->engine, inputs, sizes, 1, &outs) == APTQ_OK && output_matches(j, outs)) j->good_runs++;
        aptq_outputs_free(outs);
    }
    return NULL;
}

static size_t live_objects(void *sim) {
    int (*fn)(size_t *) = (int (*)(size_t *))dlsym(sim, "aclsimGetLiveCounts");
    size_t c[9] = {0}, total = 0;
    if (!fn || fn(c) != 0) return (size_t)-1;
    for (int i = 0; i < 9; i++) total += c[i];
    return total;
}

static int load_job(struct job *j, const char *in, const char *expected) {
    j->input = read_file(in, &j->input_size);
    j->expected = read_file(expected, &j->expected_size);
    if (!j->input || !j->expected) {
        printf("FAIL cannot read %s or %s\n", in, expected);
        return 0;
    }
    return 1;
}

static int acl_mode(char **argv) {
    void *sim = dlopen(argv[2], RTLD_NOW);
    if (!sim) {
        printf("FAIL dlopen %s\n", argv[2]);
        return 1;
    }
    aptq_acl *acl = NULL;
    check(aptq_acl_open(argv[2], 0, &acl) == APTQ_OK, "opening the simulator");
    if (!acl) return 1;
    struct job a = {.acl = acl, .om = argv[3]}, b = {.acl = acl, .om = argv[6]};
    if (!load_job(&a, argv[4], argv[5]) || !load_job(&b, argv[7], argv[8])) return 1;
    pthread_t ta, tb;
    pthread_create(&ta, NULL, acl_worker, &a);
    pthread_create(&tb, NULL, acl_worker, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    check(a.good_runs == RUNS, "model A: every run on its thread gave the expected output");
    check(b.good_runs == RUNS, "model B: every run on its thread gave the expected output");
    aptq_acl_free(acl);
    check(live_objects(sim) == 0, "no live ACL object after the frees");
    free((void *)a.input), free((void *)a.expected), free((void *)b.input), free((void *)b.expected);
    dlclose(sim);
    return failures;
}

static int engine_mode(char **argv) {
    const char *model = argv[2], *shape = argv[3], *in = argv[4], *expected = argv[5], *out_dir = argv[6];
    char options[2048];
    snprintf(options, sizeof options, "{\"input_shape\": \"%s\"}", shape);
    aptq_engine *engine = NULL;
    check(aptq_engine_open(model, options, &engine) == APTQ_OK, "opening the engine");
    if (!engine) return 1;
    check(aptq_engine_num_inputs(engine) == 1, "one input");
    char *info = NULL;
    check(aptq_engine_input_info(engine, 0, &info) == APTQ_OK && info && strstr(info, "\"size\""), "input info");
    aptq_string_free(info);
    check(aptq_engine_input_info(engine, 1, &info) == APTQ_INVALID_ARGUMENT, "input index out of range");

    struct job a = {.engine = engine}, b = {.engine = engine};
    if (!load_job(&a, in, expected) || !load_job(&b, in, expected)) return 1;
    pthread_t ta, tb;
    pthread_create(&ta, NULL, engine_worker, &a);
    pthread_create(&tb, NULL, engine_worker, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    check(a.good_runs == RUNS && b.good_runs == RUNS, "one engine on two threads: every output as expected");

    /* Error paths of aptq_engine_run. */
    aptq_outputs *outs = NULL;
    const void *inputs[1] = {a.input};
    size_t short_size[1] = {a.input_size - 4};
    check(aptq_engine_run(engine, inputs, short_size, 1, &outs) == APTQ_INVALID_ARGUMENT && outs == NULL, "a short input is refused");
    const char *msg = aptq_last_error();
    check(msg && strstr(msg, "inputs[0]"), "the message names the input");
    check(aptq_engine_run(engine, inputs, short_size, 2, &outs) == APTQ_INVALID_ARGUMENT, "a wrong input count is refused");
    check(aptq_engine_run(NULL, inputs, short_size, 1, &outs) == APTQ_INVALID_ARGUMENT, "a NULL engine is refused");
    check(aptq_engine_open("/nonexistent/model.onnx", NULL, &engine) == APTQ_IO_ERROR, "a missing model is an I/O error");
    aptq_engine_free(engine);
    aptq_engine_free(NULL);

    /* aptq_run on the same files writes the same bytes. */
    char *summary = NULL;
    snprintf(options, sizeof options, "{\"model\": \"%s\", \"input_shape\": \"%s\", \"input\": [\"x=%s\"], \"output_dir\": \"%s\"}",
             model, shape, in, out_dir);
    check(aptq_run(options, &summary) == APTQ_OK && summary && strstr(summary, "\"file\""), "aptq_run writes its outputs");
    aptq_string_free(summary);
    char path[1024];
    snprintf(path, sizeof path, "%s/y.bin", out_dir);
    size_t size = 0;
    unsigned char *written = read_file(path, &size);
    check(written && size == a.expected_size && memcmp(written, a.expected, size) == 0, "aptq_run's y.bin is the expected output");
    free(written);
    snprintf(options, sizeof options, "{\"model\": \"%s\", \"input\": [\"x=%s\"], \"output_dir\": \"%s\", \"inputs\": 1}", model, in,
             out_dir);
    check(aptq_run(options, &summary) == APTQ_INVALID_ARGUMENT, "an unknown key is refused");
    msg = aptq_last_error();
    check(msg && strstr(msg, "inputs"), "the message names the key");
    free((void *)a.input), free((void *)a.expected), free((void *)b.input), free((void *)b.expected);
    return failures;
}

int main(int argc, char **argv) {
    int bad;
    if (argc == 9 && strcmp(argv[1], "acl") == 0) bad = acl_mode(argv);
    else if (argc == 7 && strcmp(argv[1], "engine") == 0) bad = engine_mode(argv);
    else {
        fprintf(stderr, "usage: see the comment at the top of %s\n", __FILE__);
        return 2;
    }
    if (bad) return 1;
    printf("ok\n");
    return 0;
}
