/* Progress and cancellation of aptq_compare_with_callbacks and aptq_flow_with_callbacks,
 * through the ACL simulator, with its live-object counts (aclsimGetLiveCounts).
 *
 *   long_calls_cancel compare SIM_LIB INT8_OM FP16_OM DATA_DIR BATCHES OUT_DIR
 *       a full comparison (progress once per input set), then one cancelled after the first
 *       set: APTQ_CANCELLED, no report file, no live ACL object after either.
 *   long_calls_cancel flow SIM_LIB PARAMS_JSON PHASE AT STEP
 *       a simulated flow cancelled at the first progress report of PHASE with done >= AT:
 *       APTQ_CANCELLED naming STEP, no live ACL object (the caller checks flow.json and files).
 *   long_calls_cancel flow-atc ATC PARAMS_JSON
 *       a flow with a (hanging) ATC cancelled when the atc_int8 step starts: APTQ_CANCELLED
 *       naming atc_int8 (the caller checks that no OM is left).
 *   long_calls_cancel preprocess PARAMS_JSON OUT_DIR CANCEL_AT
 *       aptq_preprocess_with_callbacks, cancelled at the first report with done >= CANCEL_AT
 *       (0: never): APTQ_CANCELLED (the caller checks OUT_DIR holds no bin) or APTQ_OK.
 *   long_calls_cancel flow-full SIM_LIB PARAMS_JSON
 *       the same flow uncancelled: APTQ_OK, progress reported for every step.
 *
 * Prints "ok" when every check holds, else the failed checks and exits 1. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ascend_ptq.h"

static int failures = 0;

static void check(int cond, const char *what) {
    if (!cond) {
        const char *msg = aptq_last_error();
        printf("FAIL %s (last error: %s)\n", what, msg ? msg : "none");
        failures++;
    }
}

/* Total of the simulator's live ACL objects; the caller keeps the library loaded. */
static size_t live_objects(void *sim) {
    int (*fn)(size_t *) = (int (*)(size_t *))dlsym(sim, "aclsimGetLiveCounts");
    size_t c[9] = {0}, total = 0;
    if (!fn || fn(c) != 0) return (size_t)-1;
    for (int i = 0; i < 9; i++) total += c[i];
    return total;
}

static int file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

struct progress {
    const char *cancel_phase; /* cancel at the first report of this phase (NULL: never) */
    unsigned long long cancel_at; /* ... once done >= this */
    int calls, bad_phase, cancelled;
    unsigned long long last_done, last_total;
    char phases[512]; /* distinct phases, space-separated */
};

static int on_progress(void *user, const char *phase, uint64_t done, uint64_t total) {
    struct progress *p = (struct progress *)user;
    p->calls++;
    if (!phase || !*phase) p->bad_phase++;
    else {
        char key[80];
        snprintf(key, sizeof key, " %s ", phase);
        char padded[520];
        snprintf(padded, sizeof padded, " %s", p->phases);
        if (!strstr(padded, key) && strlen(p->phases) + strlen(phase) + 2 < sizeof p->phases) {
            strcat(p->phases, phase);
            strcat(p->phases, " ");
        }
    }
    p->last_done = done;
    p->last_total = total;
    if (p->cancel_phase && phase && strcmp(phase, p->cancel_phase) == 0 && done >= p->cancel_at) {
        p->cancelled++;
        return 1;
    }
    return 0;
}

static int compare_mode(char **argv) {
    const char *sim_lib = argv[2], *int8 = argv[3], *fp16 = argv[4], *data = argv[5], *out = argv[7];
    int batches = atoi(argv[6]);
    void *sim = dlopen(sim_lib, RTLD_NOW);
    if (!sim) {
        printf("FAIL dlopen %s: %s\n", sim_lib, dlerror());
        return 1;
    }
    char options[4096], path[1024];
    char *report = NULL;

    /* Full run: one report per input set, done counting up to total. */
    struct progress full = {0};
    aptq_callbacks cb = {on_progress, &full};
    snprintf(options, sizeof options,
             "{\"int8\": \"%s\", \"fp16\": \"%s\", \"data_dir\": \"%s\", \"data_types\": \"float32\", \"batch_num\": %d, "
             "\"acl_lib\": \"%s\", \"threshold\": 0.5, \"report\": \"%s/full\"}",
             int8, fp16, data, batches, sim_lib, out);
    check(aptq_compare_with_callbacks(options, &cb, &report) == APTQ_OK, "the full comparison succeeds");
    check(report && strstr(report, "\"pass\""), "the full comparison returns its report");
    aptq_string_free(report);
    report = NULL;
    check(full.calls == batches, "one progress report per input set");
    check(full.last_done == (unsigned long long)batches && full.last_total == (unsigned long long)batches, "done reaches total");
    check(strcmp(full.phases, "compare ") == 0, "the phase is \"compare\"");
    snprintf(path, sizeof path, "%s/full.json", out);
    check(file_exists(path), "the full comparison wrote its report");
    check(live_objects(sim) == 0, "no live ACL object after the full comparison");

    /* Cancelled after the first input set. */
    struct progress cancel = {.cancel_phase = "compare", .cancel_at = 1};
    cb.user = &cancel;
    snprintf(options, sizeof options,
             "{\"int8\": \"%s\", \"fp16\": \"%s\", \"data_dir\": \"%s\", \"data_types\": \"float32\", \"batch_num\": %d, "
             "\"acl_lib\": \"%s\", \"threshold\": 0.5, \"report\": \"%s/cancelled\"}",
             int8, fp16, data, batches, sim_lib, out);
    check(aptq_compare_with_callbacks(options, &cb, &report) == APTQ_CANCELLED, "the cancelled comparison says so");
    const char *msg = aptq_last_error();
    check(msg && strstr(msg, "cancelled after 1 of"), "the message says where it stopped");
    check(report == NULL, "no report string for a cancelled comparison");
    check(cancel.calls == 1, "no progress after the cancel");
    snprintf(path, sizeof path, "%s/cancelled.json", out);
    check(!file_exists(path), "no report file for a cancelled comparison");
    snprintf(path, sizeof path, "%s/cancelled.html", out);
    check(!file_exists(path), "no HTML report for a cancelled comparison");
    check(live_objects(sim) == 0, "no live ACL object after the cancelled comparison");

    /* NULL callbacks: plain aptq_compare. */
    snprintf(options, sizeof options,
             "{\"int8\": \"%s\", \"fp16\": \"%s\", \"data_dir\": \"%s\", \"data_types\": \"float32\", \"batch_num\": 1, "
             "\"acl_lib\": \"%s\", \"threshold\": 0.5}",
             int8, fp16, data, sim_lib);
    check(aptq_compare_with_callbacks(options, NULL, &report) == APTQ_OK, "NULL callbacks run to the end");
    aptq_string_free(report);
    check(aptq_compare_with_callbacks(options, &cb, NULL) == APTQ_INVALID_ARGUMENT, "NULL report_json is refused");
    check(live_objects(sim) == 0, "no live ACL object at the end");
    dlclose(sim);
    return failures;
}

static int flow_atc_mode(char **argv) {
    char options[2048];
    snprintf(options, sizeof options, "{\"atc\": \"%s\", \"timeout\": 600}", argv[2]);
    struct progress p = {.cancel_phase = "step", .cancel_at = 2};
    aptq_callbacks cb = {on_progress, &p};
    char *summary = NULL;
    check(aptq_flow_with_callbacks(argv[3], options, &cb, &summary) == APTQ_CANCELLED, "the flow cancelled during ATC says so");
    const char *msg = aptq_last_error();
    check(msg && strstr(msg, "cancelled during step atc_int8"), "the message names atc_int8");
    check(summary == NULL, "no summary for a cancelled flow");
    return failures;
}

static int flow_mode(char **argv, int cancel) {
    const char *sim_lib = argv[2], *params = argv[3];
    void *sim = dlopen(sim_lib, RTLD_NOW);
    if (!sim) {
        printf("FAIL dlopen %s: %s\n", sim_lib, dlerror());
        return 1;
    }
    char options[2048];
    snprintf(options, sizeof options, "{\"simulate\": true, \"acl_lib\": \"%s\"}", sim_lib);
    struct progress p = {.cancel_phase = cancel ? argv[4] : NULL, .cancel_at = cancel ? strtoull(argv[5], NULL, 10) : 0};
    aptq_callbacks cb = {on_progress, &p};
    char *summary = NULL;
    aptq_status st = aptq_flow_with_callbacks(params, options, &cb, &summary);
    if (cancel) {
        check(st == APTQ_CANCELLED, "the cancelled flow says so");
        const char *msg = aptq_last_error();
        char want[128];
        snprintf(want, sizeof want, "cancelled during step %s", argv[6]);
        check(msg && strstr(msg, want), "the message names the step");
        check(summary == NULL, "no summary for a cancelled flow");
        check(p.cancelled == 1, "cancelled once, no progress after it");
    } else {
        check(st == APTQ_OK, "the flow succeeds");
        check(summary && strstr(summary, "\"verdict_pass\""), "the summary has the verdict");
        /* Each step that ran reported its start; compare reports its input sets. */
        check(strstr(p.phases, "step ") != NULL, "step starts are reported");
        check(strstr(p.phases, "compare ") != NULL, "compare reports its input sets");
        check(p.last_total > 0, "totals are reported");
    }
    aptq_string_free(summary);
    check(live_objects(sim) == 0, "no live ACL object after the flow");
    printf("phases: %s\n", p.phases);
    dlclose(sim);
    return failures;
}

static int preprocess_mode(char **argv) {
    unsigned long long at = strtoull(argv[4], NULL, 10);
    struct progress p = {.cancel_phase = at ? "preprocess" : NULL, .cancel_at = at};
    aptq_callbacks cb = {on_progress, &p};
    char *manifest = NULL;
    aptq_status st = aptq_preprocess_with_callbacks(argv[2], argv[3], &cb, &manifest);
    if (at) {
        check(st == APTQ_CANCELLED, "the cancelled preprocessing says so");
        check(manifest == NULL && p.cancelled == 1, "no manifest, no progress after the cancel");
    } else {
        check(st == APTQ_OK && manifest && strstr(manifest, "\"files\""), "the preprocessing succeeds");
        check(strcmp(p.phases, "preprocess ") == 0 && p.last_done == p.last_total && p.calls >= 1, "progress up to the last image");
    }
    aptq_string_free(manifest);
    printf("progress reports: %d\n", p.calls);
    return failures;
}

int main(int argc, char **argv) {
    int bad;
    if (argc == 8 && strcmp(argv[1], "compare") == 0) bad = compare_mode(argv);
    else if (argc == 7 && strcmp(argv[1], "flow") == 0) bad = flow_mode(argv, 1);
    else if (argc == 4 && strcmp(argv[1], "flow-full") == 0) bad = flow_mode(argv, 0);
    else if (argc == 4 && strcmp(argv[1], "flow-atc") == 0) bad = flow_atc_mode(argv);
    else if (argc == 5 && strcmp(argv[1], "preprocess") == 0) bad = preprocess_mode(argv);
    else {
        fprintf(stderr, "usage: see the comment at the top of %s\n", __FILE__);
        return 2;
    }
    if (bad) return 1;
    printf("ok\n");
    return 0;
}
