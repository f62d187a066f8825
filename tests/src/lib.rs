//! Cross-crate integration and end-to-end test support for oxtail.

pub mod claude;
pub mod codex;
pub mod e2e;
pub mod fake_anthropic;
pub mod fake_model;
pub mod fake_openai;
pub mod harness;
pub mod http;
pub mod nats;
pub mod proc;
pub mod skip;
pub mod tui;
