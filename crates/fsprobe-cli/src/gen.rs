//! `fsprobe-gen DIR`: writes fsprobe's man page (`DIR/fsprobe.1`) and its
//! bash, zsh and fish completions (`DIR/completions/`), generated from the
//! clap definitions in args.rs, so they never drift from the flags.
//! scripts/package.sh runs it before building the Debian package.
#[allow(dead_code)]
mod args;

use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::Shell;

fn main() -> std::io::Result<()> {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: fsprobe-gen DIR");
        std::process::exit(2);
    };
    let mut cmd = args::Args::command();
    std::fs::create_dir_all(dir.join("completions"))?;
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    std::fs::write(dir.join("fsprobe.1"), page)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd, "fsprobe", dir.join("completions"))?;
    }
    Ok(())
}
