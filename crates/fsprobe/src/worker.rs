//! The probe's worker thread: starts the backend, seeds the filter, then
//! reads the transport until stopped, decoding each record, following the
//! per-CPU sequence numbers (src/loss.rs), handing events to the consumer
//! and directories to walk to the walker (src/subtrees.rs).
use std::cell::{Cell, RefCell};
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use libbpf_rs::{MapCore, MapFlags, MapHandle};

use crate::backend::{self, Backend};
use crate::channel::Sender;
use crate::clock::BootClock;
use crate::config::{Config, Transport};
use crate::decode::{Decoded, Decoder, record_cpu};
use crate::error::{BpfContext, Error, Result};
use crate::event::{LossReason, Record};
use crate::loss::{LossTracker, SeqTracker, counter, read_counter, read_percpu, read_percpu_into};
use crate::pacing::{DRAIN_BUDGET, Pacing};
use crate::probe::{Ready, Summary};
use crate::progress::Progress;
use crate::recycle::{EventPool, Stock};
use crate::reorder::Waiting;
use crate::seed::Seeder;
use crate::stats::{KernelMaps, Live, RecordSender, StatsReader};
use crate::subtrees::Walker;
use crate::transport::{self, Reader};

/// Gives back to the system what the start freed: libbpf's copies of the
/// kernel's BTF, parsed on two threads (backend/halves.rs), and the walk's
/// buffers, which glibc otherwise keeps in its per-thread arenas (about
/// 3 MB resident).
fn release_start_up_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The backend, what it reports ready, and how many watched files have
/// more than one link.
fn setup<'obj>(
    config: &Config,
    storages: &'obj mut [backend::Storage; 3],
) -> Result<(Backend<'obj>, Ready, u64)> {
    let backend = backend::start(config, storages)?;
    let mut seeder = Seeder::new(&backend.watched, config.max_watches, config.recursive);
    seeder.progress = Progress::new(config.walk_progress.clone());
    if config.paths_filtering {
        for path in &config.paths {
            seeder.seed(path)?;
        }
        seeder.mark_path_dirs()?;
    }
    seeder.progress.done(seeder.walked);
    release_start_up_memory();
    // Watched files with other names elsewhere: the kernel must look up
    // names outside the watched trees too (bpf/filter/filter.h).
    let linked = seeder.linked;
    if linked > 0 {
        backend
            .skel
            .maps
            .outside_names
            .update(&1u32.to_ne_bytes(), &linked.to_ne_bytes(), MapFlags::ANY)
            .context("counting the hard-linked watched files")?;
    }
    let (watched, inserted) = (seeder.walked, seeder.inserted);
    let (skipped, first_skip) = (seeder.skipped, seeder.first_skip);
    let plan = &backend.plan;
    let ready = Ready {
        backend: backend.kind,
        watched_inodes: watched,
        filter_entries: inserted,
        unreadable_entries: skipped,
        first_unreadable: first_skip,
        syscalls: plan.syscalls.clone(),
        missing_syscalls: plan.missing_syscalls.clone(),
        io_uring_ops: plan.io_uring_ops.clone(),
        left_out: plan.left_out.clone(),
        kernel: backend.release.clone(),
    };
    Ok((backend, ready, linked))
}

/// Duplicated fds of the maps a stats snapshot reads from another thread.
fn stats_maps(backend: &Backend) -> Result<KernelMaps> {
    let maps = &backend.skel.maps;
    Ok(KernelMaps {
        counters: (&maps.counters)
            .try_into()
            .context("sharing the counters")?,
        watched: Arc::clone(&backend.watched),
    })
}

pub(crate) fn run(
    config: Config,
    tx: Sender<Record>,
    pool: Arc<EventPool>,
    ready_tx: mpsc::Sender<Result<(Ready, StatsReader)>>,
    stop: Arc<AtomicBool>,
) -> Summary {
    let mut storages = [const { [const { MaybeUninit::uninit() }; 2] }; 3];
    let started = setup(&config, &mut storages)
        .and_then(|(backend, ready, linked)| Ok((stats_maps(&backend)?, backend, ready, linked)));
    let (maps, backend, ready, linked) = match started {
        Ok(started) => started,
        Err(e) => {
            let _ = ready_tx.send(Err(e));
            return Summary::default();
        }
    };
    let (live, stats) = crate::stats::reader(maps, config.transport, config.buffer_bytes);
    let tx = RecordSender::new(tx, Arc::clone(&live));
    let walker = match Walker::start(
        &backend.skel.maps,
        Arc::clone(&backend.watched),
        config.max_watches,
        linked,
        tx.clone(),
    ) {
        Ok(w) => w,
        Err(e) => {
            let _ = ready_tx.send(Err(e));
            return Summary::default();
        }
    };
    let clock = BootClock::now();
    let next_seqs = match MapHandle::try_from(&backend.skel.maps.seq_next) {
        Ok(map) => map,
        Err(source) => {
            let _ = ready_tx.send(Err(Error::Bpf {
                what: "opening the sequence numbers".into(),
                source: source.into(),
            }));
            return Summary::default();
        }
    };
    // User space keeps twice the kernel's entries before an epoch flush:
    // the kernel's LRU evicts, user space cannot tell which.
    let mut decoder = Decoder::new(
        clock,
        config.resolution_mode,
        2 * config.cache_size as usize,
        config.transport == Transport::RingBuffer,
    );
    // The directories the walk found: the path cache will mostly hold them.
    decoder.reserve_dirs(ready.filter_entries as usize);
    let handler = Handler {
        decoder: RefCell::new(decoder),
        stock: Stock::new(pool),
        tx: tx.clone(),
        walker,
        delivered: Cell::new(0),
        undecodable: Cell::new(0),
        seqs: RefCell::new(SeqTracker::default()),
        waiting: RefCell::new(Waiting::default()),
        may_defer: config.transport == Transport::PerfBuffer,
        pacing: Pacing::new(Arc::clone(&stop), DRAIN_BUDGET, move || {
            read_percpu(&next_seqs, 0)
        }),
        live,
    };
    let reader = match Reader::new(&backend, &config, &handler) {
        Ok(reader) => {
            let _ = ready_tx.send(Ok((ready, stats)));
            reader
        }
        Err(e) => {
            let _ = ready_tx.send(Err(e));
            return Summary::default();
        }
    };
    let counters = &backend.skel.maps.counters;
    let seq_next = &backend.skel.maps.seq_next;
    let mut losses = LossTracker::default();
    let mut kernel_next = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let caught_up = reader.poll(&handler);
        // The consumer may sleep on fewer than a batch (src/channel.rs).
        tx.flush();
        losses.report(counters, &tx);
        // Room in the filter for what the kernel adds next; when this
        // fails, what cannot be added is counted and reported unwatched.
        let _ = backend.watched.maintain();
        // A record still waiting (perf buffer) or unread (a read that
        // yielded) is not lost: judge the trailing gaps only when the
        // reader caught up and none waits.
        if caught_up && handler.waiting.borrow().is_empty() {
            read_percpu_into(seq_next, 0, &mut kernel_next);
            let stalled = handler.seqs.borrow_mut().stalled(&kernel_next);
            send_trailing_losses(stalled, LossReason::BufferFull, &tx);
        }
        // The notices above, before the next wait in the transport.
        tx.flush();
        publish_epoch(&backend, &mut handler.decoder.borrow_mut());
        handler.sync_stats(&losses, 0);
    }
    let unread = drain_after_stop(&reader, &handler, &mut losses, counters);
    handler.sync_stats(&losses, unread);
    drop(reader);
    let Handler {
        decoder,
        delivered,
        undecodable,
        seqs,
        walker,
        ..
    } = handler;
    drop(walker);
    let decoder = decoder.into_inner();
    Summary {
        events: delivered.get(),
        lost_buffer_full: seqs.borrow().lost() - unread,
        lost_in_flight: losses.in_flight,
        lost_unread: unread,
        lost_buffer_full_counted: read_counter(counters, counter::LOST_BUFFER),
        filtered_by_process: read_counter(counters, counter::FILTERED_PROC),
        watch_limit_hits: losses.unwatched,
        undecodable: undecodable.get(),
        unknown_prefixes: decoder.unknown_prefixes,
        unknown_processes: decoder.unknown_processes(),
        walks_cached: read_counter(counters, counter::WALK_CACHED),
        walks_full: read_counter(counters, counter::WALK_FULL),
    }
}

/// After the stop: reads what the kernel had produced by then, for at most
/// DRAIN_BUDGET after the stop was seen (producers keep writing until the
/// programs are detached), and reports what was not read. Returns how
/// many events were left unread.
fn drain_after_stop(
    reader: &Reader,
    handler: &Handler,
    losses: &mut LossTracker,
    counters: &impl MapCore,
) -> u64 {
    let drained = reader.drain(handler);
    handler.tx.flush();
    losses.report(counters, &handler.tx);
    let trailing = handler.seqs.borrow_mut().finish(&handler.pacing.due());
    let unread = if drained {
        send_trailing_losses(trailing, LossReason::BufferFull, &handler.tx);
        0
    } else {
        let unread = trailing.iter().map(|(_, count)| count).sum();
        send_trailing_losses(trailing, LossReason::Unread, &handler.tx);
        unread
    };
    handler.tx.flush();
    unread
}

/// Decodes records and hands them on; shared by the transport's callbacks.
struct Handler {
    decoder: RefCell<Decoder>,
    stock: Stock,
    tx: RecordSender,
    walker: Walker,
    delivered: Cell<u64>,
    undecodable: Cell<u64>,
    seqs: RefCell<SeqTracker>,
    /// Perf buffer: records whose cached prefix or process was taught by
    /// a record still unread in another CPU's buffer (src/reorder.rs).
    waiting: RefCell<Waiting>,
    may_defer: bool,
    /// When reads yield to the loop, and end after the stop.
    pacing: Pacing,
    /// Counters shared with [`StatsReader`] (src/stats.rs).
    live: Arc<Live>,
}

impl Handler {
    /// Copies the worker's own totals into the live stats; `unread`: the
    /// events left unread after the stop, counted apart (as in Summary).
    fn sync_stats(&self, losses: &LossTracker, unread: u64) {
        let live = &self.live;
        Live::set(&live.lost_buffer_full, self.seqs.borrow().lost() - unread);
        Live::set(&live.lost_unread, unread);
        Live::set(&live.lost_in_flight, losses.in_flight);
        Live::set(&live.undecodable, self.undecodable.get());
        Live::set(
            &live.unknown_prefixes,
            self.decoder.borrow().unknown_prefixes,
        );
    }

    fn decode(&self, data: &[u8]) {
        if self.pacing.skip() {
            return;
        }
        let mut spare = self.stock.take();
        let decoded = self.decoder.borrow_mut().decode_reusing(data, &mut spare);
        self.stock.put_back(spare);
        let Ok(record) = decoded else {
            self.undecodable.set(self.undecodable.get() + 1);
            return;
        };
        if let Some(count) = self.seqs.borrow_mut().on_event(record.cpu, record.seq) {
            let _ = self.tx.send(Record::Lost {
                count,
                reason: LossReason::BufferFull,
                cpu: Some(record.cpu),
            });
        }
        match record.what {
            Decoded::Event(event) => {
                let kind = event.kind;
                if self.tx.send(Record::Event(event)).is_ok() {
                    self.delivered.set(self.delivered.get() + 1);
                    self.live.delivered(kind);
                }
            }
            Decoded::Subtree(s) => {
                // Handing it over may block on the walker's full queue.
                self.tx.flush();
                self.walker.walk(s);
            }
            Decoded::Notice => {}
        }
    }
}

impl transport::Sink for Handler {
    fn on_record(&self, data: &[u8]) {
        if self.may_defer {
            // Once one record of a CPU waits, the later ones of that CPU
            // wait behind it: each CPU's records stay in order.
            let cpu = record_cpu(data);
            let mut waiting = self.waiting.borrow_mut();
            if waiting.holds(cpu) || !self.decoder.borrow().prefixes_known(data) {
                waiting.push(cpu, data);
                return;
            }
        }
        self.decode(data);
    }

    fn next_round(&self) {
        self.waiting.borrow_mut().next_round();
    }

    /// Decodes the waiting records that can be (all of them with `give_up`).
    fn decode_waiting(&self, give_up: bool) {
        loop {
            if self.pacing.skip() {
                // Counted lost from the seq gaps, as skipped records are.
                self.waiting.borrow_mut().clear();
                return;
            }
            let next = {
                let decoder = self.decoder.borrow();
                self.waiting
                    .borrow_mut()
                    .take_ready(|d| decoder.prefixes_known(d), give_up)
            };
            match next {
                Some(data) => self.decode(&data),
                None => break,
            }
        }
    }

    fn waiting(&self) -> bool {
        !self.waiting.borrow().is_empty()
    }

    fn pacing(&self) -> &Pacing {
        &self.pacing
    }

    fn ring_pending(&self, bytes: u64) {
        self.live.ring_pending(bytes);
    }
}

/// Records numbered on a CPU but never received: lost after its last record.
fn send_trailing_losses(lost: Vec<(u32, u64)>, reason: LossReason, tx: &RecordSender) {
    for (cpu, count) in lost {
        let _ = tx.send(Record::Lost {
            count,
            reason,
            cpu: Some(cpu),
        });
    }
}

/// Tells the kernel about a user-space cache flush (bpf/resolve/cache.h: cache_gen[1]).
fn publish_epoch(backend: &Backend, decoder: &mut Decoder) {
    if let Some(epoch) = decoder.new_epoch.take() {
        let _ = backend.skel.maps.cache_gen.update(
            &1u32.to_ne_bytes(),
            &epoch.to_ne_bytes(),
            MapFlags::ANY,
        );
    }
}
