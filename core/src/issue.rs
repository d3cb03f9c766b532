//! Problems found in a plan document, each with the path of the offending node.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One problem, located by its path in the document (`waves[1].depends_on[0]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    pub path: String,
    pub message: String,
}

impl Issue {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The path shown for problems that concern the whole document.
pub const DOCUMENT_PATH: &str = "(document)";

/// A path into the document, built as the reader descends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocPath(String);

impl DocPath {
    pub fn root() -> Self {
        Self(String::new())
    }

    /// `waves` → `waves.name`; keys that are not plain identifiers are quoted
    /// (`selector["dr:plan"]`) so the path can be read back unambiguously.
    pub fn key(&self, key: &str) -> Self {
        let plain = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        match (self.0.is_empty(), plain) {
            (true, true) => Self(key.to_owned()),
            (false, true) => Self(format!("{}.{key}", self.0)),
            (_, false) => Self(format!("{}[{}]", self.0, quote(key))),
        }
    }

    pub fn index(&self, index: usize) -> Self {
        Self(format!("{}[{index}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        if self.0.is_empty() {
            DOCUMENT_PATH
        } else {
            &self.0
        }
    }
}

impl fmt::Display for DocPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn quote(key: &str) -> String {
    serde_json::to_string(key).unwrap_or_else(|_| format!("\"{key}\""))
}

/// Collects every problem instead of stopping at the first.
#[derive(Debug, Default)]
pub struct Issues(Vec<Issue>);

impl Issues {
    pub fn push(&mut self, path: &DocPath, message: impl Into<String>) {
        self.0.push(Issue::new(path.as_str(), message));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<Issue> {
        self.0
    }
}

/// The closest candidate to `word`, if one is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word_lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word_lower, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_like_the_document() {
        let p = DocPath::root()
            .key("waves")
            .index(1)
            .key("depends_on")
            .index(0);
        assert_eq!(p.as_str(), "waves[1].depends_on[0]");
        assert_eq!(
            DocPath::root().key("selector").key("dr:plan").as_str(),
            "selector[\"dr:plan\"]"
        );
        assert_eq!(DocPath::root().as_str(), DOCUMENT_PATH);
    }

    #[test]
    fn suggestions_catch_typos_but_not_unrelated_words() {
        let fields = ["depends_on", "selector", "health", "hooks"];
        assert_eq!(did_you_mean("depend_on", fields), Some("depends_on"));
        assert_eq!(did_you_mean("selectr", fields), Some("selector"));
        assert_eq!(did_you_mean("Health", fields), Some("health"));
        assert_eq!(did_you_mean("colour", fields), None);
    }
}
