//! Driving real agent engines in a test: turn a [`Driver`] until requests complete.

use crate::WAIT_LIMIT;
use gatehouse_agent::driver::{Completion, Driver};
use std::time::{Duration, Instant};

/// Turns the driver until `n` requests have completed (bounded by the wait limit).
pub fn complete(driver: &mut Driver, n: usize) -> Vec<Completion> {
    let start = Instant::now();
    let mut done = Vec::new();
    while done.len() < n {
        assert!(
            start.elapsed() < WAIT_LIMIT,
            "only {} of {n} requests completed",
            done.len()
        );
        driver
            .turn(Some(Duration::from_millis(50)), &mut Vec::new())
            .unwrap();
        driver.take_completions(&mut done);
    }
    done
}

/// Submits alice's SSH login on engine `a`'s own host (a server answers an agent only about
/// its own host).
pub fn submit_ssh(driver: &mut Driver, a: usize) {
    let request = crate::requests::ssh_on(&driver.engine(a).config().host);
    driver.submit(a, request);
}
