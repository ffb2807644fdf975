//! Build script: pyo3 cfgs, plus the C shim (`csrc/shim.c`) compiled against the headers
//! of the interpreter pyo3 builds for (the only code that reads interpreter internals).

fn main() {
    pyo3_build_config::use_pyo3_cfgs();

    let config = pyo3_build_config::get();
    refuse_unsupported(config);
    let include = config
        .run_python_script("import sysconfig; print(sysconfig.get_paths()['include'])")
        .expect("cannot ask the target interpreter for its include directory");
    let include = include.trim();

    cc::Build::new()
        .file("csrc/shim.c")
        .include(include)
        .flag_if_supported("-fno-strict-aliasing")
        .warnings(true)
        .compile("fiber_shim");

    println!("cargo:rerun-if-changed=csrc/shim.c");
    println!("cargo:rerun-if-changed=build.rs");
}

/// The CPython minor versions `csrc/shim.c` has a section for (keep in step with
/// `python/trio_asyncio/_versions.py` and `requires-python`).
const SUPPORTED_MINORS: [u8; 3] = [11, 12, 13];

/// Stop before compiling anything, with one line naming the supported versions, when the
/// target interpreter is not one the fiber shim supports.
fn refuse_unsupported(config: &pyo3_build_config::InterpreterConfig) {
    let v = config.version();
    let supported = "CPython 3.11, 3.12 and 3.13 with the GIL";
    let problem = if config.implementation() != pyo3_build_config::PythonImplementation::CPython {
        Some(format!(
            "{} {}.{}",
            config.implementation(),
            v.major,
            v.minor
        ))
    } else if v.major != 3 || !SUPPORTED_MINORS.contains(&v.minor) {
        Some(format!("CPython {}.{}", v.major, v.minor))
    } else if config.is_free_threaded() {
        Some(format!("free-threaded CPython {}.{}", v.major, v.minor))
    } else {
        None
    };
    if let Some(problem) = problem {
        eprintln!("error: trio-asyncio-rs supports {supported}; this build targets {problem}");
        std::process::exit(1);
    }
}
