//! Which connections the bridge keeps, beyond its overall cap: connections still in the
//! handshake have a small cap of their own, with random early drop as it fills (sshd's
//! MaxStartups start:rate:full), and a cap per source address; established connections have a
//! cap per proven host. So neither keyless connections from one or many addresses, nor one
//! host's key (stolen or misbehaving), can fill the connection table that every agent needs.
//!
//! Pure: the RNG is an argument. Owned by the reactor: [`Admission::on_accept`] when a
//! connection arrives, [`Admission::on_established`] when its handshake is done,
//! [`Admission::on_close`] with what was counted for it. Memory: one entry per source address
//! with a handshake in progress and one per host with connections.

use rand::Rng;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// The caps, from the bridge config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Connections held at once, in any state.
    pub max_connections: usize,
    /// Connections still in the handshake at once ("full").
    pub max_handshakes: usize,
    /// From this many handshakes in progress on, new connections are dropped at random
    /// ("start").
    pub handshake_drop_start: usize,
    /// The chance of that drop at `handshake_drop_start`, percent, rising linearly to 100 at
    /// `max_handshakes` ("rate").
    pub handshake_drop_rate_percent: u8,
    /// Handshakes in progress from one source address at once.
    pub max_handshakes_per_source: usize,
    /// Established connections of one host at once.
    pub max_connections_per_host: usize,
}

/// Why a connection is not kept. Each is answered "too many connections, go elsewhere".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// At `max_connections`.
    Full,
    /// At `max_handshakes`.
    Handshakes,
    /// Dropped at random between `handshake_drop_start` and `max_handshakes`.
    EarlyDrop,
    /// The source address has `max_handshakes_per_source` handshakes in progress.
    Source,
    /// The host has `max_connections_per_host` established connections.
    Host,
}

/// What a connection was counted as; give it back to [`Admission::on_close`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counted {
    /// In the handshake, from this source.
    Handshake(IpAddr),
    /// Established, for this host.
    Host(Arc<str>),
    /// Nothing (refused at establishment; closing).
    Nothing,
}

/// Connections in each state the caps care about.
#[derive(Debug)]
pub struct Admission {
    limits: AdmissionLimits,
    handshakes: usize,
    by_source: HashMap<IpAddr, usize>,
    by_host: HashMap<Arc<str>, usize>,
}

impl Admission {
    pub fn new(limits: AdmissionLimits) -> Self {
        Admission {
            limits,
            handshakes: 0,
            by_source: HashMap::new(),
            by_host: HashMap::new(),
        }
    }

    /// New caps (a reload): connections already counted stay; the caps apply to what comes.
    pub fn set_limits(&mut self, limits: AdmissionLimits) {
        self.limits = limits;
    }

    /// A connection from `source` was accepted while `open` connections are held (itself not
    /// included): keep it (counted as a handshake) or refuse it.
    pub fn on_accept(
        &mut self,
        source: IpAddr,
        open: usize,
        rng: &mut impl Rng,
    ) -> Result<Counted, Refused> {
        let l = &self.limits;
        if open >= l.max_connections {
            return Err(Refused::Full);
        }
        let from_source = self.by_source.get(&source).copied().unwrap_or(0);
        if from_source >= l.max_handshakes_per_source {
            return Err(Refused::Source);
        }
        if self.handshakes >= l.max_handshakes {
            return Err(Refused::Handshakes);
        }
        if self.handshakes >= l.handshake_drop_start {
            // sshd's MaxStartups: rate % at start, rising linearly to 100 % at full.
            let span = (l.max_handshakes - l.handshake_drop_start) as u64;
            let over = (self.handshakes - l.handshake_drop_start) as u64;
            let rate = u64::from(l.handshake_drop_rate_percent.min(100));
            let percent = rate + (100 - rate) * over / span.max(1);
            if rng.gen_range(0..100) < percent {
                return Err(Refused::EarlyDrop);
            }
        }
        self.handshakes += 1;
        *self.by_source.entry(source).or_insert(0) += 1;
        Ok(Counted::Handshake(source))
    }

    /// The connection counted as `counted` finished its handshake as `host`: it leaves the
    /// handshake caps and is kept for its host, or refused when the host has its cap.
    pub fn on_established(
        &mut self,
        counted: &Counted,
        host: &Arc<str>,
    ) -> Result<Counted, Refused> {
        self.on_close(counted);
        let count = self.by_host.entry(host.clone()).or_insert(0);
        if *count >= self.limits.max_connections_per_host {
            if *count == 0 {
                self.by_host.remove(host);
            }
            return Err(Refused::Host);
        }
        *count += 1;
        Ok(Counted::Host(host.clone()))
    }

    /// The connection counted as `counted` is closing.
    pub fn on_close(&mut self, counted: &Counted) {
        match counted {
            Counted::Handshake(source) => {
                self.handshakes = self.handshakes.saturating_sub(1);
                decrement(&mut self.by_source, source);
            }
            Counted::Host(host) => decrement(&mut self.by_host, host),
            Counted::Nothing => {}
        }
    }

    /// Connections in the handshake now.
    pub fn handshakes(&self) -> usize {
        self.handshakes
    }
}

/// One less for `key`; the entry goes at zero, so the maps hold only live counts.
fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(count) = map.get_mut(key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const LIMITS: AdmissionLimits = AdmissionLimits {
        max_connections: 100,
        max_handshakes: 20,
        handshake_drop_start: 10,
        handshake_drop_rate_percent: 30,
        max_handshakes_per_source: 8,
        max_connections_per_host: 2,
    };

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, n])
    }

    #[test]
    fn one_source_holds_at_most_its_share_of_the_handshakes() {
        let mut a = Admission::new(LIMITS);
        let mut rng = StdRng::seed_from_u64(1);
        let kept: Vec<_> = (0..8)
            .map(|n| a.on_accept(ip(1), n, &mut rng).unwrap())
            .collect();
        assert_eq!(a.on_accept(ip(1), 8, &mut rng), Err(Refused::Source));
        // Another source still gets in, and a closed handshake frees its source's place.
        assert!(a.on_accept(ip(2), 8, &mut rng).is_ok());
        a.on_close(&kept[0]);
        assert!(a.on_accept(ip(1), 8, &mut rng).is_ok());
        assert_eq!(a.handshakes(), 9);
    }

    #[test]
    fn handshakes_are_dropped_early_at_random_then_all_at_full() {
        // From 10 in progress, 30 % of new ones are dropped, rising to 100 % at 20.
        let mut rng = StdRng::seed_from_u64(7);
        let mut at = |held: usize, tries: u32| {
            let mut dropped = 0;
            for _ in 0..tries {
                let mut a = Admission::new(LIMITS);
                a.handshakes = held;
                match a.on_accept(ip(200), held, &mut rng) {
                    Err(Refused::EarlyDrop | Refused::Handshakes) => dropped += 1,
                    Ok(_) => {}
                    Err(other) => panic!("{other:?}"),
                }
            }
            dropped
        };
        assert_eq!(at(9, 1000), 0);
        assert!((250..350).contains(&at(10, 1000)), "30 % at start");
        assert!((600..700).contains(&at(15, 1000)), "65 % half way");
        assert_eq!(at(20, 1000), 1000, "all at full");
    }

    #[test]
    fn the_overall_cap_comes_first() {
        let mut a = Admission::new(LIMITS);
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(a.on_accept(ip(1), 100, &mut rng), Err(Refused::Full));
        assert_eq!(a.handshakes(), 0);
    }

    #[test]
    fn a_host_keeps_at_most_its_cap_of_established_connections() {
        let mut a = Admission::new(LIMITS);
        let mut rng = StdRng::seed_from_u64(1);
        let (web1, web2): (Arc<str>, Arc<str>) = ("web1".into(), "web2".into());
        let mut established = Vec::new();
        for _ in 0..2 {
            let counted = a.on_accept(ip(1), 0, &mut rng).unwrap();
            established.push(a.on_established(&counted, &web1).unwrap());
        }
        let third = a.on_accept(ip(1), 0, &mut rng).unwrap();
        assert_eq!(a.on_established(&third, &web1), Err(Refused::Host));
        // Refused or not, it left the handshake count.
        assert_eq!(a.handshakes(), 0);
        let other = a.on_accept(ip(1), 0, &mut rng).unwrap();
        assert!(a.on_established(&other, &web2).is_ok());
        a.on_close(&established[0]);
        let again = a.on_accept(ip(1), 0, &mut rng).unwrap();
        assert_eq!(
            a.on_established(&again, &web1),
            Ok(Counted::Host(web1.clone()))
        );
        for counted in [&established[1], &Counted::Host(web1), &Counted::Host(web2)] {
            a.on_close(counted);
        }
        assert!(a.by_host.is_empty() && a.by_source.is_empty());
    }
}
