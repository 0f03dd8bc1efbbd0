//! What a configuration problem looks like: one per variable, each with an
//! example of a right value, all collected before failing.

use std::fmt;

/// One configuration problem: the variable, what is wrong, a right example.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable (`ADOS_MEMORY`).
    pub var: &'static str,
    /// What is wrong (never the value of a secret).
    pub problem: String,
    /// An example of a right value.
    pub example: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (example: {}={})",
            self.var, self.problem, self.var, self.example
        )
    }
}

/// Every configuration problem found, reported together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "invalid configuration ({}):",
            crate::words::count(self.0.len(), "problem")
        )?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Problems collected while loading.
#[derive(Default)]
pub(super) struct Problems(pub(super) Vec<ConfigError>);

impl Problems {
    /// Record a problem; returns an empty placeholder so a failed field
    /// can still fill the struct while checking goes on.
    pub(super) fn add<T: Default>(
        &mut self,
        var: &'static str,
        problem: impl Into<String>,
        example: &'static str,
    ) -> T {
        self.push(var, problem, example);
        T::default()
    }

    pub(super) fn push(
        &mut self,
        var: &'static str,
        problem: impl Into<String>,
        example: &'static str,
    ) {
        self.0.push(ConfigError {
            var,
            problem: problem.into(),
            example,
        });
    }
}
