//! The bounded channel between the worker (and the walker) and the
//! consumer: it wakes a waiting receiver once per batch, not once per
//! record.
//!
//! The worker reads the ring in batches of hundreds of records, and the
//! consumer is faster than it, so with std's `sync_channel` the consumer
//! drained the channel and slept on every record: strace counted a futex
//! wake per ~3 records (64k futex calls on one thread, 43k on the other for
//! 200,000 records), a context switch each when both threads share a CPU.
//! Here a sender wakes a sleeping receiver only once the queue holds a
//! batch ([`BATCH`], or a quarter of a small channel) or on
//! [`Sender::flush`].
//!
//! No record is stranded in the queue while the receiver sleeps: the
//! receiver sleeps only after finding the queue empty, and each record
//! queued after that is followed by a wake: from `send` (a batch, or a
//! full queue, before the sender sleeps on it), or from `flush`, which the
//! worker calls before it sleeps or blocks anywhere else (after each read
//! of the transport, after the notices it sends outside a read, before it
//! hands a directory to the walker), the walker after each notice, and
//! every sender as it is dropped. As a safety net, a sleeping receiver
//! looks again every [`NAP`] anyway (a sender waiting for room, too).
use std::collections::VecDeque;
use std::sync::mpsc::{RecvTimeoutError, SendError, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Records queued before a sleeping receiver is woken.
const BATCH: usize = 64;

/// The longest a receiver (or a sender, on a full queue) sleeps before it
/// looks again, woken or not.
const NAP: Duration = Duration::from_millis(50);

struct State<T> {
    /// Allocated once, with the channel's capacity.
    queue: VecDeque<T>,
    /// The receiver sleeps, and no one has woken it yet.
    receiver_waits: bool,
    /// A sender sleeps on the full queue, and no one has woken it yet.
    sender_waits: bool,
    senders: usize,
    receiver_gone: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    readable: Condvar,
    writable: Condvar,
    capacity: usize,
    /// Records queued before `send` wakes a sleeping receiver (≤ capacity).
    batch: usize,
    nap: Duration,
}

/// A channel holding up to `capacity` (≥ 1) values.
pub(crate) fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    with_nap(capacity, NAP)
}

fn with_nap<T>(capacity: usize, nap: Duration) -> (Sender<T>, Receiver<T>) {
    let capacity = capacity.max(1);
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::with_capacity(capacity),
            receiver_waits: false,
            sender_waits: false,
            senders: 1,
            receiver_gone: false,
        }),
        readable: Condvar::new(),
        writable: Condvar::new(),
        capacity,
        batch: (capacity / 4).clamp(1, BATCH),
        nap,
    });
    (
        Sender {
            shared: Arc::clone(&shared),
        },
        Receiver { shared },
    )
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the receiver if it sleeps (each notify is a futex call).
    fn wake_receiver(&self, s: &mut State<T>) {
        if s.receiver_waits {
            s.receiver_waits = false;
            self.readable.notify_all();
        }
    }

    /// Wakes the senders that sleep on a full queue.
    fn wake_senders(&self, s: &mut State<T>) {
        if s.sender_waits {
            s.sender_waits = false;
            self.writable.notify_all();
        }
    }
}

/// Sleeps on `on` until woken, or for `nap` at most.
fn sleep<'a, T>(
    on: &Condvar,
    s: MutexGuard<'a, State<T>>,
    nap: Duration,
) -> MutexGuard<'a, State<T>> {
    on.wait_timeout(s, nap)
        .unwrap_or_else(PoisonError::into_inner)
        .0
}

/// The sending end; clones count, and the channel ends when the last one
/// is dropped.
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Queues `value`, waiting while the queue is full; fails once the
    /// receiver is gone.
    pub(crate) fn send(&self, value: T) -> Result<(), SendError<T>> {
        let sh = &*self.shared;
        let mut s = sh.lock();
        while !s.receiver_gone && s.queue.len() >= sh.capacity {
            // Let the receiver drain the queue before sleeping on it.
            sh.wake_receiver(&mut s);
            s.sender_waits = true;
            s = sleep(&sh.writable, s, sh.nap);
        }
        if s.receiver_gone {
            return Err(SendError(value));
        }
        s.queue.push_back(value);
        // A full queue holds at least a batch.
        if s.queue.len() >= sh.batch {
            sh.wake_receiver(&mut s);
        }
        Ok(())
    }

    /// Wakes a sleeping receiver if anything is queued: call it before
    /// sleeping or blocking anywhere but in `send`.
    pub(crate) fn flush(&self) {
        let mut s = self.shared.lock();
        if !s.queue.is_empty() {
            self.shared.wake_receiver(&mut s);
        }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Sender {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut s = self.shared.lock();
        s.senders -= 1;
        // The last one: the receiver learns the end (after the queue).
        if s.senders == 0 || !s.queue.is_empty() {
            self.shared.wake_receiver(&mut s);
        }
    }
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

/// The receiving end: values in the order they were sent.
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Receiver<T> {
    /// The next value, waiting for it; `None` once every sender is gone
    /// and the queue is empty.
    pub(crate) fn recv(&self) -> Option<T> {
        self.wait(None).ok()
    }

    /// The next value if one is queued.
    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut s = self.shared.lock();
        match self.pop(&mut s) {
            Some(value) => Ok(value),
            None if s.senders == 0 => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// The next value, waiting up to `timeout` for it.
    pub(crate) fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.wait(Instant::now().checked_add(timeout))
    }

    fn wait(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let sh = &*self.shared;
        let mut s = sh.lock();
        loop {
            if let Some(value) = self.pop(&mut s) {
                return Ok(value);
            }
            if s.senders == 0 {
                return Err(RecvTimeoutError::Disconnected);
            }
            let nap = match deadline {
                None => sh.nap,
                Some(d) => match d.saturating_duration_since(Instant::now()) {
                    left if left.is_zero() => return Err(RecvTimeoutError::Timeout),
                    left => left.min(sh.nap),
                },
            };
            s.receiver_waits = true;
            s = sleep(&sh.readable, s, nap);
            s.receiver_waits = false;
        }
    }

    /// Takes the oldest value; wakes the waiting senders once half the
    /// queue is free, so that they too go by batches.
    fn pop(&self, s: &mut State<T>) -> Option<T> {
        let value = s.queue.pop_front()?;
        if s.queue.len() <= self.shared.capacity / 2 {
            self.shared.wake_senders(s);
        }
        Some(value)
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut s = self.shared.lock();
        s.receiver_gone = true;
        let dropped = std::mem::take(&mut s.queue);
        self.shared.wake_senders(&mut s);
        drop(s);
        drop(dropped);
    }
}

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread;

    /// Long enough that the safety net never wakes a test's receiver.
    const NO_NAP: Duration = Duration::from_secs(3600);
    /// Generous: how long a test waits for what should come promptly.
    const PROMPTLY: Duration = Duration::from_secs(10);

    /// Receives one value on another thread; the result comes back on the
    /// returned channel.
    fn recv_in_thread(rx: Receiver<u32>) -> std::sync::mpsc::Receiver<Option<u32>> {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let _ = done_tx.send(rx.recv());
            // Keep the receiver alive until the test is done with it.
            drop(rx);
        });
        // Let it go to sleep in recv.
        thread::sleep(Duration::from_millis(100));
        done_rx
    }

    #[test]
    fn order_is_kept() {
        let (tx, rx) = bounded(1000);
        for i in 0..1000u32 {
            tx.send(i).unwrap();
        }
        drop(tx);
        let got: Vec<u32> = std::iter::from_fn(|| rx.recv()).collect();
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn a_full_queue_blocks_the_sender_until_drained() {
        let (tx, rx) = bounded(4);
        let sent = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&sent);
        let sender = thread::spawn(move || {
            for i in 0..6u32 {
                tx.send(i).unwrap();
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        thread::sleep(Duration::from_millis(300));
        assert_eq!(sent.load(Ordering::SeqCst), 4, "the fifth send waits");
        let got: Vec<u32> = std::iter::from_fn(|| rx.recv()).collect();
        assert_eq!(got, (0..6).collect::<Vec<_>>());
        sender.join().unwrap();
    }

    #[test]
    fn a_flush_wakes_the_receiver() {
        let (tx, rx) = with_nap(1000, NO_NAP);
        let done = recv_in_thread(rx);
        tx.send(7).unwrap();
        tx.flush();
        assert_eq!(done.recv_timeout(PROMPTLY), Ok(Some(7)));
    }

    #[test]
    fn a_batch_wakes_the_receiver() {
        let (tx, rx) = with_nap(1000, NO_NAP);
        let done = recv_in_thread(rx);
        for i in 0..BATCH as u32 {
            tx.send(i).unwrap();
        }
        assert_eq!(done.recv_timeout(PROMPTLY), Ok(Some(0)));
    }

    #[test]
    fn less_than_a_batch_unflushed_still_comes() {
        let (tx, rx) = bounded(1000);
        let done = recv_in_thread(rx);
        tx.send(7).unwrap();
        assert_eq!(done.recv_timeout(PROMPTLY), Ok(Some(7)));
    }

    #[test]
    fn dropping_a_sender_delivers_and_ends() {
        let (tx, rx) = with_nap(1000, NO_NAP);
        let done = recv_in_thread(rx);
        tx.send(7).unwrap();
        drop(tx);
        assert_eq!(done.recv_timeout(PROMPTLY), Ok(Some(7)));

        let (tx, rx) = with_nap::<u32>(1000, NO_NAP);
        let done = recv_in_thread(rx);
        drop(tx);
        assert_eq!(done.recv_timeout(PROMPTLY), Ok(None));
    }

    #[test]
    fn the_end_comes_after_the_queue() {
        let (tx, rx) = bounded(10);
        let tx2 = tx.clone();
        tx.send(1).unwrap();
        tx2.send(2).unwrap();
        drop(tx);
        assert_eq!(rx.try_recv(), Ok(1));
        drop(tx2);
        assert_eq!(rx.recv_timeout(PROMPTLY), Ok(2));
        assert_eq!(rx.recv(), None);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(
            rx.recv_timeout(PROMPTLY),
            Err(RecvTimeoutError::Disconnected)
        );
    }

    #[test]
    fn empty_and_timeout_while_senders_live() {
        let (tx, rx) = bounded::<u32>(10);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(120)),
            Err(RecvTimeoutError::Timeout)
        );
        drop(tx);
    }

    #[test]
    fn sending_fails_once_the_receiver_is_gone() {
        let (tx, rx) = bounded(1);
        tx.send(1).unwrap();
        let blocked = thread::spawn(move || tx.send(2).map_err(|e| e.0));
        thread::sleep(Duration::from_millis(100));
        drop(rx);
        assert_eq!(blocked.join().unwrap(), Err(2));

        let (tx, rx) = bounded(10);
        drop(rx);
        assert_eq!(tx.send(1).map_err(|e| e.0), Err(1));
    }

    #[test]
    fn two_senders_lose_nothing() {
        // A channel of one switches threads on every value: fewer there.
        for (capacity, n) in [(1, 10_000), (16, 100_000), (1000, 100_000)] {
            let (tx, rx) = bounded(capacity);
            let senders: Vec<_> = (0..2u32)
                .map(|id| {
                    let tx = tx.clone();
                    thread::spawn(move || {
                        for i in 0..n {
                            tx.send((id, i)).unwrap();
                            if i % 100 == 0 {
                                tx.flush();
                            }
                        }
                    })
                })
                .collect();
            drop(tx);
            let mut next = [0u32; 2];
            while let Some((id, i)) = rx.recv() {
                assert_eq!(i, next[id as usize], "each sender's order is kept");
                next[id as usize] += 1;
            }
            assert_eq!(next, [n, n]);
            for s in senders {
                s.join().unwrap();
            }
        }
    }
}
