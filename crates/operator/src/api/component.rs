//! The components of a Camunda cluster that take a backup of their own, as the API and every layer
//! name them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The parts of a Camunda cluster that take a backup of their own.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Component {
    /// Zeebe's runtime backup (`/actuator/backups` up to 8.7, `/actuator/backupRuntime` from 8.8).
    Zeebe,
    /// Operate's own backup, 8.2 to 8.7.
    Operate,
    /// Tasklist's own backup, 8.2 to 8.7.
    Tasklist,
    /// The combined web-apps backup of the Orchestration Cluster (`/actuator/backupHistory`, 8.8+).
    #[value(name = "webapps")]
    #[serde(rename = "webapps")]
    WebApps,
    /// Optimize's backup.
    Optimize,
    /// The Elasticsearch/OpenSearch snapshot of the exported Zeebe records (`<prefix>*` indices).
    Records,
}

impl Component {
    pub const ALL: [Component; 6] = [
        Component::Zeebe,
        Component::Operate,
        Component::Tasklist,
        Component::WebApps,
        Component::Optimize,
        Component::Records,
    ];

    /// The component a step is named after (the inverse of [`Component::as_str`]).
    pub fn from_name(name: &str) -> Option<Component> {
        Component::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The kebab-case name used in labels, Job names and on the command line.
    pub fn as_str(&self) -> &'static str {
        match self {
            Component::Zeebe => "zeebe",
            Component::Operate => "operate",
            Component::Tasklist => "tasklist",
            Component::WebApps => "webapps",
            Component::Optimize => "optimize",
            Component::Records => "records",
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
