//! Build script: pyo3 cfgs, plus the C shim (`csrc/shim.c`) compiled against the headers
//! of the interpreter pyo3 builds for (the only code that reads interpreter internals).

fn main() {
    pyo3_build_config::use_pyo3_cfgs();

    let config = pyo3_build_config::get();
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
