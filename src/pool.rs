//! Ordered parallel work: CPU jobs (compression, decompression, checks) run on the
//! rayon pool while their results are consumed strictly in submission order.
//!
//! This is how every stream keeps its order while frames are compressed or
//! decompressed on all cores: the single owner of an output (or the single reader
//! of an input) pushes jobs and pops results from the front of an [`Ordered`]
//! queue, whose length bounds the memory in flight.

use std::collections::VecDeque;
use std::sync::mpsc;

/// A FIFO of jobs running on the rayon pool, bounded to `capacity` in flight.
pub struct Ordered<T> {
    queue: VecDeque<Slot<T>>,
    capacity: usize,
}

enum Slot<T> {
    Running(mpsc::Receiver<std::thread::Result<T>>),
    Ready(T),
}

/// The default number of jobs in flight: enough to keep every core busy while the
/// consumer works on the oldest result.
pub fn default_capacity() -> usize {
    rayon::current_num_threads() * 2 + 2
}

impl<T: Send + 'static> Ordered<T> {
    /// A queue allowing `capacity` (at least 1) jobs in flight.
    pub fn new(capacity: usize) -> Self {
        Ordered {
            queue: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Number of queued jobs and values.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether the queue is at capacity (the caller should [`pop`](Self::pop) first).
    pub fn is_full(&self) -> bool {
        self.queue.len() >= self.capacity
    }

    /// Starts `job` on the rayon pool.
    pub fn push(&mut self, job: impl FnOnce() -> T + Send + 'static) {
        let (tx, rx) = mpsc::sync_channel(1);
        rayon::spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            let _ = tx.send(r);
        });
        self.queue.push_back(Slot::Running(rx));
    }

    /// Queues a value that needs no work, keeping its place in the order.
    pub fn push_ready(&mut self, value: T) {
        self.queue.push_back(Slot::Ready(value));
    }

    /// Waits for the oldest job and returns its result; `None` when empty.
    ///
    /// A job that panicked re-raises its panic here, in the consumer.
    pub fn pop(&mut self) -> Option<T> {
        match self.queue.pop_front()? {
            Slot::Ready(v) => Some(v),
            Slot::Running(rx) => match rx.recv() {
                Ok(Ok(v)) => Some(v),
                Ok(Err(panic)) => std::panic::resume_unwind(panic),
                Err(_) => unreachable!("a rayon job always sends its result"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_order() {
        let mut q = Ordered::new(4);
        let mut out = Vec::new();
        for i in 0..50u64 {
            if q.is_full() {
                out.push(q.pop().unwrap());
            }
            if i % 7 == 0 {
                q.push_ready(i);
            } else {
                q.push(move || {
                    std::thread::sleep(std::time::Duration::from_micros((50 - i) * 10));
                    i
                });
            }
        }
        while let Some(v) = q.pop() {
            out.push(v);
        }
        assert_eq!(out, (0..50).collect::<Vec<_>>());
    }
}
