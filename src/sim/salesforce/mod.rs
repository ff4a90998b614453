//! salesforce simulator
