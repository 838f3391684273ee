//! Names the operator derives for what it creates: deterministic, so that a retry after a crash finds
//! the object instead of duplicating it, and within Kubernetes' length limits.

use super::Component;

/// `camunda_zeebe_records_backup_<id>`: the documented name of a backup's snapshot of the exported
/// Zeebe records (`camunda-backup-api.md` §6), which the backup takes and a restore looks for.
pub fn records_snapshot(backup_id: impl std::fmt::Display) -> String {
    format!("camunda_zeebe_records_backup_{backup_id}")
}

/// Label values and Job names are limited to 63 characters.
pub const MAX_LABEL_VALUE: usize = 63;

/// `<backup>-<step>`, the name of a step's Job; a long backup name is cut and made unique again with
/// a stable hash.
pub fn job_name(backup: &str, component: Component) -> String {
    suffixed(backup, component.as_str())
}

/// `<restore>-broker-<ordinal>`, the Job that restores one broker's data volume; a long restore name
/// is cut and made unique again with a stable hash.
pub fn broker_restore_job(restore: &str, ordinal: i32) -> String {
    suffixed(restore, &format!("broker-{ordinal}"))
}

/// `<name>-<suffix>` within [`MAX_LABEL_VALUE`]: a long name is cut and made unique again with a
/// stable hash of the whole name.
fn suffixed(name: &str, suffix: &str) -> String {
    let plain = format!("{name}-{suffix}");
    if plain.len() <= MAX_LABEL_VALUE {
        return plain;
    }
    let hash = format!("{:08x}", fnv1a_32(name.as_bytes()));
    let keep = MAX_LABEL_VALUE - suffix.len() - hash.len() - 2;
    format!("{}-{hash}-{suffix}", cut(name, keep))
}

/// A name as a label value: itself, or for a name longer than a label value may be, a cut name with a
/// stable hash.
pub fn label_value(name: &str) -> String {
    if name.len() <= MAX_LABEL_VALUE {
        return name.to_string();
    }
    let hash = format!("{:016x}", fnv1a_64(name.as_bytes()));
    format!("{}-{hash}", cut(name, MAX_LABEL_VALUE - hash.len() - 1))
}

/// The first `keep` characters of `name`, without a trailing separator.
pub fn cut(name: &str, keep: usize) -> String {
    let prefix: String = name.chars().take(keep).collect();
    prefix.trim_end_matches(['-', '.']).to_string()
}

/// FNV-1a, stable across Rust releases and operator upgrades (unlike `DefaultHasher`), so derived names
/// stay the same; computed in 64 bits and masked each round, which gives both widths exactly.
fn fnv1a(bytes: &[u8], offset: u64, prime: u64, mask: u64) -> u64 {
    bytes.iter().fold(offset, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(prime) & mask
    })
}

pub fn fnv1a_32(bytes: &[u8]) -> u64 {
    fnv1a(bytes, 0x811c_9dc5, 0x0100_0193, 0xffff_ffff)
}

fn fnv1a_64(bytes: &[u8]) -> u64 {
    fnv1a(bytes, 0xcbf2_9ce4_8422_2325, 0x0000_0100_0000_01b3, u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_the_published_fnv1a_values() {
        // Test vectors of the FNV reference (draft-eastlake-fnv): "a" and "foobar".
        assert_eq!(fnv1a_32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a_32(b"foobar"), 0xbf9c_f968);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn long_names_are_cut_hashed_and_stay_within_the_limit() {
        assert_eq!(job_name("b1", Component::Zeebe), "b1-zeebe");
        let long = "a".repeat(80);
        let job = job_name(&long, Component::Records);
        assert_eq!(job.len(), MAX_LABEL_VALUE);
        assert!(job.ends_with("-records"));
        assert_ne!(job, job_name(&format!("{long}b"), Component::Records));
        assert_eq!(broker_restore_job("r1", 2), "r1-broker-2");
        let broker = broker_restore_job(&long, 12);
        assert_eq!(broker.len(), MAX_LABEL_VALUE);
        assert!(broker.ends_with("-broker-12"));
        assert_eq!(label_value("nightly"), "nightly");
        let label = label_value(&long);
        assert_eq!(label.len(), MAX_LABEL_VALUE);
        assert_ne!(label, label_value(&format!("{long}b")));
    }
}
