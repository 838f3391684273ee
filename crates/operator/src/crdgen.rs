//! The CustomResourceDefinitions as YAML: what `crdgen` prints and what is checked in under `crds/`
//! and `charts/camunda-backup-operator/crds/`.

use std::{path::PathBuf, process::ExitCode};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::CustomResourceExt;

use crate::api::{BackupSchedule, CamundaCluster, ClusterBackup, ClusterRestore};

/// Every CRD with the file name it is checked in under.
pub fn all() -> Vec<(&'static str, CustomResourceDefinition)> {
    vec![
        (
            "camundaclusters.yaml",
            without_status_defaults(CamundaCluster::crd()),
        ),
        (
            "clusterbackups.yaml",
            without_status_defaults(ClusterBackup::crd()),
        ),
        (
            "backupschedules.yaml",
            without_status_defaults(BackupSchedule::crd()),
        ),
        (
            "clusterrestores.yaml",
            without_status_defaults(ClusterRestore::crd()),
        ),
    ]
}

/// Status is written only by the operator, so schema defaults there serve nobody, and a 1.20 API server
/// rejects some of them (an empty-string default inside a list item). The Rust types keep their serde
/// defaults for reading; only the published schema drops them.
fn without_status_defaults(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        let status = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
            .and_then(|s| s.properties.as_mut())
            .and_then(|p| p.get_mut("status"));
        if let Some(status) = status {
            strip_defaults(status);
        }
    }
    crd
}

fn strip_defaults(schema: &mut JSONSchemaProps) {
    schema.default = None;
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        strip_defaults(child);
    }
    match &mut schema.items {
        Some(JSONSchemaPropsOrArray::Schema(item)) => strip_defaults(item),
        Some(JSONSchemaPropsOrArray::Schemas(items)) => items.iter_mut().for_each(strip_defaults),
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(extra)) = &mut schema.additional_properties {
        strip_defaults(extra);
    }
}

/// One CRD as the YAML document that is checked in.
pub fn render(crd: &CustomResourceDefinition) -> Result<String, serde_yaml_ng::Error> {
    serde_yaml_ng::to_string(crd)
}

#[derive(Debug, clap::Args)]
pub struct CrdgenArgs {
    /// Write one file per CRD into these folders instead of printing one YAML stream.
    #[arg(long)]
    pub out_dir: Vec<PathBuf>,
}

/// Prints all CRDs as one multi-document YAML stream, or writes each into the given folders.
pub fn run(args: CrdgenArgs) -> ExitCode {
    match write(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("crdgen: {error}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum CrdgenError {
    #[error("cannot render {name}: {source}")]
    Render {
        name: String,
        source: serde_yaml_ng::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

fn write(args: &CrdgenArgs) -> Result<(), CrdgenError> {
    let mut stream = String::new();
    for (file, crd) in all() {
        let yaml = render(&crd).map_err(|source| CrdgenError::Render {
            name: crd.metadata.name.clone().unwrap_or_default(),
            source,
        })?;
        for dir in &args.out_dir {
            let path = dir.join(file);
            std::fs::write(&path, &yaml).map_err(|source| CrdgenError::Write { path, source })?;
        }
        stream.push_str("---\n");
        stream.push_str(&yaml);
    }
    if args.out_dir.is_empty() {
        print!("{stream}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The checked-in YAML must be exactly what the Rust types generate, or users install a schema
    /// the operator does not speak.
    #[test]
    fn checked_in_crds_match_the_rust_types() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for dir in ["crds", "charts/camunda-backup-operator/crds"] {
            for (file, crd) in all() {
                let path = root.join(dir).join(file);
                let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
                let generated = render(&crd).unwrap_or_else(|e| panic!("render {file}: {e}"));
                assert!(
                    checked_in == generated,
                    "{} differs from the Rust types; regenerate with: \
                     cargo run -p camunda-backup-operator -- crdgen --out-dir crds --out-dir charts/camunda-backup-operator/crds",
                    path.display()
                );
            }
        }
    }

    #[test]
    fn shipped_crds_carry_the_immutability_rules_for_newer_servers() {
        let yaml = all()
            .iter()
            .map(|(_, crd)| render(crd).unwrap_or_default())
            .collect::<String>();
        assert!(yaml.contains("ClusterBackup spec is immutable"));
        assert!(yaml.contains("clusterRef is immutable"));
        assert!(yaml.contains("ClusterRestore spec is immutable"));
        assert_eq!(yaml.matches("rule: self == oldSelf").count(), 3);
    }
}
