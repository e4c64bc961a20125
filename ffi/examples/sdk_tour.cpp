// The long calls of the ascend-ptq C API from C++17, with progress and cancellation:
//
//   sdk_tour LIBASCENDCL MODEL INPUT_SHAPE CALIB_DIR BATCHES SAVE_DIR INT8_OM FP16_OM CMP_DIR CMP_BATCHES
//
// 1. calibrates MODEL on BATCHES float32 bins of CALIB_DIR into SAVE_DIR/full/model_*, drawing a
//    progress line per pass;
// 2. starts the same calibration into SAVE_DIR/cancelled/ and cancels it halfway through its
//    first pass (the callback returns non-zero): the call returns APTQ_CANCELLED and writes
//    nothing;
// 3. compares INT8_OM with FP16_OM on CMP_BATCHES float32 bins of CMP_DIR through LIBASCENDCL
//    (libascendcl.so on a board, or the bundle's lib/ascend_ptq/libascendcl_sim.so), with
//    progress, and prints the int8-vs-fp16 cosine and the verdict.
// Exits 0 when all three behave as described, 1 otherwise (with the library's message).

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "ascend_ptq.h"

namespace {

struct StringFree { void operator()(char* p) const { aptq_string_free(p); } };
using String = std::unique_ptr<char, StringFree>;

// What the progress callback sees; `cancel_at` is the fraction of the first pass at which to
// cancel (negative: never).
struct Progress {
    double cancel_at = -1;
    std::string first_phase;
    std::string last_phase;
    unsigned calls = 0;
    bool cancelled = false;
};

// May be called from a library worker thread: it only touches its own Progress.
int on_progress(void* user, const char* phase, uint64_t done, uint64_t total) {
    auto* p = static_cast<Progress*>(user);
    p->calls++;
    if (p->first_phase.empty()) p->first_phase = phase;
    if (p->last_phase != phase) {
        if (!p->last_phase.empty()) std::printf("\n");
        p->last_phase = phase;
    }
    std::printf("\r  %-24s %3llu/%-3llu", phase, static_cast<unsigned long long>(done), static_cast<unsigned long long>(total));
    std::fflush(stdout);
    if (p->cancel_at >= 0 && p->first_phase == phase && total > 0 &&
        static_cast<double>(done) >= p->cancel_at * static_cast<double>(total)) {
        p->cancelled = true;
        std::printf("  <- cancel");
        return 1;
    }
    return 0;
}

std::string calibration_options(const char* model, const char* shape, const char* data, const char* batches, const std::string& save) {
    return std::string("{\"model\": \"") + model + "\", \"input_shape\": \"" + shape + "\", \"data_dir\": \"" + data +
           "\", \"data_types\": \"float32\", \"batch_num\": " + batches + ", \"eval_batches\": 1, \"save_path\": \"" + save + "\"}";
}

bool exists(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f) std::fclose(f);
    return f != nullptr;
}

// The text after `"key":` (and spaces) in `json`, or nullptr.
const char* value_after(const char* json, const char* key) {
    const char* at = json ? std::strstr(json, key) : nullptr;
    if (!at) return nullptr;
    at += std::strlen(key);
    while (*at == ' ' || *at == ':' || *at == '\n') at++;
    return at;
}

std::string message() { return aptq_last_error() ? aptq_last_error() : "(no message)"; }

}  // namespace

int main(int argc, char** argv) {
    if (argc != 11) {
        std::fprintf(stderr, "usage: %s LIBASCENDCL MODEL INPUT_SHAPE CALIB_DIR BATCHES SAVE_DIR INT8_OM FP16_OM CMP_DIR CMP_BATCHES\n", argv[0]);
        return 2;
    }
    const char *acl = argv[1], *model = argv[2], *shape = argv[3], *calib = argv[4], *batches = argv[5];
    const std::string save = argv[6];
    const char *int8 = argv[7], *fp16 = argv[8], *cmp = argv[9], *cmp_batches = argv[10];
    std::printf("ascend-ptq %s\n", aptq_version());

    // 1. A calibration with progress.
    std::printf("calibrating %s\n", model);
    Progress full;
    aptq_callbacks callbacks{on_progress, &full};
    char* raw = nullptr;
    std::string options = calibration_options(model, shape, calib, batches, save + "/full/model");
    if (aptq_calibrate_with_callbacks(options.c_str(), &callbacks, &raw) != APTQ_OK) {
        std::printf("\ncalibration failed: %s\n", message().c_str());
        return 1;
    }
    String summary(raw);
    std::printf("\ncalibration done: %s\n", exists(save + "/full/model_deploy_model.onnx") ? "deploy model written" : "NO deploy model");
    if (!exists(save + "/full/model_deploy_model.onnx") || full.calls == 0) return 1;

    // 2. The same calibration, cancelled halfway through its first pass.
    std::printf("calibrating again, cancelling halfway\n");
    Progress half;
    half.cancel_at = 0.5;
    callbacks.user = &half;
    options = calibration_options(model, shape, calib, batches, save + "/cancelled/model");
    raw = nullptr;
    aptq_status status = aptq_calibrate_with_callbacks(options.c_str(), &callbacks, &raw);
    std::printf("\nsecond calibration: status %d (%s)\n", static_cast<int>(status), message().c_str());
    if (status != APTQ_CANCELLED || raw != nullptr || !half.cancelled) return 1;
    for (const char* suffix : {"_deploy_model.onnx", "_fake_quant_model.onnx", "_record.txt", "_quant.json"}) {
        if (exists(save + "/cancelled/model" + suffix)) {
            std::printf("the cancelled calibration wrote model%s\n", suffix);
            return 1;
        }
    }

    // 3. int8 vs fp16 OM through AscendCL (or the simulator), with progress.
    std::printf("comparing %s with %s\n", int8, fp16);
    Progress compare;
    callbacks.user = &compare;
    options = std::string("{\"int8\": \"") + int8 + "\", \"fp16\": \"" + fp16 + "\", \"data_dir\": \"" + cmp +
              "\", \"data_types\": \"float32\", \"batch_num\": " + cmp_batches + ", \"acl_lib\": \"" + acl + "\", \"threshold\": 0.9}";
    raw = nullptr;
    if (aptq_compare_with_callbacks(options.c_str(), &callbacks, &raw) != APTQ_OK) {
        std::printf("\ncompare failed: %s\n", message().c_str());
        return 1;
    }
    String report(raw);
    // The report is JSON (the same document as REPORT.json); without a JSON library, read the
    // verdict and the first output's mean int8-vs-fp16 cosine.
    const char* pass = value_after(report.get(), "\"pass\"");
    const char* cosine = value_after(std::strstr(report.get(), "\"cosine_similarity\""), "\"mean\"");
    std::printf("\ncompare: %u progress reports, int8 vs fp16 cosine %.6f, verdict %s\n", compare.calls,
                cosine ? std::strtod(cosine, nullptr) : -1.0, pass && std::strncmp(pass, "true", 4) == 0 ? "PASS" : "FAIL");
    if (compare.calls == 0 || !pass || !cosine) return 1;
    std::printf("sdk_tour: ok\n");
    return 0;
}
