// Runs an Ascend OM through the ascend-ptq C API session functions, from C++17.
//
//   run_om LIBASCENDCL OM [--save DIR] [INPUT.bin ...]
//
// LIBASCENDCL is libascendcl.so (CANN) or the ascend-ptq simulator libascendcl_sim.so; "-"
// searches the usual places. Each input is read from its file (raw bytes of the exact size the
// model expects) or, when no file is given, filled with zeros. Prints the model's inputs and
// outputs, then each output's name, size and first values; --save DIR also writes each output
// to DIR/NAME.bin. Exits 1 with the library's message on any failure.
//
// The handles are owned by std::unique_ptr with the matching aptq_*_free as deleter, so every
// path out of main frees them in reverse order.

#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "ascend_ptq.h"

namespace {

struct AclFree { void operator()(aptq_acl* p) const { aptq_acl_free(p); } };
struct ModelFree { void operator()(aptq_model* p) const { aptq_model_free(p); } };
struct OutputsFree { void operator()(aptq_outputs* p) const { aptq_outputs_free(p); } };
struct StringFree { void operator()(char* p) const { aptq_string_free(p); } };

using Acl = std::unique_ptr<aptq_acl, AclFree>;
using Model = std::unique_ptr<aptq_model, ModelFree>;
using Outputs = std::unique_ptr<aptq_outputs, OutputsFree>;
using String = std::unique_ptr<char, StringFree>;

// A failed call, carrying the status and the library's message.
struct Failure : std::runtime_error {
    Failure(const std::string& what, aptq_status status)
        : std::runtime_error(what + ": status " + std::to_string(status) + ": " +
                             (aptq_last_error() ? aptq_last_error() : "(no message)")) {}
};

void check(aptq_status status, const char* what) {
    if (status != APTQ_OK) throw Failure(what, status);
}

std::string info(aptq_status (*get)(const aptq_model*, size_t, char**), const aptq_model* m, size_t i) {
    char* raw = nullptr;
    check(get(m, i, &raw), "describing an input/output");
    String json(raw);
    return json.get();
}

std::vector<uint8_t> read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot read " + path);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// The first values of an output, decoded by the dtype its description names.
void print_values(const std::string& json, const uint8_t* data, size_t size) {
    const size_t shown = 8;
    if (json.find("\"dtype\":\"float32\"") != std::string::npos) {
        for (size_t i = 0; i < size / 4 && i < shown; ++i) {
            float v;
            std::memcpy(&v, data + 4 * i, 4);
            std::printf(" %.9g", static_cast<double>(v));
        }
    } else {
        for (size_t i = 0; i < size && i < shown; ++i) std::printf(" 0x%02x", data[i]);
    }
    std::printf("\n");
}

// The simulator counts the ACL objects alive; after every handle is freed all must be zero.
// A real libascendcl.so has no such function: nothing is printed then.
struct LiveCounts { size_t counts[9]; };

void print_live_counts(const char* lib) {
    if (!lib) return;
    void* h = dlopen(lib, RTLD_NOW | RTLD_NOLOAD);
    if (!h) return;
    using Fn = int (*)(LiveCounts*);
    auto fn = reinterpret_cast<Fn>(dlsym(h, "aclsimGetLiveCounts"));
    LiveCounts c{};
    if (fn && fn(&c) == 0) {
        size_t total = 0;
        for (size_t v : c.counts) total += v;
        std::printf("simulator live objects after free: %zu\n", total);
    }
    dlclose(h);
}

int run(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s LIBASCENDCL|- OM [--save DIR] [INPUT.bin ...]\n", argv[0]);
        return 2;
    }
    const char* lib = std::strcmp(argv[1], "-") == 0 ? nullptr : argv[1];
    std::string save_dir;
    std::vector<std::string> files;
    for (int a = 3; a < argc; ++a) {
        if (std::strcmp(argv[a], "--save") == 0 && a + 1 < argc) save_dir = argv[++a];
        else files.emplace_back(argv[a]);
    }
    {
        aptq_acl* raw_acl = nullptr;
        check(aptq_acl_open(lib, 0, &raw_acl), "opening AscendCL");
        Acl acl(raw_acl);
        char* raw_soc = nullptr;
        std::string soc = aptq_acl_soc_name(acl.get(), &raw_soc) == APTQ_OK ? String(raw_soc).get() : "unknown";
        std::printf("soc: %s%s\n", soc.c_str(), aptq_acl_is_simulator(acl.get()) ? " (simulator, not an NPU)" : "");

        aptq_model* raw_model = nullptr;
        check(aptq_model_load(acl.get(), argv[2], &raw_model), "loading the model");
        Model model(raw_model);
        const size_t n_in = aptq_model_num_inputs(model.get()), n_out = aptq_model_num_outputs(model.get());
        for (size_t i = 0; i < n_in; ++i) std::printf("input %zu: %s\n", i, info(aptq_model_input_info, model.get(), i).c_str());
        for (size_t i = 0; i < n_out; ++i) std::printf("output %zu: %s\n", i, info(aptq_model_output_info, model.get(), i).c_str());

        std::vector<std::vector<uint8_t>> data(n_in);
        std::vector<const void*> ptrs;
        std::vector<size_t> sizes;
        for (size_t i = 0; i < n_in; ++i) {
            data[i] = i < files.size() ? read_file(files[i]) : std::vector<uint8_t>(aptq_model_input_size(model.get(), i), 0);
            ptrs.push_back(data[i].data());
            sizes.push_back(data[i].size());
        }
        aptq_outputs* raw_out = nullptr;
        check(aptq_model_run(model.get(), ptrs.data(), sizes.data(), n_in, &raw_out), "running the model");
        Outputs outputs(raw_out);
        for (size_t i = 0; i < aptq_outputs_count(outputs.get()); ++i) {
            size_t size = 0;
            auto bytes = static_cast<const uint8_t*>(aptq_outputs_data(outputs.get(), i, &size));
            const char* name = aptq_outputs_name(outputs.get(), i);
            std::printf("result %s %zu bytes:", name, size);
            print_values(info(aptq_model_output_info, model.get(), i), bytes, size);
            if (!save_dir.empty()) {
                std::ofstream f(save_dir + "/" + name + ".bin", std::ios::binary);
                f.write(reinterpret_cast<const char*>(bytes), static_cast<std::streamsize>(size));
                if (!f) throw std::runtime_error("cannot write " + save_dir + "/" + name + ".bin");
            }
        }
    }  // outputs, model and acl are freed here, in that order
    print_live_counts(lib);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "run_om: %s\n", e.what());
        return 1;
    }
}
