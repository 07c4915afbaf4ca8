//! `fsprobe`: the command-line client of the fsprobe library.
mod args;
mod sink;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use std::sync::mpsc::TryRecvError;

use anyhow::Context;
use clap::Parser;

use args::{Args, Format};
use sink::{JsonSink, NoSink, Sink, TableSink};

fn open_sink(args: &Args) -> anyhow::Result<Box<dyn Sink>> {
    let out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => Box::new(io::stdout().lock()),
    };
    let out = BufWriter::with_capacity(64 * 1024, out);
    Ok(match args.format {
        Format::Table => Box::new(TableSink::new(out)),
        Format::Json => Box::new(JsonSink(out)),
        Format::None => Box::new(NoSink),
    })
}

/// One process filter from its include and exclude flags (clap keeps them exclusive).
fn process_filter<T: Clone>(include: &[T], exclude: &[T]) -> fsprobe::ProcessFilter<T> {
    if !include.is_empty() {
        fsprobe::ProcessFilter::Include(include.to_vec())
    } else if !exclude.is_empty() {
        fsprobe::ProcessFilter::Exclude(exclude.to_vec())
    } else {
        fsprobe::ProcessFilter::Off
    }
}

fn probe_builder(args: &Args) -> fsprobe::ProbeBuilder {
    let mut builder = match &args.btf {
        Some(btf) => fsprobe::Probe::builder().btf(btf),
        None => fsprobe::Probe::builder(),
    };
    if let Some(entries) = args.cache_size {
        builder = builder.cache_size(entries);
    }
    builder = builder
        .pid_filter(process_filter(&args.pids, &args.exclude_pids))
        .uid_filter(process_filter(&args.uids, &args.exclude_uids))
        .comm_filter(process_filter(&args.comms, &args.exclude_comms));
    builder
        .paths(args.paths.iter().cloned())
        .recursive(args.recursive)
        .paths_filtering(args.paths_filtering)
        .follow(args.follow)
        .events(args.events.iter().copied())
        .channel_size(args.chan_size)
        .buffer_pages(args.perf_buffer_size)
        .transport(args.transport)
        .resolution_mode(args.dentry_resolution_mode)
        .backend(args.backend)
        .max_watches(args.max_watches)
}

/// Writes records until the probe stops; a closed pipe stops it quietly.
fn pump(probe: &fsprobe::Probe, sink: &mut dyn Sink) -> io::Result<()> {
    let records = probe.records();
    loop {
        let record = match records.try_recv() {
            Ok(r) => r,
            Err(TryRecvError::Empty) => {
                sink.flush()?;
                match records.recv() {
                    Ok(r) => r,
                    Err(_) => return sink.flush(),
                }
            }
            Err(TryRecvError::Disconnected) => return sink.flush(),
        };
        sink.write(&record)?;
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let mut sink = open_sink(&args)?;
    let probe = probe_builder(&args).start()?;
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, probe.stop_flag())
            .context("installing the signal handler")?;
    }
    let ready = probe.ready();
    eprintln!(
        "fsprobe: ready (backend: {}, kernel: {}, watched inodes: {}, syscalls hooked: {}, io_uring ops: {}{}{})",
        ready.backend,
        ready.kernel,
        ready.watched_inodes,
        ready.syscalls.len(),
        ready.io_uring_ops.len(),
        if ready.missing_syscalls.is_empty() {
            String::new()
        } else {
            format!(
                ", absent on this kernel: {}",
                ready.missing_syscalls.join(" ")
            )
        },
        if ready.left_out.is_empty() {
            String::new()
        } else {
            format!(", not seen here: {}", ready.left_out.join("; "))
        }
    );
    if ready.unreadable_entries > 0 {
        eprintln!(
            "fsprobe: warning: {} entries of the watched trees could not be read and are not watched (first: {})",
            ready.unreadable_entries,
            ready.first_unreadable.as_deref().unwrap_or("unknown")
        );
    }
    let pumped = pump(&probe, sink.as_mut());
    let broken_pipe = matches!(&pumped, Err(e) if e.kind() == io::ErrorKind::BrokenPipe);
    if !broken_pipe {
        pumped.context("writing events")?;
    }
    let summary = probe.join()?;
    eprintln!(
        "fsprobe: {} events, {} lost (buffer full: {}, in flight: {}, undecodable: {}), watch limit hits: {}, syscalls filtered out by process: {}",
        summary.events,
        summary.lost(),
        summary.lost_buffer_full,
        summary.lost_in_flight,
        summary.undecodable,
        summary.watch_limit_hits,
        summary.filtered_by_process
    );
    eprintln!(
        "fsprobe: path walks: {} cut short by the {} cache, {} to the root",
        summary.walks_cached, args.dentry_resolution_mode, summary.walks_full
    );
    if summary.unknown_prefixes > 0 {
        eprintln!(
            "fsprobe: {} paths reported truncated: their cached prefix was unknown (a bug, please report it)",
            summary.unknown_prefixes
        );
    }
    Ok(())
}

fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<fsprobe::Error>() {
        Some(fsprobe::Error::NotImplemented(_)) => 2,
        _ => 1,
    }
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("fsprobe: {}", first.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fsprobe: error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}
