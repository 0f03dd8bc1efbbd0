//! The environment as read: a snapshot of variables, no checks, no I/O
//! beyond `std::env::vars`. Tests build one from a map.

use std::collections::BTreeMap;

/// A snapshot of environment variables.
#[derive(Clone, Default)]
pub struct RawEnv {
    vars: BTreeMap<String, String>,
    /// Every name asked for (tests check each is documented).
    #[cfg(test)]
    pub(super) read: std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
}

impl RawEnv {
    /// The process environment (non-UTF-8 values are skipped).
    pub fn from_process() -> RawEnv {
        RawEnv::from_pairs(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// From explicit pairs (tests).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> RawEnv {
        RawEnv {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            #[cfg(test)]
            read: Default::default(),
        }
    }

    /// Set a variable (e.g. a command-line flag that stands for one).
    pub fn set(&mut self, key: &str, value: &str) {
        self.vars.insert(key.to_string(), value.to_string());
    }

    /// A variable's value; empty values count as unset.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.note_read(key);
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// A variable's value exactly as set, even empty or blank; `None` only
    /// when unset. Lets validation tell "unset" from "set but empty".
    pub fn get_raw(&self, key: &str) -> Option<&str> {
        self.note_read(key);
        self.vars.get(key).map(String::as_str)
    }

    #[cfg(test)]
    fn note_read(&self, key: &str) {
        if let Ok(mut read) = self.read.lock() {
            read.insert(key.to_string());
        }
    }

    #[cfg(not(test))]
    fn note_read(&self, _key: &str) {}

    /// Whether a flag variable is on (`1`, `true`, `yes`, `on`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(
            self.get(key)
                .map(|v| v.trim().to_ascii_lowercase())
                .as_deref(),
            Some("1" | "true" | "yes" | "on")
        )
    }
}
