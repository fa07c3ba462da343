//! Answers held back until their audit records are durable. Each connection keeps at most two
//! marks "the bytes of the write buffer from `start` on wait for journal sequence `seq`"; the
//! reactor writes only the bytes before the first mark whose sequence the journal has not
//! released. A third answer joins the second mark and raises its sequence: its bytes then wait
//! for the later record, which is safe (never sooner) and keeps the state fixed-size.
//!
//! Pure: the reactor passes the journal's released sequence in. Called on the reactor thread.

/// One connection's held answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Holds {
    /// (sequence, start offset in the write buffer), oldest first.
    marks: [Option<(u64, usize)>; 2],
}

impl Holds {
    /// The bytes from `start` on (an answer just sealed there, and anything after it) wait
    /// for sequence `seq`. Returns true if this made the connection wait on a new sequence
    /// (the reactor then remembers to look at it when `seq` is released).
    pub fn hold(&mut self, seq: u64, start: usize) -> bool {
        match &mut self.marks {
            [None, _] => {
                self.marks = [Some((seq, start)), None];
                true
            }
            [Some((first, _)), None] if *first >= seq => false,
            [Some(_), second @ None] => {
                *second = Some((seq, start));
                true
            }
            [Some(_), Some((second, _))] => {
                let raised = seq > *second;
                *second = (*second).max(seq);
                raised
            }
        }
    }

    /// Drops the marks `released` has passed; returns how many of the write buffer's `len`
    /// bytes may be written now.
    pub fn writable(&mut self, len: usize, released: u64) -> usize {
        while let Some((seq, _)) = self.marks[0] {
            if seq > released {
                break;
            }
            self.marks = [self.marks[1], None];
        }
        self.marks[0].map_or(len, |(_, start)| start.min(len))
    }

    /// `n` bytes left the front of the write buffer (never held ones).
    pub fn written(&mut self, n: usize) {
        for (_, start) in self.marks.iter_mut().flatten() {
            *start = start.saturating_sub(n);
        }
    }

    /// The sequence the connection waits for first, if any.
    pub fn waiting_for(&self) -> Option<u64> {
        self.marks[0].map(|(seq, _)| seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_leave_only_once_their_record_is_released() {
        let mut holds = Holds::default();
        // 10 bytes of handshake already buffered, then an answer needing record 5.
        assert!(holds.hold(5, 10));
        assert_eq!(holds.writable(40, 4), 10);
        holds.written(10);
        assert_eq!(holds.writable(30, 4), 0);
        // A second answer (record 7) after the first's 30 bytes.
        assert!(holds.hold(7, 30));
        assert_eq!(
            holds.writable(60, 5),
            30,
            "record 5 released: the first answer"
        );
        holds.written(30);
        assert_eq!(holds.waiting_for(), Some(7));
        assert_eq!(holds.writable(30, 6), 0);
        assert_eq!(holds.writable(30, 7), 30);
        assert_eq!(holds.waiting_for(), None);
    }

    #[test]
    fn a_third_answer_joins_the_second_and_waits_for_the_later_record() {
        let mut holds = Holds::default();
        assert!(holds.hold(3, 0));
        assert!(holds.hold(4, 20));
        assert!(holds.hold(9, 40), "the second mark now waits for 9");
        assert!(!holds.hold(8, 60), "already waiting for a later one");
        assert_eq!(holds.writable(80, 4), 20);
        assert_eq!(holds.writable(80, 8), 20, "bytes of 4 wait with 9's");
        assert_eq!(holds.writable(80, 9), 80);
        // A record released before an answer was sealed never holds it.
        assert!(holds.hold(2, 0));
        assert_eq!(holds.writable(10, 9), 10);
    }
}
