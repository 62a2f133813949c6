//! Prompt packs: the program's asset library of daily practices, in a versioned TOML file format
//! documented in `core/prompt-packs/README.md`.
//!
//! Parsing reads the file into a generic TOML tree and checks every field by hand, so that every
//! problem in a file is reported at once with its file, entry and field, not just the first one.

use std::collections::{BTreeSet, HashSet};

use serde::{Deserialize, Serialize};
use toml::{Table, Value};

use super::blueprint::Blueprint;
use super::error::{DomainError, PackIssue};
use super::roles::{RoleExpectation, WeeklyRole};

/// The newest pack file format this code reads (format 2 added `[[role]]`, format 3
/// `[[exemplar]]`; older files still read). A newer format is refused with a clear error.
pub const PACK_FORMAT: i64 = 3;

/// Exemplars one pack may hold (a week-0 exercise, not a library).
pub const MAX_EXEMPLARS: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptPack {
    pub id: String,
    pub version: u32,
    pub title: String,
    pub description: String,
    pub capstone: Option<Capstone>,
    /// In file order; when several prompts share a placement, the first is that day's prompt.
    pub prompts: Vec<Prompt>,
    /// What each weekly role is expected to do (format 2).
    #[serde(default)]
    pub roles: Vec<RoleExpectation>,
    /// Example submissions with reference ratings, for calibrating feedback in week 0 (format 3).
    #[serde(default)]
    pub exemplars: Vec<Exemplar>,
}

/// An example submission learners rate before they give feedback to peers, with the ratings an
/// experienced facilitator gave it: one score 1–5 per criterion of its prompt's rubric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exemplar {
    pub id: String,
    /// The prompt whose rubric it is rated on.
    pub prompt_id: String,
    pub title: String,
    pub body: String,
    pub reference: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capstone {
    pub title: String,
    pub body: String,
    pub rubric: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    pub id: String,
    /// Program week (0 = orientation).
    pub week: u32,
    /// Day within the week, 1..=7.
    pub day: u32,
    pub title: String,
    pub minutes: u32,
    pub tags: Vec<String>,
    /// Criteria peers use when giving feedback on a shared practice.
    pub rubric: Vec<String>,
    /// Markdown.
    pub body: String,
}

impl PromptPack {
    /// The prompt placed on a week and day, if any.
    pub fn prompt_for(&self, week: u32, day: u32) -> Option<&Prompt> {
        self.prompts.iter().find(|p| p.week == week && p.day == day)
    }

    pub fn prompt(&self, id: &str) -> Option<&Prompt> {
        self.prompts.iter().find(|p| p.id == id)
    }

    /// Checks that every day of a program laid out by `blueprint` has a prompt.
    pub fn check_covers(&self, blueprint: &Blueprint) -> Result<(), DomainError> {
        let placed: HashSet<(u32, u32)> = self.prompts.iter().map(|p| (p.week, p.day)).collect();
        for week in 0..=blueprint.weeks {
            for day in 1..=blueprint.days_in_week(week) {
                if !placed.contains(&(week, day)) {
                    return Err(DomainError::PackDoesNotCoverProgram { pack_id: self.id.clone(), week, day });
                }
            }
        }
        Ok(())
    }
}

/// Parses and validates a pack file. `file` names it in error messages.
pub fn parse_pack(file: &str, text: &str) -> Result<PromptPack, DomainError> {
    let mut checker = Checker { file, issues: Vec::new() };
    let root: Table = match text.parse() {
        Ok(root) => root,
        Err(err) => {
            let entry = err
                .span()
                .map(|span| format!("line {}", line_of(text, span.start)))
                .unwrap_or_else(|| "file".to_owned());
            checker.push(&entry, "", err.message().to_owned());
            return Err(checker.into_error());
        }
    };
    let pack = checker.pack(&root);
    match pack {
        Some(pack) if checker.issues.is_empty() => Ok(pack),
        _ => Err(checker.into_error()),
    }
}

fn line_of(text: &str, byte: usize) -> usize {
    text.get(..byte).map_or(1, |before| before.matches('\n').count() + 1)
}

struct Checker<'a> {
    file: &'a str,
    issues: Vec<PackIssue>,
}

impl Checker<'_> {
    fn push(&mut self, entry: &str, field: &str, problem: impl Into<String>) {
        self.issues.push(PackIssue {
            file: self.file.to_owned(),
            entry: entry.to_owned(),
            field: field.to_owned(),
            problem: problem.into(),
        });
    }

    fn into_error(self) -> DomainError {
        DomainError::InvalidPromptPack { issues: self.issues }
    }

    fn pack(&mut self, root: &Table) -> Option<PromptPack> {
        self.unknown_keys("file", root, &["format", "pack", "capstone", "role", "prompt", "exemplar"]);
        let format = match root.get("format") {
            Some(Value::Integer(format @ 1..=PACK_FORMAT)) => *format,
            Some(Value::Integer(other)) if *other > PACK_FORMAT => {
                self.push(
                    "file",
                    "format",
                    format!("format {other} is newer than this app reads ({PACK_FORMAT}); update the app"),
                );
                PACK_FORMAT
            }
            Some(other) => {
                self.push("file", "format", format!("expected 1..={PACK_FORMAT}, got {other}"));
                PACK_FORMAT
            }
            None => {
                self.push("file", "format", format!("missing; this file format is `format = {PACK_FORMAT}`"));
                PACK_FORMAT
            }
        };
        let header = self.table(root, "file", "pack")?;
        self.unknown_keys("pack", header, &["id", "version", "title", "description"]);
        let id = self.slug(header, "pack", "id");
        let version = self.integer(header, "pack", "version", 1..=1_000_000);
        let title = self.text(header, "pack", "title", 120);
        let description = self.optional_text(header, "pack", "description", 2_000);
        let capstone = root.get("capstone").and_then(|value| self.capstone(value));
        let prompts = self.prompts(root.get("prompt"));
        let roles = self.roles(root.get("role"), format);
        let exemplars = self.exemplars(root.get("exemplar"), format, &prompts);
        Some(PromptPack {
            id: id?,
            version: version?,
            title: title?,
            description: description.unwrap_or_default(),
            capstone,
            prompts,
            roles,
            exemplars,
        })
    }

    /// `[[exemplar]]` entries: unique ids, a prompt of the pack, one reference score 1..=5 per
    /// criterion of its rubric.
    fn exemplars(&mut self, value: Option<&Value>, format: i64, prompts: &[Prompt]) -> Vec<Exemplar> {
        let Some(value) = value else { return Vec::new() };
        if format < 3 {
            self.push("file", "exemplar", "`[[exemplar]]` needs `format = 3`");
            return Vec::new();
        }
        let Value::Array(items) = value else {
            self.push("file", "exemplar", "must be a list of tables `[[exemplar]]`");
            return Vec::new();
        };
        if items.len() > MAX_EXEMPLARS {
            self.push("file", "exemplar", format!("{} exemplars; a pack holds at most {MAX_EXEMPLARS}", items.len()));
            return Vec::new();
        }
        let mut exemplars: Vec<Exemplar> = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let numbered = format!("exemplar #{}", index + 1);
            let Value::Table(table) = item else {
                self.push(&numbered, "", "must be a table `[[exemplar]]`");
                continue;
            };
            let id = self.slug(table, &numbered, "id");
            let entry = id.as_ref().map_or(numbered, |id| format!("exemplar {id:?}"));
            self.unknown_keys(&entry, table, &["id", "prompt", "title", "body", "reference"]);
            let prompt_id = self.slug(table, &entry, "prompt");
            let title = self.text(table, &entry, "title", 120);
            let body = self.text(table, &entry, "body", 20_000);
            let (Some(id), Some(prompt_id), Some(title), Some(body)) = (id, prompt_id, title, body) else { continue };
            if exemplars.iter().any(|e| e.id == id) {
                self.push(&entry, "id", "used by an earlier exemplar; ids must be unique in a pack");
                continue;
            }
            let Some(prompt) = prompts.iter().find(|p| p.id == prompt_id) else {
                self.push(&entry, "prompt", format!("{prompt_id:?} is not a prompt of this pack"));
                continue;
            };
            let reference = match table.get("reference") {
                Some(Value::Array(scores)) if scores.len() == prompt.rubric.len() => {
                    let scores: Vec<Option<u8>> = scores
                        .iter()
                        .map(|s| match s {
                            Value::Integer(n @ 1..=5) => Some(*n as u8),
                            _ => None,
                        })
                        .collect();
                    if scores.iter().any(Option::is_none) {
                        self.push(&entry, "reference", "every score must be an integer 1..=5");
                        continue;
                    }
                    scores.into_iter().flatten().collect()
                }
                _ => {
                    let criteria = prompt.rubric.len();
                    self.push(
                        &entry,
                        "reference",
                        format!("expected {criteria} scores 1..=5, one per rubric criterion"),
                    );
                    continue;
                }
            };
            exemplars.push(Exemplar { id, prompt_id, title, body, reference });
        }
        exemplars
    }

    /// `[[role]]` entries: one general text per role, and week-specific ones that no two entries
    /// of the role share.
    fn roles(&mut self, value: Option<&Value>, format: i64) -> Vec<RoleExpectation> {
        let Some(value) = value else { return Vec::new() };
        if format < 2 {
            self.push("file", "role", "`[[role]]` needs `format = 2`");
            return Vec::new();
        }
        let Value::Array(items) = value else {
            self.push("file", "role", "must be a list of tables `[[role]]`");
            return Vec::new();
        };
        let mut expectations: Vec<RoleExpectation> = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let entry = format!("role #{}", index + 1);
            let Value::Table(table) = item else {
                self.push(&entry, "", "must be a table `[[role]]`");
                continue;
            };
            self.unknown_keys(&entry, table, &["role", "weeks", "expectation"]);
            let role = self.text(table, &entry, "role", 40).and_then(|name| {
                let role = WeeklyRole::from_slug(&name);
                if role.is_none() {
                    let known: Vec<&str> = WeeklyRole::ALL.iter().map(|r| r.slug()).collect();
                    self.push(&entry, "role", format!("{name:?} is not a role; expected one of: {}", known.join(", ")));
                }
                role
            });
            let text = self.text(table, &entry, "expectation", 400);
            let weeks = self.week_list(table, &entry);
            let (Some(role), Some(text), Some(weeks)) = (role, text, weeks) else { continue };
            let clash = expectations.iter().any(|e| {
                e.role == role && (e.weeks.is_empty() && weeks.is_empty() || e.weeks.iter().any(|w| weeks.contains(w)))
            });
            if clash {
                self.push(&entry, "role", format!("{} already has an expectation for these weeks", role.slug()));
                continue;
            }
            expectations.push(RoleExpectation { role, weeks, text });
        }
        expectations
    }

    fn week_list(&mut self, table: &Table, entry: &str) -> Option<Vec<u32>> {
        let items = match table.get("weeks") {
            None => return Some(Vec::new()),
            Some(Value::Array(items)) if !items.is_empty() => items,
            Some(_) => {
                self.push(entry, "weeks", "expected a non-empty list of week numbers");
                return None;
            }
        };
        let mut weeks = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            match item {
                Value::Integer(week @ 0..=52) => weeks.push(*week as u32),
                _ => {
                    self.push(entry, &format!("weeks[{index}]"), format!("expected a week 0..=52, got {item}"));
                    return None;
                }
            }
        }
        Some(weeks)
    }

    fn capstone(&mut self, value: &Value) -> Option<Capstone> {
        let Value::Table(table) = value else {
            self.push("capstone", "", "must be a table `[capstone]`");
            return None;
        };
        self.unknown_keys("capstone", table, &["title", "body", "rubric"]);
        let title = self.text(table, "capstone", "title", 120);
        let body = self.text(table, "capstone", "body", 20_000);
        let rubric = self.string_list(table, "capstone", "rubric", 1..=8, false);
        Some(Capstone { title: title?, body: body?, rubric: rubric? })
    }

    fn prompts(&mut self, value: Option<&Value>) -> Vec<Prompt> {
        let Some(Value::Array(items)) = value else {
            self.push("file", "prompt", "a pack needs at least one `[[prompt]]` entry");
            return Vec::new();
        };
        let mut prompts = Vec::with_capacity(items.len());
        let mut ids = BTreeSet::new();
        for (index, item) in items.iter().enumerate() {
            let numbered = format!("prompt #{}", index + 1);
            let Value::Table(table) = item else {
                self.push(&numbered, "", "must be a table `[[prompt]]`");
                continue;
            };
            let id = self.slug(table, &numbered, "id");
            let entry = id.as_ref().map_or(numbered, |id| format!("prompt {id:?}"));
            if let Some(id) = &id
                && !ids.insert(id.clone())
            {
                self.push(&entry, "id", "used by an earlier prompt; ids must be unique in a pack");
            }
            self.unknown_keys(&entry, table, &["id", "week", "day", "title", "minutes", "tags", "rubric", "body"]);
            let week = self.integer(table, &entry, "week", 0..=52);
            let day = self.integer(table, &entry, "day", 1..=7);
            let title = self.text(table, &entry, "title", 120);
            let minutes = self.integer(table, &entry, "minutes", 1..=60);
            let tags = self.string_list(table, &entry, "tags", 0..=8, true);
            let rubric = self.string_list(table, &entry, "rubric", 1..=8, false);
            let body = self.text(table, &entry, "body", 20_000);
            if let (Some(id), Some(week), Some(day), Some(title), Some(minutes), Some(tags), Some(rubric), Some(body)) =
                (id, week, day, title, minutes, tags, rubric, body)
            {
                prompts.push(Prompt { id, week, day, title, minutes, tags, rubric, body });
            }
        }
        prompts
    }

    fn unknown_keys(&mut self, entry: &str, table: &Table, known: &[&str]) {
        for key in table.keys().filter(|key| !known.contains(&key.as_str())) {
            self.push(entry, key, format!("unknown field; expected one of: {}", known.join(", ")));
        }
    }

    fn table<'t>(&mut self, table: &'t Table, entry: &str, field: &str) -> Option<&'t Table> {
        match table.get(field) {
            Some(Value::Table(inner)) => Some(inner),
            Some(_) => {
                self.push(entry, field, "must be a table");
                None
            }
            None => {
                self.push(entry, field, "missing");
                None
            }
        }
    }

    fn text(&mut self, table: &Table, entry: &str, field: &str, max_chars: usize) -> Option<String> {
        match table.get(field) {
            Some(Value::String(text)) if text.trim().is_empty() => {
                self.push(entry, field, "is empty");
                None
            }
            Some(Value::String(text)) if text.chars().count() > max_chars => {
                self.push(entry, field, format!("is longer than {max_chars} characters"));
                None
            }
            Some(Value::String(text)) => Some(text.trim().to_owned()),
            Some(other) => {
                self.push(entry, field, format!("expected a string, got {}", other.type_str()));
                None
            }
            None => {
                self.push(entry, field, "missing");
                None
            }
        }
    }

    fn optional_text(&mut self, table: &Table, entry: &str, field: &str, max_chars: usize) -> Option<String> {
        table.get(field)?;
        self.text(table, entry, field, max_chars)
    }

    fn slug(&mut self, table: &Table, entry: &str, field: &str) -> Option<String> {
        let text = self.text(table, entry, field, 80)?;
        if is_slug(&text) {
            Some(text)
        } else {
            self.push(entry, field, format!("{text:?} must use only a-z, 0-9 and '-'"));
            None
        }
    }

    fn integer(
        &mut self,
        table: &Table,
        entry: &str,
        field: &str,
        range: std::ops::RangeInclusive<u32>,
    ) -> Option<u32> {
        match table.get(field) {
            Some(Value::Integer(n)) if (i64::from(*range.start())..=i64::from(*range.end())).contains(n) => {
                u32::try_from(*n).ok()
            }
            Some(Value::Integer(n)) => {
                self.push(entry, field, format!("{n} is outside {}..={}", range.start(), range.end()));
                None
            }
            Some(other) => {
                self.push(entry, field, format!("expected an integer, got {}", other.type_str()));
                None
            }
            None => {
                self.push(entry, field, "missing");
                None
            }
        }
    }

    fn string_list(
        &mut self,
        table: &Table,
        entry: &str,
        field: &str,
        count: std::ops::RangeInclusive<usize>,
        slugs: bool,
    ) -> Option<Vec<String>> {
        let items = match table.get(field) {
            Some(Value::Array(items)) => items,
            None if *count.start() == 0 => return Some(Vec::new()),
            None => {
                self.push(entry, field, "missing");
                return None;
            }
            Some(other) => {
                self.push(entry, field, format!("expected a list of strings, got {}", other.type_str()));
                return None;
            }
        };
        if !count.contains(&items.len()) {
            self.push(entry, field, format!("has {} items; expected {}..={}", items.len(), count.start(), count.end()));
            return None;
        }
        let mut out = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            match item {
                Value::String(text) if !text.trim().is_empty() && (!slugs || is_slug(text)) => {
                    out.push(text.trim().to_owned())
                }
                _ => {
                    let expected = if slugs { "a tag of a-z, 0-9 and '-'" } else { "a non-empty string" };
                    self.push(entry, &format!("{field}[{index}]"), format!("expected {expected}, got {item}"));
                    return None;
                }
            }
        }
        Some(out)
    }
}

fn is_slug(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
format = 1
[pack]
id = "tiny"
version = 2
title = "Tiny pack"

[[prompt]]
id = "w00-d1-hello"
week = 0
day = 1
title = "Hello"
minutes = 10
rubric = ["Is specific"]
body = "Say hello."
"#;

    #[test]
    fn parses_a_valid_pack() {
        let pack = parse_pack("tiny.toml", SMALL).unwrap();
        assert_eq!((pack.id.as_str(), pack.version, pack.prompts.len()), ("tiny", 2, 1));
        assert_eq!(pack.prompt_for(0, 1).unwrap().title, "Hello");
    }

    fn issues(text: &str) -> Vec<PackIssue> {
        match parse_pack("bad.toml", text) {
            Err(DomainError::InvalidPromptPack { issues }) => issues,
            other => panic!("expected pack issues, got {other:?}"),
        }
    }

    #[test]
    fn reports_every_problem_with_file_entry_and_field() {
        let bad = SMALL.replace("minutes = 10", "minutes = \"ten\"").replace("day = 1", "day = 9\ncolour = \"red\"");
        let found = issues(&bad);
        let described: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert!(
            described.contains(
                &"bad.toml: prompt \"w00-d1-hello\": field `minutes`: expected an integer, got string".to_owned()
            ),
            "{described:?}"
        );
        assert!(described.iter().any(|d| d.contains("field `day`: 9 is outside 1..=7")), "{described:?}");
        assert!(described.iter().any(|d| d.contains("field `colour`: unknown field")), "{described:?}");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let found = issues("format = 1\n[pack]\nid = \"x\"\ntitle = \n");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].entry, "line 4");
    }

    #[test]
    fn newer_format_and_duplicate_ids_are_refused() {
        let newer = issues(&SMALL.replace("format = 1", "format = 4"));
        assert!(newer[0].problem.contains("newer than this app reads"));
        let twice = format!("{SMALL}\n{}", &SMALL[SMALL.find("[[prompt]]").unwrap()..]);
        assert!(issues(&twice).iter().any(|i| i.field == "id" && i.problem.contains("unique")));
    }

    #[test]
    fn role_expectations_need_format_2_and_are_checked_entry_by_entry() {
        let roles = "\n[[role]]\nrole = \"reviewer\"\nexpectation = \"Two reviews by Friday\"\n\
                     \n[[role]]\nrole = \"reviewer\"\nweeks = [8]\nexpectation = \"Review capstone plans\"\n";
        let pack = parse_pack("p.toml", &format!("{}{roles}", SMALL.replace("format = 1", "format = 2"))).unwrap();
        assert_eq!(pack.roles.len(), 2);
        assert_eq!(pack.roles[1].weeks, vec![8]);
        let old = issues(&format!("{SMALL}{roles}"));
        assert!(old.iter().any(|i| i.field == "role" && i.problem.contains("format = 2")), "{old:?}");

        let bad = "\n[[role]]\nrole = \"captain\"\nexpectation = \"x\"\n\
                   \n[[role]]\nrole = \"reviewer\"\nweeks = [99]\nexpectation = \"x\"\n\
                   \n[[role]]\nrole = \"synthesizer\"\nexpectation = \"x\"\ncolour = 1\n\
                   \n[[role]]\nrole = \"facilitator\"\nexpectation = \"a\"\n\
                   \n[[role]]\nrole = \"facilitator\"\nexpectation = \"b\"\n";
        let found = issues(&format!("{}{bad}", SMALL.replace("format = 1", "format = 2")));
        let at = |entry: &str, field: &str| found.iter().any(|i| i.entry == entry && i.field == field);
        assert!(at("role #1", "role") && at("role #2", "weeks[0]") && at("role #3", "colour") && at("role #5", "role"));
        assert!(!found.iter().any(|i| i.entry == "role #4"), "{found:?}");
    }

    #[test]
    fn default_pack_is_valid_and_covers_the_default_program() {
        let pack = parse_pack(crate::DEFAULT_PROMPT_PACK_NAME, crate::DEFAULT_PROMPT_PACK).unwrap();
        let blueprint =
            Blueprint::default_90_days(chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(), chrono_tz::UTC);
        pack.check_covers(&blueprint).unwrap();
        assert!(pack.capstone.is_some());
        assert!(pack.prompts.iter().all(|p| (10..=15).contains(&p.minutes)), "practices are 10–15 minutes");
        assert!(pack.prompts.iter().all(|p| p.body.split_whitespace().count() >= 60), "real content, not stubs");
    }

    #[test]
    fn incomplete_pack_names_the_missing_day() {
        let pack = parse_pack("tiny.toml", SMALL).unwrap();
        let blueprint =
            Blueprint::default_90_days(chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(), chrono_tz::UTC);
        let err = pack.check_covers(&blueprint).unwrap_err();
        assert_eq!(err, DomainError::PackDoesNotCoverProgram { pack_id: "tiny".into(), week: 0, day: 2 });
    }
}
