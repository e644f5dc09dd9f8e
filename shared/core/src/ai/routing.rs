//! Routed chat: the model chosen by the request's complexity.
//!
//! | level | model | provider |
//! |---|---|---|
//! | `simple` | `gpt-4o-mini` | OpenAI |
//! | `moderate` | `gpt-4o` | OpenAI |
//! | `complex` | `claude-sonnet-4-5` | Anthropic |
//! | `search` | `sonar` | Perplexity |
//!
//! The caller may force a level (`complexity`); otherwise [`classify`]
//! decides it from the prompt with fixed rules, tried in this order (the
//! first that matches wins):
//!
//! 1. `search`: the prompt holds a URL (`http://`, `https://`, `www.`) or
//!    asks for current information: one of [`SEARCH_WORDS`] (`latest`,
//!    `today`, `news`, ...) or [`SEARCH_PHRASES`] (`right now`, `this week`,
//!    `look up`, ...).
//! 2. `complex`: a code fence (three backticks), one of [`COMPLEX_WORDS`]
//!    (`prove`, `debug`, `refactor`, `algorithm`, ...) or
//!    [`COMPLEX_PHRASES`] (`step by step`, `stack trace`, ...), or a prompt
//!    longer than [`LONG_PROMPT`] characters.
//! 3. `simple`: at most [`SHORT_PROMPT`] characters with one of
//!    [`SIMPLE_WORDS`] (`classify`, `extract`, `sentiment`, `translate`,
//!    ...) or [`SIMPLE_PHRASES`] (`yes or no`, ...).
//! 4. otherwise `moderate`.
//!
//! Words are matched whole, ignoring case. The answer says which level and
//! which rule (`routing_reason`).
//!
//! When the level's provider has no key, the first configured provider of
//! the level's fallback list serves it (its model for that level), and the
//! answer says so (`fallback: true`, and the reason names the missing
//! provider): see [`Route::candidates`].

use serde::{Deserialize, Serialize};

use crate::ports::ai::ProviderName;

/// A routed request's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Complexity {
    Simple,
    Moderate,
    Complex,
    Search,
}

impl Complexity {
    pub fn as_str(self) -> &'static str {
        match self {
            Complexity::Simple => "simple",
            Complexity::Moderate => "moderate",
            Complexity::Complex => "complex",
            Complexity::Search => "search",
        }
    }
}

pub const SIMPLE_MODEL: &str = "gpt-4o-mini";
pub const MODERATE_MODEL: &str = "gpt-4o";
/// The specification's "claude-sonnet": Anthropic's Claude Sonnet 4.5.
pub const COMPLEX_MODEL: &str = "claude-sonnet-4-5";
pub const SEARCH_MODEL: &str = "sonar";
/// Anthropic's small model, for `simple` when OpenAI has no key.
pub const ANTHROPIC_SIMPLE_MODEL: &str = "claude-haiku-4-5";
/// Perplexity's larger model, for `complex` when only Perplexity has a key.
pub const PERPLEXITY_COMPLEX_MODEL: &str = "sonar-pro";

pub const SEARCH_WORDS: &[&str] = &[
    "latest",
    "today",
    "todays",
    "tonight",
    "yesterday",
    "current",
    "currently",
    "news",
    "recent",
    "recently",
    "headlines",
    "weather",
    "stock",
    "search",
    "google",
    "trending",
];
pub const SEARCH_PHRASES: &[&str] = &[
    "right now",
    "this week",
    "this month",
    "this year",
    "look up",
    "as of now",
    "who won",
    "price of",
];
pub const COMPLEX_WORDS: &[&str] = &[
    "prove",
    "proof",
    "debug",
    "refactor",
    "implement",
    "algorithm",
    "optimize",
    "optimise",
    "derive",
    "architecture",
    "traceback",
    "segfault",
    "compile",
    "theorem",
];
pub const COMPLEX_PHRASES: &[&str] = &[
    "step by step",
    "stack trace",
    "root cause",
    "write a program",
    "write code",
];
pub const SIMPLE_WORDS: &[&str] = &[
    "classify",
    "categorize",
    "categorise",
    "label",
    "extract",
    "sentiment",
    "translate",
    "tag",
    "detect",
    "spam",
];
pub const SIMPLE_PHRASES: &[&str] = &["yes or no", "true or false", "which category", "one word"];
/// A prompt longer than this (characters) is `complex`.
pub const LONG_PROMPT: usize = 2000;
/// A classification or extraction prompt is `simple` up to this long.
pub const SHORT_PROMPT: usize = 1000;

/// The level of a prompt and the rule that chose it.
pub fn classify(prompt: &str) -> (Complexity, String) {
    let lower = prompt.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let joined = format!(" {} ", words.join(" "));
    let word = |list: &[&'static str]| list.iter().copied().find(|w| words.contains(w));
    let phrase = |list: &[&'static str]| list.iter().copied().find(|p| joined.contains(&format!(" {p} ")));
    if lower.contains("http://") || lower.contains("https://") || lower.contains("www.") {
        return (Complexity::Search, "the prompt holds a URL".to_owned());
    }
    if let Some(hit) = word(SEARCH_WORDS).or_else(|| phrase(SEARCH_PHRASES)) {
        return (
            Complexity::Search,
            format!("the prompt asks for current information (\"{hit}\")"),
        );
    }
    if prompt.contains("```") {
        return (Complexity::Complex, "the prompt holds a code block".to_owned());
    }
    if let Some(hit) = word(COMPLEX_WORDS).or_else(|| phrase(COMPLEX_PHRASES)) {
        return (
            Complexity::Complex,
            format!("the prompt asks for reasoning or coding (\"{hit}\")"),
        );
    }
    let length = prompt.chars().count();
    if length > LONG_PROMPT {
        return (
            Complexity::Complex,
            format!("the prompt is long ({length} characters, over {LONG_PROMPT})"),
        );
    }
    if length <= SHORT_PROMPT
        && let Some(hit) = word(SIMPLE_WORDS).or_else(|| phrase(SIMPLE_PHRASES))
    {
        return (
            Complexity::Simple,
            format!("a short classification or extraction prompt (\"{hit}\")"),
        );
    }
    (Complexity::Moderate, "no rule matched: the default level".to_owned())
}

/// The model a provider uses for `moderate` (its default).
pub fn moderate_model(provider: ProviderName) -> &'static str {
    match provider {
        ProviderName::OpenAi => MODERATE_MODEL,
        ProviderName::Anthropic => COMPLEX_MODEL,
        ProviderName::Perplexity => SEARCH_MODEL,
    }
}

/// Where a routed request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub complexity: Complexity,
    pub provider: ProviderName,
    pub model: &'static str,
    pub reason: String,
    pub fallback: bool,
}

impl Route {
    /// The level's (provider, model), best first: the first is the
    /// specification's, the others its fallbacks.
    pub fn candidates(complexity: Complexity) -> [(ProviderName, &'static str); 3] {
        use ProviderName::*;
        match complexity {
            Complexity::Simple => [
                (OpenAi, SIMPLE_MODEL),
                (Anthropic, ANTHROPIC_SIMPLE_MODEL),
                (Perplexity, SEARCH_MODEL),
            ],
            Complexity::Moderate => [
                (OpenAi, MODERATE_MODEL),
                (Anthropic, COMPLEX_MODEL),
                (Perplexity, SEARCH_MODEL),
            ],
            Complexity::Complex => [
                (Anthropic, COMPLEX_MODEL),
                (OpenAi, MODERATE_MODEL),
                (Perplexity, PERPLEXITY_COMPLEX_MODEL),
            ],
            Complexity::Search => [
                (Perplexity, SEARCH_MODEL),
                (OpenAi, MODERATE_MODEL),
                (Anthropic, COMPLEX_MODEL),
            ],
        }
    }

    /// The route of a prompt (or of the forced level) among the configured
    /// providers; `None` when no provider is configured.
    pub fn choose(prompt: &str, forced: Option<Complexity>, configured: &[ProviderName]) -> Option<Route> {
        let (complexity, reason) = match forced {
            Some(level) => (level, "forced by the request's complexity".to_owned()),
            None => classify(prompt),
        };
        let candidates = Self::candidates(complexity);
        let (preferred, _) = candidates[0];
        let (index, (provider, model)) = candidates
            .iter()
            .copied()
            .enumerate()
            .find(|(_, (provider, _))| configured.contains(provider))?;
        let fallback = index > 0;
        let reason = if fallback {
            format!(
                "{complexity}: {reason}; {preferred} is not configured, so {provider} ({model}) serves it",
                complexity = complexity.as_str(),
                preferred = preferred.as_str(),
                provider = provider.as_str(),
            )
        } else {
            format!("{}: {reason}", complexity.as_str())
        };
        Some(Route {
            complexity,
            provider,
            model,
            reason,
            fallback,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heuristic() {
        assert_eq!(classify("What is the latest Rust release?").0, Complexity::Search);
        assert_eq!(classify("Summarise https://example.com/post").0, Complexity::Search);
        assert_eq!(classify("Debug this: ```fn main() {}```").0, Complexity::Complex);
        assert_eq!(
            classify("Prove that there are infinitely many primes").0,
            Complexity::Complex
        );
        assert_eq!(classify(&"word ".repeat(500)).0, Complexity::Complex);
        assert_eq!(classify("Classify the sentiment of: I love it").0, Complexity::Simple);
        assert_eq!(
            classify("Explain quantum computing in one paragraph.").0,
            Complexity::Moderate
        );
        // Whole words only: "labelled" is not "label", "newsletter" not "news".
        assert_eq!(classify("Summarise our newsletter draft").0, Complexity::Moderate);
    }

    #[test]
    fn fallbacks() {
        let all = ProviderName::ALL;
        let route = Route::choose("hello", Some(Complexity::Complex), &all).unwrap();
        assert_eq!(
            (route.provider, route.model, route.fallback),
            (ProviderName::Anthropic, COMPLEX_MODEL, false)
        );
        let route = Route::choose("hello", Some(Complexity::Complex), &[ProviderName::OpenAi]).unwrap();
        assert_eq!(
            (route.provider, route.model, route.fallback),
            (ProviderName::OpenAi, MODERATE_MODEL, true)
        );
        assert!(route.reason.contains("anthropic is not configured"));
        assert!(Route::choose("hello", None, &[]).is_none());
    }
}
