//! Cross-crate integration and end-to-end test support for oxtail.

pub mod claude;
pub mod fake_anthropic;
pub mod harness;
