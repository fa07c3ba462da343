//! The simulation's event queue: a min-heap on (time, insertion order), so events at the same
//! virtual time come out in the order they were scheduled and a run is fully deterministic.
//! Pure; used by [`super::run`].

use super::replica::Done;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// What happens at an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventKind {
    /// The next request arrives (exactly one is pending at a time).
    Arrival,
    /// A worker of `replica` finishes `done`.
    Completion { replica: usize, done: Done },
}

/// Events by virtual time (µs), ties in insertion order.
#[derive(Debug, Default)]
pub struct EventQueue {
    heap: BinaryHeap<Reverse<(u64, u64, EventKind)>>,
    next_seq: u64,
}

impl EventQueue {
    pub fn push(&mut self, at_us: u64, kind: EventKind) {
        self.heap.push(Reverse((at_us, self.next_seq, kind)));
        self.next_seq += 1;
    }

    /// The earliest event, or `None` when nothing is left.
    pub fn pop(&mut self) -> Option<(u64, EventKind)> {
        self.heap.pop().map(|Reverse((at, _, kind))| (at, kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_out_by_time_then_insertion_order() {
        let mut q = EventQueue::default();
        let done = |replica| EventKind::Completion {
            replica,
            done: Done {
                job: super::super::replica::Job {
                    index: 0,
                    arrived_us: 0,
                    enqueued_us: 0,
                    service_us: 1,
                },
                started_us: 0,
            },
        };
        q.push(5, done(2));
        q.push(3, EventKind::Arrival);
        q.push(5, done(1));
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(
            order,
            vec![(3, EventKind::Arrival), (5, done(2)), (5, done(1))]
        );
    }
}
