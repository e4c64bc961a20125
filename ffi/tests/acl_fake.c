/*
 * A tiny fake libascendcl.so for tests/acl_fake.rs: every function of ffi/acl/acl_api.h with
 * trivial behaviour, ACL's error codes for misuse, counters of live objects (the simulator's
 * aclsimGetLiveCounts), and failure injection. Not the simulator (ffi/acl-sim): no real models.
 *
 * A "model" is a text file:  FAKEOM
 *                            in  NAME DTYPE FORMAT AIPP NDIM D0 D1 ...
 *                            out NAME DTYPE FORMAT AIPP NDIM D0 D1 ...
 * Executing fills byte j of output k with (input0[j % size0] + k + 1) mod 256.
 *
 * Build variants: -DFAKE_OMIT_EXECUTE (lacks the required aclmdlExecute),
 * -DFAKE_NO_OPTIONAL (lacks aclGetRecentErrMsg and aclrtGetSocName, as older CANN).
 */
#include "acl_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t device_buffers, host_buffers, data_buffers, datasets, model_descs, models, contexts, streams, devices_set;
} aclsimLiveCounts;

static aclsimLiveCounts live;
static int initialised, finalized;
static int run_mode = ACL_HOST;
static size_t memcpy_calls;
static char fail_symbol[64];
static int fail_code;
static char recent[256];
static __thread aclrtContext current;

/* ---- Test controls (not ACL) ---- */
int aclsimGetLiveCounts(aclsimLiveCounts *out) {
    if (!out) return ACL_ERROR_INVALID_PARAM;
    *out = live;
    return ACL_SUCCESS;
}
/* The next calls of `symbol` return `code` (NULL or code 0 clears). */
void aclfakeSetFail(const char *symbol, int code) {
    snprintf(fail_symbol, sizeof fail_symbol, "%s", symbol ? symbol : "");
    fail_code = code;
}
void aclfakeSetRunMode(int mode) { run_mode = mode; }
size_t aclfakeMemcpyCount(void) { return memcpy_calls; }

static aclError fail(aclError code, const char *msg) {
    snprintf(recent, sizeof recent, "fake: %s", msg);
    return code;
}
/* Returns the injected code for `name`, 0 otherwise. */
static aclError injected(const char *name) {
    if (fail_code != 0 && strcmp(fail_symbol, name) == 0) {
        snprintf(recent, sizeof recent, "fake: injected failure of %s", name);
        return fail_code;
    }
    return ACL_SUCCESS;
}
#define INJECT(name)                              \
    do {                                          \
        aclError injected_code = injected(name);  \
        if (injected_code) return injected_code;  \
    } while (0)

/* ---- Init, version, optional symbols ---- */
aclError aclInit(const char *configPath) {
    (void)configPath;
    INJECT("aclInit");
    if (initialised) return fail(ACL_ERROR_REPEAT_INITIALIZE, "aclInit called twice");
    if (finalized) return fail(ACL_ERROR_REPEAT_INITIALIZE, "aclInit after aclFinalize");
    initialised = 1;
    return ACL_SUCCESS;
}
aclError aclFinalize(void) {
    if (!initialised) return fail(ACL_ERROR_REPEAT_FINALIZE, "aclFinalize without aclInit");
    initialised = 0;
    finalized = 1;
    return ACL_SUCCESS;
}
#ifndef FAKE_NO_OPTIONAL
const char *aclGetRecentErrMsg(void) {
    static char copy[256];
    if (!recent[0]) return NULL;
    memcpy(copy, recent, sizeof copy);
    recent[0] = 0;
    return copy;
}
const char *aclrtGetSocName(void) { return "FakeSoc"; }
#endif
aclError aclrtGetVersion(int32_t *majorVersion, int32_t *minorVersion, int32_t *patchVersion) {
    if (!majorVersion || !minorVersion || !patchVersion) return ACL_ERROR_INVALID_PARAM;
    *majorVersion = 1, *minorVersion = 2, *patchVersion = 3;
    return ACL_SUCCESS;
}

/* ---- Devices, contexts, streams ---- */
static int device_refs;
aclError aclrtGetDeviceCount(uint32_t *count) {
    if (!count) return ACL_ERROR_INVALID_PARAM;
    *count = 1;
    return ACL_SUCCESS;
}
aclError aclrtSetDevice(int32_t deviceId) {
    INJECT("aclrtSetDevice");
    if (!initialised) return fail(ACL_ERROR_UNINITIALIZE, "aclrtSetDevice before aclInit");
    if (deviceId != 0) return fail(ACL_ERROR_RT_INVALID_DEVICEID, "only device 0 exists");
    device_refs++, live.devices_set++;
    return ACL_SUCCESS;
}
aclError aclrtResetDevice(int32_t deviceId) {
    if (deviceId != 0 || device_refs == 0) return fail(ACL_ERROR_RT_INVALID_DEVICEID, "device not set");
    device_refs--, live.devices_set--;
    return ACL_SUCCESS;
}
typedef struct { int device; } fake_ctx;
aclError aclrtCreateContext(aclrtContext *context, int32_t deviceId) {
    INJECT("aclrtCreateContext");
    if (!context) return ACL_ERROR_INVALID_PARAM;
    if (deviceId != 0 || device_refs == 0) return fail(ACL_ERROR_RT_INVALID_DEVICEID, "device not set");
    fake_ctx *c = malloc(sizeof *c);
    c->device = deviceId;
    *context = current = c;
    live.contexts++;
    return ACL_SUCCESS;
}
aclError aclrtDestroyContext(aclrtContext context) {
    if (!context) return ACL_ERROR_RT_CONTEXT_NULL;
    if (current == context) current = NULL;
    free(context);
    live.contexts--;
    return ACL_SUCCESS;
}
aclError aclrtSetCurrentContext(aclrtContext context) {
    if (!context) return ACL_ERROR_RT_CONTEXT_NULL;
    current = context;
    return ACL_SUCCESS;
}
aclError aclrtGetCurrentContext(aclrtContext *context) {
    if (!context) return ACL_ERROR_INVALID_PARAM;
    if (!current) return ACL_ERROR_RT_CONTEXT_NULL;
    *context = current;
    return ACL_SUCCESS;
}
aclError aclrtCreateStream(aclrtStream *stream) {
    if (!stream) return ACL_ERROR_INVALID_PARAM;
    if (!current) return fail(ACL_ERROR_RT_CONTEXT_NULL, "no current context");
    *stream = malloc(1);
    live.streams++;
    return ACL_SUCCESS;
}
aclError aclrtDestroyStream(aclrtStream stream) {
    if (!stream) return ACL_ERROR_INVALID_PARAM;
    free(stream);
    live.streams--;
    return ACL_SUCCESS;
}
aclError aclrtSynchronizeStream(aclrtStream stream) { return stream ? ACL_SUCCESS : ACL_ERROR_INVALID_PARAM; }
aclError aclrtGetRunMode(aclrtRunMode *runMode) {
    if (!runMode) return ACL_ERROR_INVALID_PARAM;
    *runMode = (aclrtRunMode)run_mode;
    return ACL_SUCCESS;
}

/* ---- Memory: device allocations are tracked so misuse is detected ---- */
#define MAX_ALLOCS 256
static struct { void *ptr; size_t size; } allocs[MAX_ALLOCS];

static size_t device_size(const void *ptr) {
    for (int i = 0; i < MAX_ALLOCS; i++)
        if (allocs[i].ptr == ptr) return allocs[i].size;
    return 0;
}
aclError aclrtMalloc(void **devPtr, size_t size, aclrtMemMallocPolicy policy) {
    (void)policy;
    INJECT("aclrtMalloc");
    if (!devPtr || size == 0) return ACL_ERROR_INVALID_PARAM;
    if (!current) return fail(ACL_ERROR_RT_CONTEXT_NULL, "aclrtMalloc without a current context");
    for (int i = 0; i < MAX_ALLOCS; i++) {
        if (!allocs[i].ptr) {
            allocs[i].ptr = *devPtr = calloc(1, size);
            allocs[i].size = size;
            live.device_buffers++;
            return ACL_SUCCESS;
        }
    }
    return ACL_ERROR_BAD_ALLOC;
}
aclError aclrtFree(void *devPtr) {
    for (int i = 0; i < MAX_ALLOCS; i++) {
        if (devPtr && allocs[i].ptr == devPtr) {
            free(devPtr);
            allocs[i].ptr = NULL;
            live.device_buffers--;
            return ACL_SUCCESS;
        }
    }
    return fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtFree of memory not from aclrtMalloc");
}
aclError aclrtMallocHost(void **hostPtr, size_t size) {
    if (!hostPtr || size == 0) return ACL_ERROR_INVALID_PARAM;
    *hostPtr = malloc(size);
    live.host_buffers++;
    return ACL_SUCCESS;
}
aclError aclrtFreeHost(void *hostPtr) {
    if (!hostPtr) return ACL_ERROR_INVALID_PARAM;
    free(hostPtr);
    live.host_buffers--;
    return ACL_SUCCESS;
}
aclError aclrtMemcpy(void *dst, size_t destMax, const void *src, size_t count, aclrtMemcpyKind kind) {
    memcpy_calls++;
    if (!dst || !src || count > destMax) return fail(ACL_ERROR_INVALID_PARAM, "aclrtMemcpy: bad pointer or count > destMax");
    const void *dev = kind == ACL_MEMCPY_HOST_TO_DEVICE ? dst : kind == ACL_MEMCPY_DEVICE_TO_HOST ? src : NULL;
    if (!dev) return fail(ACL_ERROR_INVALID_PARAM, "aclrtMemcpy: unsupported kind");
    size_t size = device_size(dev);
    if (size == 0) return fail(ACL_ERROR_INVALID_PARAM, "aclrtMemcpy: the device side is not device memory (wrong kind?)");
    if (count > size || (dev == dst && destMax > size)) return fail(ACL_ERROR_INVALID_PARAM, "aclrtMemcpy beyond the allocation");
    memcpy(dst, src, count);
    return ACL_SUCCESS;
}
aclError aclrtMemset(void *devPtr, size_t maxCount, int32_t value, size_t count) {
    size_t size = device_size(devPtr);
    if (size == 0 || maxCount > size || count > maxCount) return fail(ACL_ERROR_INVALID_PARAM, "aclrtMemset: bad memory");
    memset(devPtr, value, count);
    return ACL_SUCCESS;
}

/* ---- Models ---- */
#define MAX_IO 8
#define MAX_MODELS 16
typedef struct {
    char name[ACL_MAX_TENSOR_NAME_LEN];
    int dtype, format, aipp;
    size_t ndim, size;
    int64_t dims[8];
} fake_io;
typedef struct {
    int used;
    size_t n_in, n_out;
    fake_io in[MAX_IO], out[MAX_IO];
} fake_model;
static fake_model models[MAX_MODELS];

size_t aclDataTypeSize(aclDataType dataType) {
    switch (dataType) {
    case ACL_INT8: case ACL_UINT8: case ACL_BOOL: return 1;
    case ACL_FLOAT16: case ACL_BF16: case ACL_INT16: case ACL_UINT16: return 2;
    case ACL_FLOAT: case ACL_INT32: case ACL_UINT32: return 4;
    case ACL_INT64: case ACL_UINT64: case ACL_DOUBLE: return 8;
    default: return 0;
    }
}

static aclError parse_model(const char *text, size_t len, uint32_t *modelId) {
    int slot = -1;
    for (int i = 0; i < MAX_MODELS; i++)
        if (!models[i].used) { slot = i; break; }
    if (slot < 0) return ACL_ERROR_BAD_ALLOC;
    if (len < 6 || memcmp(text, "FAKEOM", 6) != 0) return fail(ACL_ERROR_PARSE_MODEL, "not a fake model (no FAKEOM magic)");
    fake_model m;
    memset(&m, 0, sizeof m);
    char *copy = malloc(len + 1), *save = NULL;
    memcpy(copy, text, len);
    copy[len] = 0;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char kind[4];
        fake_io io;
        int n = 0;
        memset(&io, 0, sizeof io);
        if (sscanf(line, "%3s %127s %d %d %d %zu%n", kind, io.name, &io.dtype, &io.format, &io.aipp, &io.ndim, &n) != 6) continue;
        if (io.ndim > 8) { free(copy); return fail(ACL_ERROR_PARSE_MODEL, "too many dims"); }
        io.size = aclDataTypeSize((aclDataType)io.dtype);
        for (size_t d = 0; d < io.ndim; d++) {
            int used = 0;
            long long v = 0;
            if (sscanf(line + n, "%lld%n", &v, &used) != 1) { free(copy); return fail(ACL_ERROR_PARSE_MODEL, "short dims"); }
            io.dims[d] = v, io.size *= (size_t)v, n += used;
        }
        if (strcmp(kind, "in") == 0 && m.n_in < MAX_IO) m.in[m.n_in++] = io;
        else if (strcmp(kind, "out") == 0 && m.n_out < MAX_IO) m.out[m.n_out++] = io;
    }
    free(copy);
    if (m.n_in == 0 || m.n_out == 0) return fail(ACL_ERROR_PARSE_MODEL, "a fake model needs inputs and outputs");
    m.used = 1;
    models[slot] = m;
    *modelId = (uint32_t)slot + 1;
    live.models++;
    return ACL_SUCCESS;
}
static fake_model *model(uint32_t id) {
    return id >= 1 && id <= MAX_MODELS && models[id - 1].used ? &models[id - 1] : NULL;
}
aclError aclmdlLoadFromMem(const void *data, size_t modelSize, uint32_t *modelId) {
    INJECT("aclmdlLoadFromMem");
    if (!data || !modelId) return ACL_ERROR_INVALID_PARAM;
    if (!current) return fail(ACL_ERROR_RT_CONTEXT_NULL, "no current context");
    return parse_model(data, modelSize, modelId);
}
aclError aclmdlLoadFromFile(const char *modelPath, uint32_t *modelId) {
    INJECT("aclmdlLoadFromFile");
    if (!modelPath || !modelId) return ACL_ERROR_INVALID_PARAM;
    if (!current) return fail(ACL_ERROR_RT_CONTEXT_NULL, "no current context");
    FILE *f = fopen(modelPath, "rb");
    if (!f) return fail(ACL_ERROR_GE_EXEC_MODEL_PATH_INVALID, "cannot open the model file");
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return parse_model(buf, n, modelId);
}
aclError aclmdlUnload(uint32_t modelId) {
    fake_model *m = model(modelId);
    if (!m) return fail(ACL_ERROR_INVALID_MODEL_ID, "unknown model id");
    m->used = 0;
    live.models--;
    return ACL_SUCCESS;
}
aclError aclmdlQuerySize(const char *fileName, size_t *workSize, size_t *weightSize) {
    FILE *f = fileName ? fopen(fileName, "rb") : NULL;
    if (!f || !workSize || !weightSize) return fail(ACL_ERROR_GE_EXEC_MODEL_PATH_INVALID, "cannot open the model file");
    fseek(f, 0, SEEK_END);
    *workSize = 0, *weightSize = (size_t)ftell(f);
    fclose(f);
    return ACL_SUCCESS;
}

/* ---- Descriptions ---- */
struct aclmdlDesc { fake_model m; int filled; };
aclmdlDesc *aclmdlCreateDesc(void) {
    if (injected("aclmdlCreateDesc")) return NULL;
    live.model_descs++;
    return calloc(1, sizeof(aclmdlDesc));
}
aclError aclmdlDestroyDesc(aclmdlDesc *modelDesc) {
    if (!modelDesc) return ACL_ERROR_INVALID_PARAM;
    free(modelDesc);
    live.model_descs--;
    return ACL_SUCCESS;
}
aclError aclmdlGetDesc(aclmdlDesc *modelDesc, uint32_t modelId) {
    INJECT("aclmdlGetDesc");
    fake_model *m = model(modelId);
    if (!modelDesc) return ACL_ERROR_INVALID_PARAM;
    if (!m) return fail(ACL_ERROR_INVALID_MODEL_ID, "unknown model id");
    modelDesc->m = *m;
    modelDesc->filled = 1;
    return ACL_SUCCESS;
}
static const fake_io *io_of(const aclmdlDesc *d, int input, size_t index) {
    if (!d || !d->filled) return NULL;
    if (input) return index < d->m.n_in ? &d->m.in[index] : NULL;
    return index < d->m.n_out ? &d->m.out[index] : NULL;
}
size_t aclmdlGetNumInputs(aclmdlDesc *modelDesc) { return modelDesc ? modelDesc->m.n_in : 0; }
size_t aclmdlGetNumOutputs(aclmdlDesc *modelDesc) { return modelDesc ? modelDesc->m.n_out : 0; }
size_t aclmdlGetInputSizeByIndex(aclmdlDesc *modelDesc, size_t index) {
    const fake_io *io = io_of(modelDesc, 1, index);
    return io ? io->size : 0;
}
size_t aclmdlGetOutputSizeByIndex(aclmdlDesc *modelDesc, size_t index) {
    const fake_io *io = io_of(modelDesc, 0, index);
    return io ? io->size : 0;
}
static aclError dims_of(const fake_io *io, aclmdlIODims *dims) {
    if (!io || !dims) return ACL_ERROR_INVALID_PARAM;
    memset(dims, 0, sizeof *dims);
    snprintf(dims->name, sizeof dims->name, "%s", io->name);
    dims->dimCount = io->ndim;
    for (size_t i = 0; i < io->ndim; i++) dims->dims[i] = io->dims[i];
    return ACL_SUCCESS;
}
aclError aclmdlGetInputDims(const aclmdlDesc *modelDesc, size_t index, aclmdlIODims *dims) { return dims_of(io_of(modelDesc, 1, index), dims); }
aclError aclmdlGetOutputDims(const aclmdlDesc *modelDesc, size_t index, aclmdlIODims *dims) { return dims_of(io_of(modelDesc, 0, index), dims); }
aclDataType aclmdlGetInputDataType(const aclmdlDesc *modelDesc, size_t index) {
    const fake_io *io = io_of(modelDesc, 1, index);
    return io ? (aclDataType)io->dtype : ACL_DT_UNDEFINED;
}
aclDataType aclmdlGetOutputDataType(const aclmdlDesc *modelDesc, size_t index) {
    const fake_io *io = io_of(modelDesc, 0, index);
    return io ? (aclDataType)io->dtype : ACL_DT_UNDEFINED;
}
aclFormat aclmdlGetInputFormat(const aclmdlDesc *modelDesc, size_t index) {
    const fake_io *io = io_of(modelDesc, 1, index);
    return io ? (aclFormat)io->format : ACL_FORMAT_UNDEFINED;
}
aclFormat aclmdlGetOutputFormat(const aclmdlDesc *modelDesc, size_t index) {
    const fake_io *io = io_of(modelDesc, 0, index);
    return io ? (aclFormat)io->format : ACL_FORMAT_UNDEFINED;
}
const char *aclmdlGetInputNameByIndex(const aclmdlDesc *modelDesc, size_t index) {
    const fake_io *io = io_of(modelDesc, 1, index);
    return io ? io->name : NULL;
}
const char *aclmdlGetOutputNameByIndex(const aclmdlDesc *modelDesc, size_t index) {
    const fake_io *io = io_of(modelDesc, 0, index);
    return io ? io->name : NULL;
}
aclError aclmdlGetInputIndexByName(const aclmdlDesc *modelDesc, const char *name, size_t *index) {
    if (!modelDesc || !name || !index) return ACL_ERROR_INVALID_PARAM;
    for (size_t i = 0; i < modelDesc->m.n_in; i++)
        if (strcmp(modelDesc->m.in[i].name, name) == 0) { *index = i; return ACL_SUCCESS; }
    return fail(ACL_ERROR_INVALID_PARAM, "no input of that name");
}
aclError aclmdlGetAippType(uint32_t modelId, size_t index, aclmdlInputAippType *type, size_t *dynamicAttachedDataIndex) {
    fake_model *m = model(modelId);
    if (!m) return fail(ACL_ERROR_INVALID_MODEL_ID, "unknown model id");
    if (index >= m->n_in || !type || !dynamicAttachedDataIndex) return ACL_ERROR_INVALID_PARAM;
    *type = (aclmdlInputAippType)m->in[index].aipp;
    *dynamicAttachedDataIndex = (size_t)-1;
    return ACL_SUCCESS;
}

/* ---- Datasets and data buffers ---- */
struct aclDataBuffer { void *data; size_t size; };
struct aclmdlDataset { size_t n; aclDataBuffer *bufs[MAX_IO]; };
aclmdlDataset *aclmdlCreateDataset(void) {
    if (injected("aclmdlCreateDataset")) return NULL;
    live.datasets++;
    return calloc(1, sizeof(aclmdlDataset));
}
aclError aclmdlDestroyDataset(const aclmdlDataset *dataset) {
    if (!dataset) return ACL_ERROR_INVALID_PARAM;
    free((void *)dataset);
    live.datasets--;
    return ACL_SUCCESS;
}
aclError aclmdlAddDatasetBuffer(aclmdlDataset *dataset, aclDataBuffer *dataBuffer) {
    if (!dataset || !dataBuffer || dataset->n == MAX_IO) return ACL_ERROR_INVALID_PARAM;
    dataset->bufs[dataset->n++] = dataBuffer;
    return ACL_SUCCESS;
}
aclDataBuffer *aclmdlGetDatasetBuffer(const aclmdlDataset *dataset, size_t index) {
    return dataset && index < dataset->n ? dataset->bufs[index] : NULL;
}
size_t aclmdlGetDatasetNumBuffers(const aclmdlDataset *dataset) { return dataset ? dataset->n : 0; }
aclDataBuffer *aclCreateDataBuffer(void *data, size_t size) {
    aclDataBuffer *b = malloc(sizeof *b);
    b->data = data, b->size = size;
    live.data_buffers++;
    return b;
}
aclError aclDestroyDataBuffer(const aclDataBuffer *dataBuffer) {
    if (!dataBuffer) return ACL_ERROR_INVALID_PARAM;
    free((void *)dataBuffer);
    live.data_buffers--;
    return ACL_SUCCESS;
}
void *aclGetDataBufferAddr(const aclDataBuffer *dataBuffer) { return dataBuffer ? dataBuffer->data : NULL; }
size_t aclGetDataBufferSizeV2(const aclDataBuffer *dataBuffer) { return dataBuffer ? dataBuffer->size : 0; }

#ifndef FAKE_OMIT_EXECUTE
static int matches(const aclmdlDataset *set, const fake_io *ios, size_t n) {
    if (!set || set->n != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (set->bufs[i]->size != ios[i].size || device_size(set->bufs[i]->data) < ios[i].size) return 0;
    return 1;
}
aclError aclmdlExecute(uint32_t modelId, const aclmdlDataset *input, aclmdlDataset *output) {
    INJECT("aclmdlExecute");
    fake_model *m = model(modelId);
    if (!m) return fail(ACL_ERROR_INVALID_MODEL_ID, "unknown model id");
    if (!matches(input, m->in, m->n_in)) return fail(ACL_ERROR_MODEL_INPUT_NOT_MATCH, "input dataset does not match the model");
    if (!matches(output, m->out, m->n_out)) return fail(ACL_ERROR_MODEL_OUTPUT_NOT_MATCH, "output dataset does not match the model");
    const unsigned char *in0 = input->bufs[0]->data;
    for (size_t k = 0; k < m->n_out; k++) {
        unsigned char *out = output->bufs[k]->data;
        for (size_t j = 0; j < m->out[k].size; j++) out[j] = (unsigned char)(in0[j % m->in[0].size] + k + 1);
    }
    return ACL_SUCCESS;
}
#endif
