//! kernel simulator
