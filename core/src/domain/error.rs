//! Errors raised by pure domain rules. Each names the field or item at fault.

use std::fmt;

/// One problem found in a prompt pack file: which file, which entry, which field, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackIssue {
    pub file: String,
    /// `pack`, `capstone`, `prompt "<id>"`, `prompt #<n>` (when the id itself is missing) or `line <n>`.
    pub entry: String,
    /// The field at fault; empty for syntax errors.
    pub field: String,
    pub problem: String,
}

impl fmt::Display for PackIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}: {}", self.file, self.entry, self.problem)
        } else {
            write!(f, "{}: {}: field `{}`: {}", self.file, self.entry, self.field, self.problem)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("invalid {field}: {problem}")]
    InvalidField { field: String, problem: String },

    #[error("unknown time zone {name:?}: use an IANA zone name such as \"Europe/Berlin\"")]
    InvalidTimeZone { name: String },

    #[error("prompt pack rejected ({} problem(s)):\n{}", .issues.len(), format_issues(.issues))]
    InvalidPromptPack { issues: Vec<PackIssue> },

    #[error("the cohort is full: {learners} learners would exceed its maximum of {max}")]
    CohortFull { learners: u32, max: u32 },

    #[error("prompt pack {pack_id:?} has no prompt for program week {week} day {day}")]
    PackDoesNotCoverProgram { pack_id: String, week: u32, day: u32 },
}

impl DomainError {
    pub fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::InvalidField { field: field.into(), problem: problem.into() }
    }
}

fn format_issues(issues: &[PackIssue]) -> String {
    issues.iter().map(|issue| format!("  {issue}")).collect::<Vec<_>>().join("\n")
}
