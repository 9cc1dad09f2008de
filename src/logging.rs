//! The server's log level, changeable while it runs (Meshery's `/api/system/events/config`).
//! The binary installs a reload hook for its tracing filter; without one (tests, a library
//! user with a subscriber of their own) the level is remembered but changes nothing.

use parking_lot::Mutex;
use std::sync::OnceLock;

/// Meshery's level names (logrus), most severe first.
pub const LEVELS: [&str; 7] = ["panic", "fatal", "error", "warn", "info", "debug", "trace"];

type Reload = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

static RELOAD: OnceLock<Reload> = OnceLock::new();
static CURRENT: Mutex<Option<&'static str>> = parking_lot::const_mutex(None);

/// The tracing filter directive a Meshery level stands for (tracing has no panic or fatal).
fn directive(level: &str) -> Option<&'static str> {
    Some(match level {
        "panic" | "fatal" | "error" => "error",
        "warn" => "warn",
        "info" => "info",
        "debug" => "debug",
        "trace" => "trace",
        _ => return None,
    })
}

/// Installs the hook that replaces the process's filter (called once, by the binary).
pub fn install(reload: impl Fn(&str) -> Result<(), String> + Send + Sync + 'static) {
    let _ = RELOAD.set(Box::new(reload));
}

/// The level set last, else the one the process's filter lets through.
pub fn level() -> &'static str {
    if let Some(level) = *CURRENT.lock() {
        return level;
    }
    match tracing::level_filters::LevelFilter::current().into_level() {
        None => "panic",
        Some(tracing::Level::ERROR) => "error",
        Some(tracing::Level::WARN) => "warn",
        Some(tracing::Level::INFO) => "info",
        Some(tracing::Level::DEBUG) => "debug",
        Some(tracing::Level::TRACE) => "trace",
    }
}

/// Sets the level (one of [`LEVELS`]).
pub fn set(level: &str) -> Result<(), String> {
    let (Some(name), Some(directive)) = (
        LEVELS.iter().find(|l| **l == level).copied(),
        directive(level),
    ) else {
        return Err(format!(
            "no log level {level:?}; use one of {}",
            LEVELS.join(", ")
        ));
    };
    if let Some(reload) = RELOAD.get() {
        reload(directive)?;
    }
    *CURRENT.lock() = Some(name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_to_directives_and_unknown_ones_are_refused() {
        assert_eq!(directive("fatal"), Some("error"));
        assert_eq!(directive("warn"), Some("warn"));
        assert!(set("loud").unwrap_err().contains("panic, fatal, error"));
        // Without a hook the level is remembered (the binary's hook is tested there).
        set("debug").unwrap();
        assert_eq!(level(), "debug");
        set("info").unwrap();
        assert_eq!(level(), "info");
    }
}
