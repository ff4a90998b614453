//! config

mod error;
mod source;
