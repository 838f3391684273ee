//! `empty-data`: what the init container of a broker restore Job runs. Zeebe's restore program refuses
//! a data directory that holds anything but the entries it ignores, so the volume is emptied first,
//! keeping exactly those (`lost+found` of a fresh file system, `.snapshot` of NetApp-style volumes),
//! and then checked. A failure writes its reason to the termination message.

use std::{
    fs, io,
    path::{Path, PathBuf},
    process::ExitCode,
};

#[derive(Debug, clap::Args)]
pub struct EmptyDataArgs {
    /// The broker's data directory (the mounted volume).
    #[arg(long)]
    pub dir: PathBuf,
    /// An entry to keep (repeatable): the restore program's `ignoreFilesInTarget`.
    #[arg(long = "keep", value_name = "NAME")]
    pub keep: Vec<String>,
    /// Where the reason of a failure is written for Kubernetes.
    #[arg(long, default_value = "/dev/termination-log")]
    pub termination_log: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum EmptyDataError {
    #[error("cannot read the data directory {}: {source}", dir.display())]
    Read { dir: PathBuf, source: io::Error },
    #[error("cannot delete {}: {source}", path.display())]
    Delete { path: PathBuf, source: io::Error },
    #[error("the data directory {} still holds {left} after emptying it", dir.display())]
    NotEmpty { dir: PathBuf, left: String },
}

/// Deletes every entry of `dir` except those named in `keep`; returns how many were deleted.
pub fn empty_dir(dir: &Path, keep: &[String]) -> Result<usize, EmptyDataError> {
    let entries = |dir: &Path| -> Result<Vec<PathBuf>, EmptyDataError> {
        let read = fs::read_dir(dir).map_err(|source| EmptyDataError::Read {
            dir: dir.to_path_buf(),
            source,
        })?;
        let mut paths = Vec::new();
        for entry in read {
            let entry = entry.map_err(|source| EmptyDataError::Read {
                dir: dir.to_path_buf(),
                source,
            })?;
            if !keep.iter().any(|k| entry.file_name() == k.as_str()) {
                paths.push(entry.path());
            }
        }
        paths.sort();
        Ok(paths)
    };
    let doomed = entries(dir)?;
    for path in &doomed {
        // A symlink is removed itself, never followed.
        let removed = match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
            Ok(_) => fs::remove_file(path),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error),
        };
        removed.map_err(|source| EmptyDataError::Delete {
            path: path.clone(),
            source,
        })?;
    }
    let left = entries(dir)?;
    if !left.is_empty() {
        let names: Vec<String> = left.iter().map(|p| p.display().to_string()).collect();
        return Err(EmptyDataError::NotEmpty {
            dir: dir.to_path_buf(),
            left: names.join(", "),
        });
    }
    Ok(doomed.len())
}

pub fn run(args: &EmptyDataArgs) -> ExitCode {
    match empty_dir(&args.dir, &args.keep) {
        Ok(deleted) => {
            tracing::info!(dir = %args.dir.display(), deleted, kept = ?args.keep, "emptied the data directory");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!("{error}");
            if let Err(write) = fs::write(&args.termination_log, error.to_string()) {
                tracing::warn!(%write, "cannot write the termination message");
            }
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn everything_but_the_kept_entries_goes_and_links_are_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("precious"), "keep me").unwrap();
        let data = tempfile::tempdir().unwrap();
        let dir = data.path();
        fs::create_dir_all(dir.join("raft-partition/partitions/1")).unwrap();
        fs::write(dir.join("raft-partition/partitions/1/snapshot"), "old").unwrap();
        fs::write(dir.join(".topology.meta"), "old").unwrap();
        fs::create_dir(dir.join("lost+found")).unwrap();
        fs::write(dir.join("lost+found/file"), "fsck").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.join("link")).unwrap();

        let deleted = empty_dir(dir, &["lost+found".into(), ".snapshot".into()]).unwrap();
        assert_eq!(deleted, 3);
        let left: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["lost+found"]);
        assert!(
            dir.join("lost+found/file").exists(),
            "kept entries are kept whole"
        );
        assert!(
            outside.path().join("precious").exists(),
            "a link's target is not touched"
        );
        assert_eq!(empty_dir(dir, &["lost+found".into()]).unwrap(), 0, "idempotent");
    }

    #[test]
    fn a_missing_directory_is_an_error_with_its_path() {
        let error = empty_dir(Path::new("/nonexistent/c8b-data"), &[]).unwrap_err();
        assert!(error.to_string().contains("/nonexistent/c8b-data"), "{error}");
    }
}
