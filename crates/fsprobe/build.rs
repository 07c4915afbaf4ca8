//! Compiles the BPF programs (bpf/*.bpf.c) and generates their skeletons.
//!
//! clang must target BPF with CO-RE; clang-14 crashes on some CO-RE
//! builtins, so the newest installed clang is preferred. Override with the
//! CLANG environment variable.
use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const PROGRAMS: &[&str] = &["fsprobe"];

fn clang() -> PathBuf {
    if let Some(c) = env::var_os("CLANG") {
        return c.into();
    }
    for candidate in ["clang-19", "clang-18", "clang-17", "clang-16", "clang"] {
        let found = env::var_os("PATH")
            .map(|paths| env::split_paths(&paths).any(|dir| dir.join(candidate).is_file()))
            .unwrap_or(false);
        if found {
            return candidate.into();
        }
    }
    "clang".into()
}

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let bpf_dir = manifest.join("bpf");
    for name in PROGRAMS {
        let src = bpf_dir.join(format!("{name}.bpf.c"));
        SkeletonBuilder::new()
            .source(&src)
            .clang(clang())
            .clang_args([
                "-I".into(),
                bpf_dir.clone().into_os_string(),
                "-Wall".into(),
                "-Wno-unused-function".into(),
            ])
            .build_and_generate(out.join(format!("{name}.skel.rs")))
            .unwrap_or_else(|e| panic!("building {}: {e:#}", src.display()));
    }
    println!("cargo:rerun-if-changed=bpf");
    println!("cargo:rerun-if-env-changed=CLANG");
}
