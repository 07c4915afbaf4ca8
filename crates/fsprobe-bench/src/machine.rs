//! What machine the figures were taken on.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub kernel: String,
    pub cpu_model: String,
    pub nproc: usize,
    pub memory_gib: f64,
    pub os: String,
    /// Where the scratch trees lived (file-system type).
    pub scratch_fs: String,
    /// kernel.bpf_stats_enabled: when 1, every BPF program run is timed,
    /// which adds to fsprobe's cost.
    pub bpf_stats_enabled: bool,
}

fn first_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

fn fs_type(path: &std::path::Path) -> String {
    let out = std::process::Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(path)
        .output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

impl Machine {
    pub fn probe(scratch: &std::path::Path) -> Machine {
        let read = |p| std::fs::read_to_string(p).unwrap_or_default();
        let mem_kib: f64 = first_value(&read("/proc/meminfo"), "MemTotal")
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let os = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .unwrap_or("unknown")
            .trim_matches('"')
            .to_string();
        Machine {
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            cpu_model: first_value(&read("/proc/cpuinfo"), "model name")
                .unwrap_or_else(|| "unknown".into()),
            nproc: crate::cpu::cpu_count(),
            memory_gib: (mem_kib / 1048576.0 * 10.0).round() / 10.0,
            os,
            scratch_fs: fs_type(scratch),
            bpf_stats_enabled: read("/proc/sys/kernel/bpf_stats_enabled").trim() == "1",
        }
    }
}
