//! # refinery-pii
//!
//! PII anonymization as a [`Modifier`](refinery_corpus::Modifier): e-mail
//! addresses, public IPv4 and IPv6 addresses, phone numbers (off by
//! default, as in FineWeb), payment card numbers (13–19 digits, Luhn) and
//! IBANs (country length, mod-97). Hits are found with ASCII-boundary
//! regexes and then validated; each is replaced by a configurable
//! placeholder, and the counts per kind go to `metadata.pii`
//! (`{"email": 2, "ip": 1}`, non-zero only). The stage never drops a
//! document.
//!
//! [`score`] measures span-level precision and recall on presidio's
//! synthetic sentences (`examples/pii_score.rs`, `tests/presidio_score.rs`).
//!
//! ```
//! use refinery_corpus::{Document, Modifier};
//! use refinery_pii::PiiConfig;
//!
//! let mut m = PiiConfig::default().validate()?;
//! let mut d = Document::new("1", "Write to jo@host.de from 8.8.8.8.", "mem");
//! m.modify(&mut d);
//! assert_eq!(d.text, "Write to email@example.com from 192.0.2.1.");
//! assert_eq!(d.metadata.get("pii"), Some(&serde_json::json!({"email": 1, "ip": 1})));
//! # Ok::<(), refinery_pii::ConfigError>(())
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod detect;
pub mod modifier;
pub mod score;
pub mod validate;

pub use detect::{Detector, PiiKind, PiiMatch};
pub use modifier::{PiiConfig, PiiModifier, METADATA_KEY};

/// A configuration value that makes no sense; `field` names it (shared by the stage crates).
pub use refinery_corpus::ConfigError;
