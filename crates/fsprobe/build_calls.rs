//! Build-time reading of the BPF object's call graph, for two uses.
//!
//! The stack check: the verifier refuses a program whose deepest chain of
//! BPF-to-BPF calls needs more than 512 bytes of stack
//! (check_max_stack_depth(), kernel/bpf/verifier.c), each frame rounded up
//! to 32 bytes on 5.10 (16 with the JIT on newer kernels). The development
//! hosts' 6.18 gives deep tracing programs a private stack and loads them
//! anyway, so only the VM guests would see the refusal: this check fails
//! the build instead.
//!
//! The programs' sizes: libbpf appends to each program every function it
//! calls, directly or not (bpf_object__relocate_calls()), and the verifier
//! reads all of it. The loader weighs its two halves with these sizes
//! (src/backend/halves.rs); a program's own section is a fraction of them
//! (fsp_sys_exit: 2,983 of 17,965 instructions).
//!
//! A frame's size is read from the disassembly: the deepest `r10 - N`
//! the function touches; a function's size from its instructions' indexes
//! (a 64-bit load, `ll`, takes two). The call graph comes from the
//! relocations of its calls. Needs llvm-objdump (the clang's own version
//! first); without one it warns, checks nothing and gives no sizes.
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;

const MAX_STACK: u32 = 512;
/// 5.10's rounding, the larger of the two.
const FRAME_ROUND: u32 = 32;

struct Func {
    section: String,
    depth: u32,
    /// Instructions (8-byte slots).
    size: usize,
    /// The index of its first instruction.
    first: Option<usize>,
    calls: HashSet<String>,
}

/// The object's functions, by name.
pub struct Graph {
    funcs: HashMap<String, Func>,
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
                    size: 0,
                    first: None,
                    calls: HashSet::new(),
                },
            );
            current = Some(name.to_owned());
            continue;
        }
        let Some(f) = current.as_ref().and_then(|c| funcs.get_mut(c)) else {
            continue;
        };
        // "     123:\tr1 = 0x0 ll"
        if let Some((index, insn)) = line.trim_start().split_once(":\t")
            && let Ok(index) = index.parse::<usize>()
        {
            let first = *f.first.get_or_insert(index);
            let slots = if insn.ends_with(" ll") { 2 } else { 1 };
            f.size = f.size.max(index - first + slots);
        }
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

/// Reads the call graph of `obj`, if there is an llvm-objdump.
pub fn read(obj: &Path, clang: &Path) -> Option<Graph> {
    let Some(tool) = objdump(clang) else {
        println!(
            "cargo:warning=no llvm-objdump: the BPF stack depth is not checked, \
             and the programs are weighed by their own sections"
        );
        return None;
    };
    let out = Command::new(&tool)
        .args(["-d", "-r", "--no-show-raw-insn"])
        .arg(obj)
        .output()
        .unwrap_or_else(|e| panic!("running {tool}: {e}"));
    assert!(out.status.success(), "{tool} failed on {}", obj.display());
    Some(Graph {
        funcs: parse(&String::from_utf8_lossy(&out.stdout)),
    })
}

impl Graph {
    /// The programs: every function outside .text (the subprograms').
    fn programs(&self) -> impl Iterator<Item = (&String, &Func)> {
        self.funcs.iter().filter(|(_, f)| f.section != ".text")
    }

    /// Panics (fails the build) when a program's call chain exceeds the limit.
    pub fn check_stack(&self) {
        let mut memo = HashMap::new();
        let mut too_deep = Vec::new();
        for (name, _) in self.programs() {
            let (stack, chain) = deepest(&self.funcs, name, &mut memo);
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

    /// Each program's instructions with the functions it calls, by name.
    pub fn program_sizes(&self) -> Vec<(String, usize)> {
        let mut sizes: Vec<(String, usize)> = self
            .programs()
            .map(|(name, f)| {
                let mut seen = HashSet::new();
                let mut todo: Vec<&String> = f.calls.iter().collect();
                while let Some(callee) = todo.pop() {
                    if let Some(c) = self.funcs.get(callee)
                        && seen.insert(callee)
                    {
                        todo.extend(c.calls.iter());
                    }
                }
                let called: usize = seen.iter().map(|c| self.funcs[*c].size).sum();
                (name.clone(), f.size + called)
            })
            .collect();
        sizes.sort();
        sizes
    }
}
