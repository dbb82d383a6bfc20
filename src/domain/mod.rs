//! Plain data with invariants: a value of a type here is valid ("parse, don't validate").
//!
//! No I/O, no async, no clock: times are epoch seconds handed in by the caller. Parse errors say
//! exactly what is wrong. Identity types (ResidentId, CreditCode, accounts, organisations) join
//! [`client`] here as their capabilities land.

pub mod account;
pub mod admin;
pub mod audit;
pub mod client;
pub mod date;
pub mod document;
pub mod identifiers;
pub mod jose;
pub mod organisation;
pub mod password;
