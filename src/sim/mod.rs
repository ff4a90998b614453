//! Simulators of the two remote APIs, served by the binary itself (`kernel-sync sim ...`) and
//! started in-process by the tests, the demo and the benchmarks.

pub mod kernel;
pub mod salesforce;
