//! Compiles the harness's C shims (`csrc/`): the kernel printf family needs C
//! varargs, which stable Rust cannot define.

fn main() {
    println!("cargo:rerun-if-changed=csrc");
    println!("cargo:rerun-if-changed=build.rs");
    cc::Build::new()
        .file("csrc/printf.c")
        .warnings(true)
        .extra_warnings(true)
        .flag_if_supported("-Wno-implicit-fallthrough")
        .flag_if_supported("-fno-strict-aliasing")
        .compile("ngharness_csrc");
}
