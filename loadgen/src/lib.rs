//! The load generator (`gatehouse-loadgen`): thousands of simulated agents, each a distinct
//! registered host running the real agent [`gatehouse_agent::engine::Engine`], many per thread on the
//! real [`gatehouse_agent::driver::Driver`]; plus provisioning, the loopback demo, and a lean closed-loop
//! client ([`closed_loop`]) that measures a server's throughput with redis GET ([`redis`]) or
//! Gatehouse's sealed authorize requests ([`direct`]). docs/LOADGEN.md is the user's guide.
//!
//! Pure parts: [`arrivals`], [`histogram`], [`mix`], [`args`], [`stats`], [`phases`], [`report`], [`resp`],
//! [`provision::provision`] and [`demo::table`]. I/O shells: [`worker`] and [`run`] (threads,
//! sockets), [`closed_loop`], [`redis`], [`direct`], [`monitor`] (UDP probes), [`procs`] and [`demo`] (processes: master,
//! replicas, admin), [`sys`] (rlimit, affinity), [`cli`] (the program; the binary's `main`
//! calls [`cli::main`]).

pub mod args;
pub mod arrivals;
pub mod cli;
pub mod closed_loop;
pub mod demo;
pub mod direct;
pub mod histogram;
pub mod mix;
pub mod monitor;
pub mod phases;
pub mod procs;
pub mod provision;
pub mod redis;
pub mod report;
pub mod resp;
pub mod run;
pub mod stats;
pub mod sys;
pub mod worker;
