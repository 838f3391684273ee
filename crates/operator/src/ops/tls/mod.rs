//! TLS for the operator's HTTPS servers without cert-manager, as CloudNativePG does it: the operator
//! keeps its own CA and a serving certificate for the given hosts in one Secret of its namespace,
//! renews them well before they expire (see [`renewal`]), and every replica serves what the Secret
//! holds, reloaded without a restart. With an external issuer (cert-manager), the Secret is only read.
//!
//! Reusable by any HTTPS server of the operator: [`start`] checks the settings, binds the port and
//! keeps the certificate current; under it, [`keep_current`] keeps a [`ServingCert`] current and
//! reports the CA bundle clients must trust, and [`serve`] serves an axum router with it. A server
//! whose flags are its own (the `api` subcommand) takes them from [`TlsArgs`].
//!
//! The Secret holds `tls.crt` and `tls.key` (the serving certificate and its key, the names
//! cert-manager also uses), `ca.crt` (the CA bundle: the current CA first, then a previous one that
//! has not expired) and `ca.key` (the current CA's key; absent with an external issuer).

pub mod renewal;

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, RwLock},
    time::Duration,
};

use chrono::{DateTime, Utc};
use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::{Api, Client, api::PostParams};
use rustls::{
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use tracing::{debug, info, warn};

use renewal::{Renewal, ServerView, Validity};

const TLS_CRT: &str = "tls.crt";
const TLS_KEY: &str = "tls.key";
const CA_CRT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";

/// Where the certificates come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CertSource {
    /// The operator issues its own CA and serving certificate and renews them.
    Operator,
    /// Another issuer (cert-manager) writes the Secret; the operator only reads it.
    External,
}

/// One HTTPS server's certificates.
#[derive(Clone, Debug)]
pub struct CertSettings {
    pub namespace: String,
    pub secret: String,
    /// DNS names and IP addresses the serving certificate is for.
    pub hosts: Vec<String>,
    pub ca_lifetime: Duration,
    pub cert_lifetime: Duration,
    pub source: CertSource,
}

impl CertSettings {
    /// Refuses settings that would renew at every check: a CA must outlive a serving certificate
    /// issued at its renewal point, which takes at least three times the serving certificate's life.
    pub fn check(&self) -> Result<(), String> {
        if self.hosts.is_empty() {
            return Err("the serving certificate needs at least one host name".into());
        }
        if self.cert_lifetime < Duration::from_secs(10) {
            return Err("the serving certificate's lifetime must be at least 10s".into());
        }
        if self.ca_lifetime < self.cert_lifetime.saturating_mul(3) {
            return Err(format!(
                "the CA's lifetime ({:?}) must be at least three times the serving certificate's ({:?})",
                self.ca_lifetime, self.cert_lifetime
            ));
        }
        Ok(())
    }
}

/// The certificate flags of an HTTPS server that has a subcommand of its own (`api`). The webhook's
/// flags, beside the controllers' in `run`, are the same settings with a `--webhook-` prefix.
#[derive(Clone, Debug, clap::Args)]
pub struct TlsArgs {
    /// Secret that holds the certificates, in `--tls-secret-namespace`: `tls.crt`, `tls.key` and
    /// `ca.crt` (the CA clients must trust), and `ca.key` when the operator issues them.
    #[arg(long = "tls-secret", env = "C8B_TLS_SECRET")]
    pub secret: String,
    /// Namespace of that Secret.
    #[arg(
        long = "tls-secret-namespace",
        env = "POD_NAMESPACE",
        default_value = "default"
    )]
    pub secret_namespace: String,
    /// DNS names and IP addresses the serving certificate is for, comma-separated: the Service's
    /// names (`<service>.<namespace>.svc` and its shorter forms).
    #[arg(long = "tls-hosts", env = "C8B_TLS_HOSTS", value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// Who issues the certificates: `operator` (its own CA and serving certificate, written into the
    /// Secret and renewed) or `external` (cert-manager or the user writes the Secret; only read).
    #[arg(
        long = "tls-cert-source",
        env = "C8B_TLS_CERT_SOURCE",
        value_enum,
        default_value = "operator"
    )]
    pub source: CertSource,
    /// Lifetime of the operator's CA; renewed two thirds into it.
    #[arg(long = "tls-ca-lifetime", default_value = "365d", value_parser = humantime::parse_duration)]
    pub ca_lifetime: Duration,
    /// Lifetime of the serving certificate; renewed two thirds into it.
    #[arg(long = "tls-cert-lifetime", default_value = "90d", value_parser = humantime::parse_duration)]
    pub cert_lifetime: Duration,
}

impl TlsArgs {
    pub fn settings(&self) -> CertSettings {
        CertSettings {
            namespace: self.secret_namespace.clone(),
            secret: self.secret.clone(),
            hosts: self.hosts.clone(),
            ca_lifetime: self.ca_lifetime,
            cert_lifetime: self.cert_lifetime,
            source: self.source,
        }
    }
}

/// What an HTTPS server serves and what its clients must trust, as PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServingPems {
    /// The CA bundle clients trust (a webhook configuration's `caBundle`).
    pub ca_bundle: String,
    pub cert: String,
    pub key: String,
}

/// Why keeping the certificates failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading Secret {secret}: {source}")]
    ReadSecret {
        secret: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing Secret {secret}: {source}")]
    WriteSecret {
        secret: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "Secret {secret} does not exist (the chart creates it; with an external issuer, its Certificate does)"
    )]
    MissingSecret { secret: String },
    #[error("Secret {secret} holds no usable {key}: {problem}")]
    UnusableSecret {
        secret: String,
        key: &'static str,
        problem: String,
    },
    #[error("issuing a certificate: {0}")]
    Issue(#[source] rcgen::Error),
    #[error("loading the serving certificate: {0}")]
    LoadCert(String),
    #[error("another replica kept renewing the certificates at the same time")]
    Contended,
}

impl TlsError {
    /// Bounded label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ReadSecret { .. } => "ReadSecret",
            Self::WriteSecret { .. } => "WriteSecret",
            Self::MissingSecret { .. } => "MissingSecret",
            Self::UnusableSecret { .. } => "UnusableSecret",
            Self::Issue(_) => "Issue",
            Self::LoadCert(_) => "LoadCert",
            Self::Contended => "Contended",
        }
    }
}

/// Reads the Secret and, with the operator as issuer, issues what is due and writes it back, conditional
/// on the Secret's resourceVersion: replicas that renew at once agree on one writer, and the others
/// use what it wrote. Returns the PEMs to serve and when to look again.
pub async fn ensure(
    client: &Client,
    settings: &CertSettings,
    now: DateTime<Utc>,
) -> Result<(ServingPems, DateTime<Utc>), TlsError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &settings.namespace);
    let poll = renewal::poll_period(settings.cert_lifetime);
    for _ in 0..5 {
        let secret = api
            .get_opt(&settings.secret)
            .await
            .map_err(|source| TlsError::ReadSecret {
                secret: settings.secret.clone(),
                source,
            })?;
        if settings.source == CertSource::External {
            let secret = secret.ok_or_else(|| TlsError::MissingSecret {
                secret: settings.secret.clone(),
            })?;
            return external(&settings.secret, &data_of(&secret), now, poll);
        }
        let data = secret.as_ref().map(data_of).unwrap_or_default();
        let held = Held::read(&data, &settings.hosts, now);
        let what = renewal::renewal(
            held.ca.as_ref().map(|ca| ca.validity),
            held.server.as_ref(),
            settings.cert_lifetime,
            now,
        );
        if let (Renewal::Keep, Some(pems), Some(ca), Some(server)) =
            (what, held.pems(&data), &held.ca, &held.server)
        {
            return Ok((pems, renewal::next_check(ca.validity, server.validity, poll, now)));
        }
        let (pems, ca_key) = issue(what, &held, &data, settings, now)?;
        info!(secret = %settings.secret, renewed = ?what, "issuing certificates");
        match write(&api, &settings.secret, secret, &pems, &ca_key).await {
            Ok(()) => {
                let next = now + chrono::Duration::from_std(poll).unwrap_or(chrono::Duration::hours(1));
                return Ok((pems, next));
            }
            // Another replica wrote first: read what it wrote and use that.
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(source) => {
                return Err(TlsError::WriteSecret {
                    secret: settings.secret.clone(),
                    source,
                });
            }
        }
    }
    Err(TlsError::Contended)
}

fn data_of(secret: &Secret) -> BTreeMap<String, String> {
    secret
        .data
        .iter()
        .flatten()
        .filter_map(|(key, value)| Some((key.clone(), String::from_utf8(value.0.clone()).ok()?)))
        .collect()
}

/// A certificate an external issuer wrote: served as it is, read again at the poll period (the issuer
/// renews it; a replica picks the new one up then).
fn external(
    secret: &str,
    data: &BTreeMap<String, String>,
    now: DateTime<Utc>,
    poll: Duration,
) -> Result<(ServingPems, DateTime<Utc>), TlsError> {
    let get = |key: &'static str| {
        data.get(key).cloned().ok_or_else(|| TlsError::UnusableSecret {
            secret: secret.to_string(),
            key,
            problem: "missing (has the issuer written the Secret yet?)".into(),
        })
    };
    let pems = ServingPems {
        ca_bundle: data.get(CA_CRT).cloned().unwrap_or_default(),
        cert: get(TLS_CRT)?,
        key: get(TLS_KEY)?,
    };
    Ok((
        pems,
        now + chrono::Duration::from_std(poll).unwrap_or(chrono::Duration::hours(1)),
    ))
}

/// A parsed certificate.
struct Parsed {
    validity: Validity,
}

/// What the Secret holds, parsed.
struct Held {
    ca: Option<Parsed>,
    /// Every CA in the bundle that is still valid, current first, as PEM.
    valid_cas: Vec<String>,
    server: Option<ServerView>,
}

impl Held {
    fn read(data: &BTreeMap<String, String>, hosts: &[String], now: DateTime<Utc>) -> Held {
        let bundle: Vec<String> = data.get(CA_CRT).map(|b| split_pem(b)).unwrap_or_default();
        // The current CA is usable only with its key.
        let ca = bundle
            .first()
            .filter(|_| {
                data.get(CA_KEY)
                    .is_some_and(|k| rcgen::KeyPair::from_pem(k).is_ok())
            })
            .and_then(|pem| validity_of(pem).ok())
            .map(|validity| Parsed { validity });
        let valid_cas = bundle
            .iter()
            .filter(|pem| validity_of(pem).is_ok_and(|v| v.is_valid_at(now)))
            .cloned()
            .collect();
        let server = match (data.get(TLS_CRT), data.get(TLS_KEY), bundle.first()) {
            (Some(cert), Some(key), Some(ca_pem))
                if PrivateKeyDer::from_pem_slice(key.as_bytes()).is_ok() =>
            {
                server_view(cert, ca_pem, hosts).ok()
            }
            _ => None,
        };
        Held {
            ca,
            valid_cas,
            server,
        }
    }

    fn pems(&self, data: &BTreeMap<String, String>) -> Option<ServingPems> {
        Some(ServingPems {
            ca_bundle: self.valid_cas.concat(),
            cert: data.get(TLS_CRT)?.clone(),
            key: data.get(TLS_KEY)?.clone(),
        })
    }
}

/// The PEM blocks of a bundle, each with its own armour.
fn split_pem(bundle: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current = String::new();
    for line in bundle.lines() {
        if line.starts_with("-----BEGIN ") {
            current.clear();
        }
        current.push_str(line);
        current.push('\n');
        if line.starts_with("-----END ") {
            blocks.push(std::mem::take(&mut current));
        }
    }
    blocks
}

fn der_of(pem: &str) -> Result<CertificateDer<'static>, String> {
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| e.to_string())
}

fn time_of(time: x509_parser::time::ASN1Time) -> DateTime<Utc> {
    DateTime::from_timestamp(time.timestamp(), 0).unwrap_or_default()
}

fn validity_of(pem: &str) -> Result<Validity, String> {
    let der = der_of(pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| e.to_string())?;
    let validity = cert.validity();
    Ok(Validity {
        not_before: time_of(validity.not_before),
        not_after: time_of(validity.not_after),
    })
}

fn server_view(cert_pem: &str, ca_pem: &str, hosts: &[String]) -> Result<ServerView, String> {
    let der = der_of(cert_pem)?;
    let ca_der = der_of(ca_pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| e.to_string())?;
    let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).map_err(|e| e.to_string())?;
    let mut names: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    x509_parser::extensions::GeneralName::DNSName(dns) => Some(dns.to_string()),
                    x509_parser::extensions::GeneralName::IPAddress(bytes) => ip_of(bytes),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut wanted: Vec<String> = hosts.iter().map(|h| normalise_host(h)).collect();
    names.sort();
    names.dedup();
    wanted.sort();
    wanted.dedup();
    let validity = cert.validity();
    Ok(ServerView {
        validity: Validity {
            not_before: time_of(validity.not_before),
            not_after: time_of(validity.not_after),
        },
        hosts_match: names == wanted,
        signed_by_ca: cert.verify_signature(Some(ca.public_key())).is_ok(),
    })
}

fn ip_of(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|b| IpAddr::from(b).to_string()),
        16 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|b| IpAddr::from(b).to_string()),
        _ => None,
    }
}

/// A host as the certificate writes it back: an IP address in its canonical form.
fn normalise_host(host: &str) -> String {
    host.parse::<IpAddr>()
        .map_or_else(|_| host.to_string(), |ip| ip.to_string())
}

fn ca_params(validity: Validity) -> Result<rcgen::CertificateParams, TlsError> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(TlsError::Issue)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "camunda-backup-operator CA");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, validity);
    Ok(params)
}

fn set_validity(params: &mut rcgen::CertificateParams, validity: Validity) {
    let at = |time: DateTime<Utc>| {
        time::OffsetDateTime::from_unix_timestamp(time.timestamp())
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    };
    params.not_before = at(validity.not_before);
    params.not_after = at(validity.not_after);
}

/// Issues what `what` says; returns the PEMs to serve and the CA key to keep.
fn issue(
    what: Renewal,
    held: &Held,
    data: &BTreeMap<String, String>,
    settings: &CertSettings,
    now: DateTime<Utc>,
) -> Result<(ServingPems, String), TlsError> {
    let (ca_cert, ca_key, bundle) = match (what, data.get(CA_CRT), data.get(CA_KEY)) {
        (Renewal::Server | Renewal::Keep, Some(bundle), Some(key)) => {
            let current = split_pem(bundle).into_iter().next().unwrap_or_default();
            (current, key.clone(), held.valid_cas.clone())
        }
        _ => {
            let key = rcgen::KeyPair::generate().map_err(TlsError::Issue)?;
            let cert = ca_params(Validity::issued(now, settings.ca_lifetime))?
                .self_signed(&key)
                .map_err(TlsError::Issue)?;
            // The previous CA stays trusted until it expires: replicas that have not reloaded yet still
            // serve a certificate it signed.
            let mut bundle = vec![cert.pem()];
            bundle.extend(held.valid_cas.iter().take(1).cloned());
            (cert.pem(), key.serialize_pem(), bundle)
        }
    };
    let signing_key = rcgen::KeyPair::from_pem(&ca_key).map_err(TlsError::Issue)?;
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_cert, signing_key).map_err(TlsError::Issue)?;
    let mut params = rcgen::CertificateParams::new(settings.hosts.clone()).map_err(TlsError::Issue)?;
    let common_name = settings.hosts.first().cloned().unwrap_or_default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    set_validity(&mut params, Validity::issued(now, settings.cert_lifetime));
    let server_key = rcgen::KeyPair::generate().map_err(TlsError::Issue)?;
    let cert = params.signed_by(&server_key, &issuer).map_err(TlsError::Issue)?;
    Ok((
        ServingPems {
            ca_bundle: bundle.concat(),
            cert: cert.pem(),
            key: server_key.serialize_pem(),
        },
        ca_key,
    ))
}

/// Writes the PEMs: creates the Secret when there is none (the operator may not be allowed to: the
/// chart creates it), else replaces it conditional on the resourceVersion that was read.
async fn write(
    api: &Api<Secret>,
    name: &str,
    read: Option<Secret>,
    pems: &ServingPems,
    ca_key: &str,
) -> Result<(), kube::Error> {
    let data: BTreeMap<String, ByteString> = [
        (TLS_CRT, &pems.cert),
        (TLS_KEY, &pems.key),
        (CA_CRT, &pems.ca_bundle),
        (CA_KEY, &ca_key.to_string()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_string(), ByteString(value.clone().into_bytes())))
    .collect();
    match read {
        Some(mut secret) => {
            secret.data = Some(data);
            secret.string_data = None;
            api.replace(name, &PostParams::default(), &secret).await.map(drop)
        }
        None => {
            let mut secret = Secret {
                data: Some(data),
                ..Secret::default()
            };
            secret.metadata.name = Some(name.to_string());
            api.create(&PostParams::default(), &secret).await.map(drop)
        }
    }
}

/// The CA bundle clients should trust, when `current` (what they trust now) lacks one of the CAs in
/// `ours`: ours, then the CAs of `current` that are not ours and have not expired. `None` when
/// `current` already holds all of ours: a replica that has not read a renewed CA yet must not take the
/// new one out again, and an old CA leaves once it expires.
pub fn merged_bundle(ours: &str, current: &str, now: DateTime<Utc>) -> Option<String> {
    let ours = split_pem(ours);
    let current = split_pem(current);
    let same = |a: &str, b: &str| der_of(a).ok().is_some_and(|a| der_of(b).ok() == Some(a));
    if ours
        .iter()
        .all(|mine| current.iter().any(|theirs| same(mine, theirs)))
    {
        return None;
    }
    let kept = current.iter().filter(|theirs| {
        !ours.iter().any(|mine| same(mine, theirs)) && validity_of(theirs).is_ok_and(|v| v.is_valid_at(now))
    });
    Some(ours.iter().chain(kept).cloned().collect::<Vec<_>>().concat())
}

/// The serving certificate of one HTTPS server, swapped in place when it is renewed: new connections
/// get the new one, without a restart.
#[derive(Debug, Default)]
pub struct ServingCert {
    current: RwLock<Option<Arc<CertifiedKey>>>,
}

impl ServingCert {
    /// Loads a certificate and key; the previous one stays when they do not load.
    pub fn load(&self, pems: &ServingPems) -> Result<(), TlsError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pems.cert.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError::LoadCert(e.to_string()))?;
        let key = PrivateKeyDer::from_pem_slice(pems.key.as_bytes())
            .map_err(|e| TlsError::LoadCert(e.to_string()))?;
        let signing_key = rustls::crypto::ring::sign::any_supported_type(&key)
            .map_err(|e| TlsError::LoadCert(e.to_string()))?;
        let certified = Arc::new(CertifiedKey::new(chain, signing_key));
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(certified);
        Ok(())
    }

    /// Whether a certificate is loaded (the server can answer).
    pub fn is_loaded(&self) -> bool {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_some()
    }
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// Keeps `cert` current for as long as the process runs: ensures the certificates, loads them, hands
/// the CA bundle to `trust` (which makes clients trust it, e.g. injects a caBundle), and sleeps until
/// the next check. Failures are retried with a backoff; a certificate already loaded keeps serving.
pub async fn keep_current<F, Fut>(client: Client, settings: CertSettings, cert: Arc<ServingCert>, trust: F)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    const FIRST_RETRY: Duration = Duration::from_secs(1);
    const LAST_RETRY: Duration = Duration::from_secs(60);
    let mut retry = FIRST_RETRY;
    loop {
        let now = Utc::now();
        let outcome = match ensure(&client, &settings, now).await {
            Ok((pems, next)) => cert.load(&pems).map(|()| (pems, next)),
            Err(error) => Err(error),
        };
        let wait = match outcome {
            Ok((pems, next)) => match trust(pems.ca_bundle).await {
                Ok(()) => {
                    retry = FIRST_RETRY;
                    debug!(secret = %settings.secret, next = %next, "certificates current");
                    (next - Utc::now()).to_std().unwrap_or(Duration::from_secs(1))
                }
                Err(problem) => {
                    warn!(secret = %settings.secret, %problem, retry_in = ?retry, "cannot make clients trust the CA");
                    retry
                }
            },
            Err(error) => {
                warn!(secret = %settings.secret, reason = error.reason(), retry_in = ?retry, "cannot keep the certificates: {error}");
                retry
            }
        };
        if wait == retry {
            retry = (retry * 2).min(LAST_RETRY);
        }
        tokio::time::sleep(wait).await;
    }
}

/// Why an HTTPS server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid certificate settings: {0}")]
    Settings(String),
    #[error("serving HTTPS on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

impl StartError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Settings(_) => "Settings",
            Self::Bind { .. } => "Bind",
        }
    }
}

/// Starts an HTTPS server: checks the settings, binds `addr` (a port in use is a start-up error) and
/// keeps its certificate current on a task of its own, handing each CA bundle to `trust` (see
/// [`keep_current`]). Returns the serving certificate (readiness may wait until one is loaded) and
/// the server to run.
pub async fn start<F, Fut>(
    client: Client,
    settings: CertSettings,
    addr: SocketAddr,
    app: axum::Router,
    trust: F,
) -> Result<(Arc<ServingCert>, impl std::future::Future<Output = ()>), StartError>
where
    F: Fn(String) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    settings.check().map_err(StartError::Settings)?;
    let cert = Arc::new(ServingCert::default());
    let server = serve(addr, app, cert.clone())
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    tokio::spawn(keep_current(client, settings, cert.clone(), trust));
    Ok((cert, server))
}

/// Serves `app` over TLS with `cert` on `addr`: binds at once (a port in use is a start-up error) and
/// returns the server to run. A connection arriving before a certificate is loaded fails its handshake.
pub async fn serve(
    addr: SocketAddr,
    app: axum::Router,
    cert: Arc<ServingCert>,
) -> std::io::Result<impl std::future::Future<Output = ()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let mut config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?
            .with_no_client_auth()
            .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    info!(addr = %listener.local_addr()?, "serving HTTPS");
    Ok(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    warn!(%error, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                // A client that never finishes its handshake must not hold a task forever.
                let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(error)) => return debug!(%peer, %error, "TLS handshake failed"),
                    Err(_) => return debug!(%peer, "TLS handshake timed out"),
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                if let Err(error) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await
                {
                    debug!(%peer, %error, "HTTPS connection ended with an error");
                }
            });
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn settings(hosts: &[&str]) -> CertSettings {
        CertSettings {
            namespace: "ns".into(),
            secret: "s".into(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            ca_lifetime: Duration::from_secs(3 * 3600),
            cert_lifetime: Duration::from_secs(3600),
            source: CertSource::Operator,
        }
    }

    fn as_data(pems: &ServingPems, ca_key: &str) -> BTreeMap<String, String> {
        [
            (TLS_CRT, &pems.cert),
            (TLS_KEY, &pems.key),
            (CA_CRT, &pems.ca_bundle),
            (CA_KEY, &ca_key.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
    }

    #[test]
    fn issued_certificates_read_back_as_valid_for_their_hosts_and_signed_by_the_ca() {
        let now = Utc::now();
        let wanted = settings(&["webhook.ns.svc", "127.0.0.1"]);
        let empty = Held::read(&BTreeMap::new(), &wanted.hosts, now);
        let (pems, ca_key) = issue(Renewal::CaAndServer, &empty, &BTreeMap::new(), &wanted, now).unwrap();
        let data = as_data(&pems, &ca_key);
        let held = Held::read(&data, &wanted.hosts, now);
        let server = held.server.clone().unwrap();
        assert!(server.hosts_match && server.signed_by_ca, "{server:?}");
        assert_eq!(
            renewal::renewal(
                held.ca.as_ref().map(|c| c.validity),
                Some(&server),
                wanted.cert_lifetime,
                now
            ),
            Renewal::Keep
        );
        // Other hosts need a new serving certificate.
        let other = Held::read(&data, &["other.ns.svc".to_string()], now);
        assert!(!other.server.unwrap().hosts_match);
        // A serving certificate renewed under the same CA keeps the bundle; the new one is trusted by it.
        let (renewed, same_key) = issue(Renewal::Server, &held, &data, &wanted, now).unwrap();
        assert_eq!(
            (renewed.ca_bundle.clone(), same_key.clone()),
            (pems.ca_bundle.clone(), ca_key.clone())
        );
        assert_ne!(renewed.cert, pems.cert);
        assert!(
            Held::read(&as_data(&renewed, &same_key), &wanted.hosts, now)
                .server
                .unwrap()
                .signed_by_ca
        );
        // A renewed CA: the new CA first, the old one still trusted, and the new cert signed by the new CA.
        let (rotated, new_key) = issue(Renewal::CaAndServer, &held, &data, &wanted, now).unwrap();
        let bundle = split_pem(&rotated.ca_bundle);
        assert_eq!(bundle.len(), 2);
        assert_eq!(bundle[1], split_pem(&pems.ca_bundle)[0]);
        assert_ne!(new_key, ca_key);
        assert!(
            Held::read(&as_data(&rotated, &new_key), &wanted.hosts, now)
                .server
                .unwrap()
                .signed_by_ca
        );
        // What a server loads.
        ServingCert::default().load(&rotated).unwrap();
    }

    #[test]
    fn the_injected_bundle_only_grows_by_missing_cas_and_drops_expired_ones() {
        let now = Utc::now();
        let wanted = settings(&["webhook.ns.svc"]);
        let empty = Held::read(&BTreeMap::new(), &wanted.hosts, now);
        let (first, key) = issue(Renewal::CaAndServer, &empty, &BTreeMap::new(), &wanted, now).unwrap();
        let held = Held::read(&as_data(&first, &key), &wanted.hosts, now);
        let (second, _) = issue(Renewal::CaAndServer, &held, &as_data(&first, &key), &wanted, now).unwrap();
        let old_ca = first.ca_bundle.clone();
        // Nothing injected yet: ours.
        assert_eq!(merged_bundle(&old_ca, "", now), Some(old_ca.clone()));
        // Already there: nothing to do, also for a replica that still has only the old CA.
        assert_eq!(merged_bundle(&old_ca, &old_ca, now), None);
        assert_eq!(merged_bundle(&old_ca, &second.ca_bundle, now), None);
        // A renewed CA is added in front; the old one stays while it is valid, and leaves once expired.
        let new_ca = split_pem(&second.ca_bundle)[0].clone();
        assert_eq!(
            merged_bundle(&new_ca, &old_ca, now),
            Some(format!("{new_ca}{old_ca}"))
        );
        let later = now + chrono::Duration::days(1);
        assert_eq!(merged_bundle(&new_ca, &old_ca, later), Some(new_ca.clone()));
    }
}
