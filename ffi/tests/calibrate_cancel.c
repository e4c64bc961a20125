/* aptq_calibrate_with_callbacks: the progress callback sees every pass, and returning non-zero
 * cancels the calibration with APTQ_CANCELLED. Prints "ok" and exits 0 when all hold; the
 * caller checks that CANCEL_PREFIX's folder holds no file.
 *
 *   calibrate_cancel MODEL INPUT_SHAPE DATA_DIR FULL_PREFIX CANCEL_PREFIX */
#include <stdio.h>
#include <string.h>

#include "ascend_ptq.h"

struct seen {
    unsigned calls;
    int clip_search;
    int writing;
    const char *cancel_at; /* a phase name, or NULL: never cancel */
    unsigned calls_after_cancel;
    int cancelled;
};

static int on_progress(void *user, const char *phase, uint64_t done, uint64_t total) {
    struct seen *s = (struct seen *)user;
    s->calls++;
    if (s->cancelled) {
        s->calls_after_cancel++;
    }
    if (strcmp(phase, "clip search") == 0) {
        s->clip_search = 1;
    }
    if (strcmp(phase, "writing") == 0) {
        s->writing = 1;
    }
    if (done > total) {
        fprintf(stderr, "FAILED: %s: done %llu > total %llu\n", phase, (unsigned long long)done, (unsigned long long)total);
    }
    if (s->cancel_at != NULL && strcmp(phase, s->cancel_at) == 0) {
        s->cancelled = 1;
        return 1;
    }
    return 0;
}

static int failures = 0;

static void expect(int cond, const char *what) {
    if (!cond) {
        fprintf(stderr, "FAILED: %s (last error: %s)\n", what, aptq_last_error() ? aptq_last_error() : "NULL");
        failures++;
    }
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s MODEL INPUT_SHAPE DATA_DIR FULL_PREFIX CANCEL_PREFIX\n", argv[0]);
        return 2;
    }
    char options[8192];
    char *summary = NULL;

    /* A full run: progress for every pass, ending with the writing. */
    struct seen full = {0};
    aptq_callbacks callbacks = {on_progress, &full};
    snprintf(options, sizeof options,
             "{\"model\": \"%s\", \"input_shape\": \"%s\", \"data_dir\": \"%s\", \"save_path\": \"%s\", \"batch_num\": 3}",
             argv[1], argv[2], argv[3], argv[4]);
    expect(aptq_calibrate_with_callbacks(options, &callbacks, &summary) == APTQ_OK, "a full run succeeds");
    expect(summary != NULL, "a full run writes the summary");
    aptq_string_free(summary);
    expect(full.calls >= 6, "progress is reported for every batch of every pass");
    expect(full.clip_search && full.writing, "the clip search and the writing are reported");

    /* NULL callbacks: plain aptq_calibrate. */
    summary = NULL;
    expect(aptq_calibrate_with_callbacks(options, NULL, &summary) == APTQ_OK, "NULL callbacks work");
    aptq_string_free(summary);

    /* Cancelled in the clip search: APTQ_CANCELLED, summary untouched, no progress after it. */
    struct seen cancel = {0};
    cancel.cancel_at = "clip search";
    callbacks.user = &cancel;
    snprintf(options, sizeof options,
             "{\"model\": \"%s\", \"input_shape\": \"%s\", \"data_dir\": \"%s\", \"save_path\": \"%s\", \"batch_num\": 3}",
             argv[1], argv[2], argv[3], argv[5]);
    summary = (char *)0x1;
    expect(aptq_calibrate_with_callbacks(options, &callbacks, &summary) == APTQ_CANCELLED, "cancelling gives APTQ_CANCELLED");
    expect(summary == (char *)0x1, "a cancelled call leaves *summary_json untouched");
    expect(aptq_last_error() != NULL && strstr(aptq_last_error(), "cancelled") != NULL, "the message says cancelled");
    expect(cancel.cancelled && cancel.calls_after_cancel == 0, "no progress after the cancel");

    if (failures == 0) {
        printf("ok\n");
    }
    return failures == 0 ? 0 : 1;
}
