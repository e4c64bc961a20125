//! Finding and opening `libascendcl.so` at run time (it is never linked): an explicit path
//! (`--acl-lib` / API argument, else `$ASCEND_PTQ_ACL_LIB`) is used alone; otherwise the CANN
//! install folders are tried in order, then the dynamic loader's own search path. Every required
//! symbol is checked at open time so a call can never hit a missing one.

use std::ffi::{OsString, c_char};
use std::path::{Path, PathBuf};

use super::error::{Error, Tried};
use super::result::Api;
use super::sys;

/// The file name of the AscendCL runtime library.
pub const LIB_NAME: &str = "libascendcl.so";
/// Environment variable naming the library (or its folder) when no explicit path is given.
pub const ENV_LIB: &str = "ASCEND_PTQ_ACL_LIB";

macro_rules! symbol_lists {
    (required: $($req:ident)*; optional: $($opt:ident)*;) => {
        /// Functions the bindings call; a library lacking one is refused (docs/ascend-formats.md §11.3).
        pub const REQUIRED_SYMBOLS: &[&str] = &[$(stringify!($req)),*];
        /// Functions older CANN releases lack; their absence is tolerated.
        pub const OPTIONAL_SYMBOLS: &[&str] = &[$(stringify!($opt)),*];

        fn missing_required(lib: &sys::AclLib) -> Vec<&'static str> {
            let mut missing = Vec::new();
            $(if lib.$req.is_err() { missing.push(stringify!($req)); })*
            missing
        }
    };
}

symbol_lists! {
    required:
        aclInit aclFinalize aclrtGetVersion aclrtGetDeviceCount aclrtSetDevice aclrtResetDevice
        aclrtCreateContext aclrtDestroyContext aclrtSetCurrentContext aclrtGetCurrentContext
        aclrtCreateStream aclrtDestroyStream aclrtSynchronizeStream aclrtGetRunMode
        aclrtMalloc aclrtFree aclrtMallocHost aclrtFreeHost aclrtMemcpy aclrtMemset
        aclmdlLoadFromFile aclmdlLoadFromMem aclmdlUnload aclmdlQuerySize
        aclmdlCreateDesc aclmdlDestroyDesc aclmdlGetDesc aclmdlGetNumInputs aclmdlGetNumOutputs
        aclmdlGetInputSizeByIndex aclmdlGetOutputSizeByIndex aclmdlGetInputDims aclmdlGetOutputDims
        aclmdlGetInputDataType aclmdlGetOutputDataType aclmdlGetInputFormat aclmdlGetOutputFormat
        aclmdlGetInputNameByIndex aclmdlGetOutputNameByIndex aclmdlGetInputIndexByName
        aclmdlCreateDataset aclmdlDestroyDataset aclmdlAddDatasetBuffer aclmdlGetDatasetBuffer
        aclmdlGetDatasetNumBuffers aclCreateDataBuffer aclDestroyDataBuffer aclGetDataBufferAddr
        aclGetDataBufferSizeV2 aclmdlExecute aclmdlGetAippType aclDataTypeSize;
    optional: aclGetRecentErrMsg aclrtGetSocName;
}

/// Where to look for the library, in order. [`LibrarySearch::from_env`] builds the standard one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibrarySearch {
    /// A library file or its folder, with where it came from ("--acl-lib", "$ASCEND_PTQ_ACL_LIB").
    /// When set, nothing else is tried.
    pub explicit: Option<(PathBuf, String)>,
    /// Folders holding `libascendcl.so`, each with where it came from.
    pub dirs: Vec<(PathBuf, String)>,
    /// Finally ask the dynamic loader for `libascendcl.so` (LD_LIBRARY_PATH, ld.so.cache, ...).
    pub loader_default: bool,
}

impl LibrarySearch {
    /// The standard search: `explicit` (an API argument or `--acl-lib`), else `$ASCEND_PTQ_ACL_LIB`;
    /// without either, `$ASCEND_TOOLKIT_HOME/lib64`, `$ASCEND_HOME_PATH/lib64`, the default toolkit
    /// and nnrt install folders, then the loader's search path.
    pub fn from_env(explicit: Option<&Path>) -> LibrarySearch {
        Self::with_env(explicit, |name| std::env::var_os(name))
    }

    /// As [`LibrarySearch::from_env`] with the environment given by `env`.
    pub fn with_env(explicit: Option<&Path>, env: impl Fn(&str) -> Option<OsString>) -> LibrarySearch {
        let set = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let explicit = match explicit {
            Some(path) => Some((path.to_path_buf(), "--acl-lib".to_string())),
            None => set(ENV_LIB).map(|p| (p, format!("${ENV_LIB}"))),
        };
        let mut dirs = Vec::new();
        for var in ["ASCEND_TOOLKIT_HOME", "ASCEND_HOME_PATH"] {
            if let Some(home) = set(var) {
                dirs.push((home.join("lib64"), format!("${var}/lib64")));
            }
        }
        for dir in ["/usr/local/Ascend/ascend-toolkit/latest/lib64", "/usr/local/Ascend/nnrt/latest/lib64"] {
            dirs.push((PathBuf::from(dir), "default CANN install".to_string()));
        }
        LibrarySearch { explicit, dirs, loader_default: true }
    }

    /// Opens the first library found and checks its required symbols.
    pub fn open(&self) -> Result<Api, Error> {
        let mut tried = Vec::new();
        if let Some((path, origin)) = &self.explicit {
            let file = if path.is_dir() { path.join(LIB_NAME) } else { path.clone() };
            let loaded = if file.exists() { load(&file) } else { Err("no such file".to_string()) };
            return match loaded {
                Ok(lib) => checked(lib, file),
                Err(reason) => {
                    tried.push(Tried { place: file.display().to_string(), origin: origin.clone(), reason });
                    Err(Error::LibraryNotFound { tried })
                }
            };
        }
        for (dir, origin) in &self.dirs {
            let file = dir.join(LIB_NAME);
            if !file.exists() {
                tried.push(Tried { place: file.display().to_string(), origin: origin.clone(), reason: "no such file".into() });
                continue;
            }
            match load(&file) {
                Ok(lib) => return checked(lib, file),
                Err(reason) => tried.push(Tried { place: file.display().to_string(), origin: origin.clone(), reason }),
            }
        }
        if self.loader_default {
            match load(Path::new(LIB_NAME)) {
                Ok(lib) => return checked(lib, PathBuf::from(LIB_NAME)),
                Err(reason) => tried.push(Tried { place: LIB_NAME.to_string(), origin: "dynamic loader search path".into(), reason }),
            }
        }
        Err(Error::LibraryNotFound { tried })
    }
}

fn load(file: &Path) -> Result<libloading::Library, String> {
    // SAFETY: loading runs the library's initialisers; AscendCL's (and the simulator's) are the
    // ordinary C/C++ ones. This is the one unavoidable trust step of dynamic loading.
    unsafe { libloading::Library::new(file) }.map_err(|e| {
        // libloading says "dlopen failed"; the loader's own message (a missing dependency, a
        // wrong architecture) is the error's source.
        match std::error::Error::source(&e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        }
    })
}

fn checked(lib: libloading::Library, file: PathBuf) -> Result<Api, Error> {
    // The simulator (ffi/acl-sim) identifies itself; a real libascendcl.so has no such symbol.
    // SAFETY: `const char *aclsimIdentity(void)` returning a static string (ours, docs/ascend-formats.md §11.3).
    let simulator =
        unsafe { lib.get::<unsafe extern "C" fn() -> *const c_char>(b"aclsimIdentity\0").ok().and_then(|f| super::result::owned(f())) };
    // SAFETY: the symbols are resolved with the signatures of ffi/acl/acl_api.h (docs/ascend-formats.md §11.3).
    let sys = unsafe { sys::AclLib::from_library(lib) }.map_err(|e| Error::LibraryNotFound {
        tried: vec![Tried { place: file.display().to_string(), origin: "opened".into(), reason: e.to_string() }],
    })?;
    let missing = missing_required(&sys);
    if !missing.is_empty() {
        return Err(Error::MissingSymbols { file, symbols: missing });
    }
    Ok(Api::new(sys, file, simulator))
}
