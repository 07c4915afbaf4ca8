//! Build-time check of the BPF object's stack: the verifier refuses a
//! program whose deepest chain of BPF-to-BPF calls needs more than 512
//! bytes of stack (check_max_stack_depth(), kernel/bpf/verifier.c), each
//! frame rounded up to 32 bytes on 5.10 (16 with the JIT on newer
//! kernels). The development hosts' 6.18 gives deep tracing programs a
//! private stack and loads them anyway, so only the VM guests would see the
//! refusal: this check fails the build instead.
//!
//! A frame's size is read from the disassembly: the deepest `r10 - N`
//! the function touches. The call graph comes from the relocations of its
//! calls. Needs llvm-objdump (the clang's own version first); without one
//! it warns and checks nothing.
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;

const MAX_STACK: u32 = 512;
/// 5.10's rounding, the larger of the two.
const FRAME_ROUND: u32 = 32;

struct Func {
    section: String,
    depth: u32,
    calls: HashSet<String>,
}

fn objdump(clang: &Path) -> Option<String> {
    let name = clang.file_name()?.to_str()?;
    let versioned = name
        .strip_prefix("clang")
        .map(|suffix| format!("llvm-objdump{suffix}"));
    versioned
        .into_iter()
        .chain(["llvm-objdump".to_owned()])
        .find(|tool| {
            Command::new(tool)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

fn parse(disassembly: &str) -> HashMap<String, Func> {
    let mut funcs: HashMap<String, Func> = HashMap::new();
    let (mut section, mut current) = (String::new(), None::<String>);
    for line in disassembly.lines() {
        if let Some(rest) = line.strip_prefix("Disassembly of section ") {
            section = rest.trim_end_matches(':').to_owned();
            continue;
        }
        // "0000000000000000 <name>:"
        if let Some(name) = line
            .split_once(" <")
            .filter(|(addr, _)| addr.chars().all(|c| c.is_ascii_hexdigit()))
            .and_then(|(_, rest)| rest.strip_suffix(">:"))
        {
            funcs.insert(
                name.to_owned(),
                Func {
                    section: section.clone(),
                    depth: 0,
                    calls: HashSet::new(),
                },
            );
            current = Some(name.to_owned());
            continue;
        }
        let Some(f) = current.as_ref().and_then(|c| funcs.get_mut(c)) else {
            continue;
        };
        let mut rest = line;
        while let Some(at) = rest.find("r10 - ") {
            rest = &rest[at + 6..];
            let digits: String = rest
                .trim_start_matches("0x")
                .chars()
                .take_while(|c| c.is_ascii_hexdigit())
                .collect();
            let radix = if rest.starts_with("0x") { 16 } else { 10 };
            if let Ok(n) = u32::from_str_radix(&digits, radix) {
                f.depth = f.depth.max(n);
            }
        }
        if let Some(target) = line.split("R_BPF_64_32").nth(1).map(str::trim)
            && !target.starts_with('.')
        {
            f.calls.insert(target.to_owned());
        }
    }
    funcs
}

fn frame(f: &Func) -> u32 {
    f.depth.max(1).div_ceil(FRAME_ROUND) * FRAME_ROUND
}

/// The deepest chain from `name`: its stack and the functions on it.
fn deepest(
    funcs: &HashMap<String, Func>,
    name: &str,
    memo: &mut HashMap<String, (u32, Vec<String>)>,
) -> (u32, Vec<String>) {
    if let Some(done) = memo.get(name) {
        return done.clone();
    }
    let f = &funcs[name];
    let mut below = (0, Vec::new());
    for callee in f.calls.iter().filter(|c| funcs.contains_key(*c)) {
        let chain = deepest(funcs, callee, memo);
        if chain.0 > below.0 {
            below = chain;
        }
    }
    let mut chain = vec![format!("{name} ({})", frame(f))];
    chain.extend(below.1);
    let result = (frame(f) + below.0, chain);
    memo.insert(name.to_owned(), result.clone());
    result
}

/// Panics (fails the build) when a program's call chain exceeds the limit.
pub fn check(obj: &Path, clang: &Path) {
    let Some(tool) = objdump(clang) else {
        println!("cargo:warning=no llvm-objdump: the BPF stack depth is not checked");
        return;
    };
    let out = Command::new(&tool)
        .args(["-d", "-r", "--no-show-raw-insn"])
        .arg(obj)
        .output()
        .unwrap_or_else(|e| panic!("running {tool}: {e}"));
    assert!(out.status.success(), "{tool} failed on {}", obj.display());
    let funcs = parse(&String::from_utf8_lossy(&out.stdout));
    let mut memo = HashMap::new();
    let mut too_deep = Vec::new();
    for (name, f) in &funcs {
        if f.section == ".text" {
            continue; // a subprogram, counted in its callers' chains
        }
        let (stack, chain) = deepest(&funcs, name, &mut memo);
        if stack > MAX_STACK {
            too_deep.push(format!("{stack} bytes: {}", chain.join(" > ")));
        }
    }
    too_deep.sort();
    assert!(
        too_deep.is_empty(),
        "BPF call chains over the verifier's {MAX_STACK} bytes of stack \
         (frames rounded up to {FRAME_ROUND}, as 5.10 does):\n{}",
        too_deep.join("\n")
    );
}
