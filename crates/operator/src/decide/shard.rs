//! Sharded fleets: a replica set started with `--cluster-selector` acts only on the `CamundaCluster`s
//! whose labels match it, and on their backups and schedules. Which shard owns an object is decided
//! here, from the cluster's labels alone, so that every replica set reaches the same answer without a
//! request and a relabelled cluster moves to its new shard on the next event.

use std::collections::{BTreeMap, BTreeSet};

use kube::core::{Expression, Selector, SelectorExt};

/// The clusters this replica set acts on.
#[derive(Clone, Debug, Default)]
pub struct Shard {
    /// `None`: every cluster (no sharding).
    selector: Option<Selector>,
    /// The selector as written, for logs and the Lease name.
    text: String,
}

/// Who acts on an object of a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// The cluster matches this shard.
    Mine,
    /// The cluster exists and belongs to another shard: leave its objects alone.
    OtherShard,
    /// The cluster does not exist (or is not seen yet): no shard owns it, so every shard may report it
    /// and carry on what its objects recorded; everything done for such an object is idempotent.
    NoCluster,
}

/// A `--cluster-selector` that is not a Kubernetes label selector.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a label selector ({problem}): {text:?}")]
pub struct SelectorError {
    text: String,
    problem: &'static str,
}

impl Shard {
    /// Every cluster.
    pub fn all() -> Self {
        Self::default()
    }

    /// Parses a label selector in `kubectl`'s syntax: `key=value`, `key==value`, `key!=value`,
    /// `key in (a,b)`, `key notin (a,b)`, `key` and `!key`, joined by commas. An empty text selects all.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Self::all());
        }
        let fail = |problem| SelectorError {
            text: text.to_string(),
            problem,
        };
        let expressions = split_requirements(text)
            .ok_or_else(|| fail("unbalanced parentheses"))?
            .into_iter()
            .map(|requirement| {
                parse_requirement(requirement).ok_or_else(|| fail("a requirement is malformed"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            selector: Some(expressions.into_iter().collect()),
            text: text.to_string(),
        })
    }

    pub fn is_sharded(&self) -> bool {
        self.selector.is_some()
    }

    /// The selector as given (empty when not sharded).
    pub fn describe(&self) -> &str {
        &self.text
    }

    /// Who acts on the objects of a cluster with these labels (`None`: the cluster is not there).
    pub fn ownership(&self, cluster_labels: Option<&BTreeMap<String, String>>) -> Ownership {
        match (cluster_labels, &self.selector) {
            (None, _) => Ownership::NoCluster,
            (Some(_), None) => Ownership::Mine,
            (Some(labels), Some(selector)) if selector.matches(labels) => Ownership::Mine,
            (Some(_), Some(_)) => Ownership::OtherShard,
        }
    }

    /// The Lease this shard elects its leader with: `base` when not sharded, else `base` with a hash of
    /// the selector, so that shards started with only a different selector never share a leader.
    pub fn lease_name(&self, base: &str) -> String {
        if self.is_sharded() {
            format!("{base}-{:08x}", crate::api::names::fnv1a_32(self.text.as_bytes()))
        } else {
            base.to_string()
        }
    }
}

/// Splits at the commas outside parentheses; `None` when they do not balance.
fn split_requirements(text: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (at, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(text[start..at].trim());
                start = at + 1;
            }
            _ => {}
        }
        if depth < 0 {
            return None;
        }
    }
    (depth == 0).then(|| {
        parts.push(text[start..].trim());
        parts
    })
}

fn parse_requirement(requirement: &str) -> Option<Expression> {
    let word = |s: &str| {
        let s = s.trim();
        (!s.is_empty() && !s.contains(|c: char| c.is_whitespace() || "=!(),".contains(c)))
            .then(|| s.to_string())
    };
    if let Some(key) = requirement.strip_prefix('!') {
        return Some(Expression::DoesNotExist(word(key)?));
    }
    for (operator, negated) in [(" notin ", true), (" in ", false)] {
        if let Some((key, values)) = requirement.split_once(operator) {
            let inner = values.trim().strip_prefix('(')?.strip_suffix(')')?;
            let set = inner.split(',').map(word).collect::<Option<BTreeSet<String>>>()?;
            let key = word(key)?;
            return Some(if negated {
                Expression::NotIn(key, set)
            } else {
                Expression::In(key, set)
            });
        }
    }
    if let Some((key, value)) = requirement.split_once("!=") {
        return Some(Expression::NotEqual(word(key)?, word(value)?));
    }
    if let Some((key, value)) = requirement.split_once('=') {
        let value = value.strip_prefix('=').unwrap_or(value);
        return Some(Expression::Equal(word(key)?, word(value)?));
    }
    Some(Expression::Exists(word(requirement)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors_in_kubectl_syntax_decide_ownership() {
        let a = labels(&[("shard", "a"), ("tier", "prod")]);
        let b = labels(&[("shard", "b")]);
        let none = labels(&[]);
        // (selector, labels, owned)
        let cases: &[(&str, &BTreeMap<String, String>, bool)] = &[
            ("shard=a", &a, true),
            ("shard==a", &a, true),
            ("shard=a", &b, false),
            ("shard!=a", &b, true),
            ("shard!=a", &none, true),
            ("shard in (a, c)", &a, true),
            ("shard in (b,c)", &a, false),
            ("shard notin (a)", &b, true),
            ("shard notin (a)", &a, false),
            ("shard", &none, false),
            ("shard", &b, true),
            ("!shard", &none, true),
            ("!shard", &a, false),
            ("shard=a,tier=prod", &a, true),
            ("shard in (a,b), tier", &b, false),
            ("", &none, true),
        ];
        for (text, labels, owned) in cases {
            let shard = Shard::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let expected = if *owned {
                Ownership::Mine
            } else {
                Ownership::OtherShard
            };
            assert_eq!(shard.ownership(Some(labels)), expected, "{text} on {labels:?}");
            assert_eq!(shard.ownership(None), Ownership::NoCluster, "{text}");
        }
    }

    #[test]
    fn malformed_selectors_are_refused() {
        for text in [
            "shard in (a",
            "shard in a,b)",
            "=a",
            "shard=",
            "shard in ()",
            "a b",
            "!",
        ] {
            assert!(Shard::parse(text).is_err(), "{text} should be refused");
        }
    }

    #[test]
    fn each_shard_elects_on_its_own_lease() {
        let base = "camunda-backup-operator";
        assert_eq!(Shard::all().lease_name(base), base);
        let a = Shard::parse("shard=a")
            .map(|s| s.lease_name(base))
            .unwrap_or_default();
        let b = Shard::parse("shard=b")
            .map(|s| s.lease_name(base))
            .unwrap_or_default();
        assert!(
            a.starts_with("camunda-backup-operator-") && a.len() == base.len() + 9,
            "{a}"
        );
        assert_ne!(a, b);
    }
}
