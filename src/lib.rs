//! yihao: a unified identity authentication server (OpenID Connect / OAuth 2.0 provider) for
//! government services, keyed by the resident ID number and the unified social credit code.
//!
//! Layers (see ARCHITECTURE.md): [`web`] (axum, thin) -> [`protocol`] (rules, pure) -> [`store`]
//! (ports with SQLite, PostgreSQL, memory and Redis adapters). [`domain`] holds valid-by-construction
//! types; [`crypto`] holds key material and hashing; [`app`] is the composition root and the only
//! place that names an adapter.

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod outside;
pub mod protocol;
pub mod store;
pub mod telemetry;
pub mod web;
