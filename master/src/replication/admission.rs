//! Which new connections the replication port takes. Pure: the counts and the RNG are passed
//! in; the reactor counts and closes.
//!
//! A connection that has not finished its handshake has proven nothing, so those are capped
//! apart from established links, and tightly: at most [`MAX_HANDSHAKES_PER_SOURCE`] from one
//! address, and at most [`MAX_HANDSHAKES`] in all, with new ones dropped at random once
//! [`HANDSHAKE_DROP_START`] are pending (sshd's `MaxStartups 8:30:16`), so a flood of idle
//! connections cannot hold the port and a real replica (whose handshake takes one round trip)
//! still gets through. Each pending one is closed after the handshake timeout.

use rand::Rng;

/// Links held at once, established or not (256): a fleet has a handful of replicas; this
/// bounds the memory (a few KiB each) a flood can cost.
pub const MAX_LINKS: usize = 256;
/// Connections still in their handshake, in all (16): a replica finishes its handshake in one
/// round trip, so even many replicas reconnecting together rarely have more than a few pending.
pub const MAX_HANDSHAKES: usize = 16;
/// Pending handshakes from which new connections are dropped at random (8).
pub const HANDSHAKE_DROP_START: usize = 8;
/// The chance of that drop at [`HANDSHAKE_DROP_START`], percent (30), rising linearly to 100 %
/// at [`MAX_HANDSHAKES`].
pub const HANDSHAKE_DROP_START_PERCENT: usize = 30;
/// Connections still in their handshake from one source address (4): one replica has at most
/// one, and a few replicas may share an address behind NAT.
pub const MAX_HANDSHAKES_PER_SOURCE: usize = 4;

/// The port's state when a connection arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Links held, established or not.
    pub links: usize,
    /// Links still in their handshake.
    pub handshakes: usize,
    /// Links still in their handshake from the new connection's address.
    pub source_handshakes: usize,
}

/// What to do with a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Accept,
    /// [`MAX_LINKS`] held.
    LinksFull,
    /// [`MAX_HANDSHAKES_PER_SOURCE`] pending from this address.
    SourceFull,
    /// [`MAX_HANDSHAKES`] pending.
    HandshakesFull,
    /// Dropped at random between [`HANDSHAKE_DROP_START`] and [`MAX_HANDSHAKES`].
    EarlyDrop,
}

/// Decides on a new connection.
pub fn admit(counts: Counts, rng: &mut impl Rng) -> Admission {
    if counts.links >= MAX_LINKS {
        return Admission::LinksFull;
    }
    if counts.source_handshakes >= MAX_HANDSHAKES_PER_SOURCE {
        return Admission::SourceFull;
    }
    if counts.handshakes >= MAX_HANDSHAKES {
        return Admission::HandshakesFull;
    }
    if counts.handshakes >= HANDSHAKE_DROP_START
        && rng.gen_range(0..100) < drop_percent(counts.handshakes)
    {
        return Admission::EarlyDrop;
    }
    Admission::Accept
}

/// The drop chance with `pending` handshakes, percent.
fn drop_percent(pending: usize) -> usize {
    let span = MAX_HANDSHAKES - HANDSHAKE_DROP_START;
    let over = pending.saturating_sub(HANDSHAKE_DROP_START).min(span);
    HANDSHAKE_DROP_START_PERCENT + (100 - HANDSHAKE_DROP_START_PERCENT) * over / span
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn counts(handshakes: usize, source_handshakes: usize) -> Counts {
        Counts {
            links: handshakes,
            handshakes,
            source_handshakes,
        }
    }

    /// Accepted out of 10,000 arrivals at a fixed state.
    fn accepted(state: Counts) -> usize {
        let mut rng = StdRng::seed_from_u64(7);
        (0..10_000)
            .filter(|_| admit(state, &mut rng) == Admission::Accept)
            .count()
    }

    #[test]
    fn below_the_drop_start_every_connection_is_taken() {
        assert_eq!(accepted(counts(0, 0)), 10_000);
        assert_eq!(accepted(counts(HANDSHAKE_DROP_START - 1, 3)), 10_000);
    }

    #[test]
    fn the_drop_chance_rises_from_30_to_100_percent() {
        assert_eq!(drop_percent(8), 30);
        assert_eq!(drop_percent(12), 65);
        assert_eq!(drop_percent(15), 91);
        assert_eq!(drop_percent(16), 100);
        // Seeded: about 70 % then 35 % get in.
        let at_start = accepted(counts(8, 0));
        assert!((6_800..7_200).contains(&at_start), "{at_start}");
        let midway = accepted(counts(12, 0));
        assert!((3_300..3_700).contains(&midway), "{midway}");
    }

    #[test]
    fn full_tables_and_a_busy_source_refuse_at_once() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(
            admit(counts(MAX_HANDSHAKES, 0), &mut rng),
            Admission::HandshakesFull
        );
        assert_eq!(
            admit(counts(1, MAX_HANDSHAKES_PER_SOURCE), &mut rng),
            Admission::SourceFull
        );
        let full = Counts {
            links: MAX_LINKS,
            handshakes: 0,
            source_handshakes: 0,
        };
        assert_eq!(admit(full, &mut rng), Admission::LinksFull);
    }
}
