//! Outbound HTTPS clients, built on first use.
//!
//! Building a TLS client loads the system's root certificates, which costs
//! milliseconds on every Lambda cold start; most invocations never call out
//! (no JWKS configured, no SNS message), so clients are built only when a
//! request first needs one, and shared after that.

use std::sync::{Arc, OnceLock};

/// A `reqwest::Client` made by `build` the first time it is asked for.
#[derive(Clone)]
pub struct LazyClient {
    client: Arc<OnceLock<reqwest::Client>>,
    build: fn() -> reqwest::Client,
}

impl LazyClient {
    pub fn new(build: fn() -> reqwest::Client) -> Self {
        Self {
            client: Arc::new(OnceLock::new()),
            build,
        }
    }

    pub fn get(&self) -> &reqwest::Client {
        self.client.get_or_init(self.build)
    }

    /// Whether the client has been built (for tests of laziness).
    pub fn is_built(&self) -> bool {
        self.client.get().is_some()
    }
}
