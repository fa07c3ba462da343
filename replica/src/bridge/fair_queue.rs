//! The worker queue's order: one FIFO per host, served in turn (round robin), so a host that
//! floods the queue delays another host's request by at most one of its own per turn, not by
//! everything it has queued. Within a host, requests keep their order.
//!
//! Pure data structure; the worker pool keeps it under its mutex (`workers.rs`). Memory: a
//! host's FIFO exists only while it has jobs queued, so it holds at most the queue's capacity
//! in jobs plus one small entry per host with jobs queued.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Jobs per host, served one host at a time in turn.
#[derive(Debug)]
pub struct FairQueue<T> {
    by_host: HashMap<Arc<str>, VecDeque<T>>,
    /// Hosts with jobs queued, in the order they are served next.
    turn: VecDeque<Arc<str>>,
    len: usize,
}

impl<T> Default for FairQueue<T> {
    fn default() -> Self {
        FairQueue {
            by_host: HashMap::new(),
            turn: VecDeque::new(),
            len: 0,
        }
    }
}

impl<T> FairQueue<T> {
    /// Queues `item` behind `host`'s earlier ones; a host with nothing queued joins the end of
    /// the turn.
    pub fn push(&mut self, host: &Arc<str>, item: T) {
        match self.by_host.get_mut(host) {
            Some(queue) => queue.push_back(item),
            None => {
                self.by_host.insert(host.clone(), VecDeque::from([item]));
                self.turn.push_back(host.clone());
            }
        }
        self.len += 1;
    }

    /// The next job: the oldest of the host whose turn it is; that host then goes to the end
    /// of the turn if it has more.
    pub fn pop(&mut self) -> Option<T> {
        let host = self.turn.pop_front()?;
        let queue = self.by_host.get_mut(&host)?;
        let item = queue.pop_front();
        if queue.is_empty() {
            self.by_host.remove(&host);
        } else {
            self.turn.push_back(host);
        }
        if item.is_some() {
            self.len -= 1;
        }
        item
    }

    /// Jobs queued, all hosts.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Hosts with jobs queued.
    pub fn hosts(&self) -> usize {
        self.turn.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_served_in_turn_and_each_keeps_its_order() {
        let (a, b, c): (Arc<str>, Arc<str>, Arc<str>) = ("a".into(), "b".into(), "c".into());
        let mut q = FairQueue::default();
        for n in 0..5 {
            q.push(&a, format!("a{n}"));
        }
        q.push(&b, "b0".to_string());
        q.push(&b, "b1".to_string());
        assert_eq!((q.len(), q.hosts()), (7, 2));
        // b's first job waits behind one of a's five, not all of them.
        assert_eq!(q.pop().as_deref(), Some("a0"));
        assert_eq!(q.pop().as_deref(), Some("b0"));
        q.push(&c, "c0".to_string());
        let rest: Vec<String> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(rest, ["a1", "b1", "c0", "a2", "a3", "a4"]);
        assert!(q.is_empty() && q.hosts() == 0 && q.by_host.is_empty());
        assert_eq!(q.pop(), None);
    }
}
