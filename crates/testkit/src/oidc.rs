//! A small OpenID provider for the Console API's OAUTH path: the client-credentials grant Camunda's SDK
//! sends to `CAMUNDA_OAUTH_URL`, and the discovery document and key set that the API server's OIDC
//! authenticator reads. It serves the issuer that `scripts/control-plane.sh start` configured the API
//! server with (`oidc-issuer` in the control plane's directory), on the certificate that script issued
//! for it (`oidc.crt`, signed by the control plane's CA), and signs ES256 with a key of its own, so each
//! test run rotates the key the API server fetches.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use axum::{
    Form, Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use camunda_backup_operator::ops::tls::{ServingCert, ServingPems, serve};
use ring::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair},
};
use serde_json::{Value, json};

/// The audience the API server accepts (its `--oidc-client-id`): what `CAMUNDA_CONSOLE_OAUTH_AUDIENCE`
/// must be set to.
pub const AUDIENCE: &str = "c8b-console-api";
/// The prefix the API server puts before the `sub` and `groups` claims (`--oidc-*-prefix`).
pub const PREFIX: &str = "oidc:";
/// How long the tokens this provider issues live.
const TOKEN_LIFETIME_SECS: i64 = 300;

/// A client of the provider: the client-credentials pair and the groups its tokens carry.
#[derive(Clone, Debug)]
pub struct OidcClient {
    pub id: String,
    pub secret: String,
    pub groups: Vec<String>,
}

/// One request the token endpoint answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequestSeen {
    pub client_id: String,
    pub audience: Option<String>,
    pub granted: bool,
}

struct Issuer {
    url: String,
    kid: String,
    key: EcdsaKeyPair,
    rng: SystemRandom,
    clients: Vec<OidcClient>,
    seen: Mutex<Vec<TokenRequestSeen>>,
}

/// The running provider; stops serving when dropped.
pub struct Provider {
    issuer: Arc<Issuer>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The directory of the control plane the tests run against: the one holding `KUBECONFIG`.
pub fn control_plane_dir() -> PathBuf {
    let kubeconfig =
        std::env::var_os("KUBECONFIG").expect("KUBECONFIG (from scripts/control-plane.sh start)");
    Path::new(&kubeconfig)
        .parent()
        .expect("the kubeconfig's directory")
        .to_path_buf()
}

impl Provider {
    /// Serves the issuer of the control plane in `dir` for `clients`.
    pub async fn start(dir: &Path, clients: Vec<OidcClient>) -> Provider {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| {
                panic!(
                    "{} is missing ({e}): the control plane was not started by this checkout's scripts/control-plane.sh",
                    dir.join(name).display()
                )
            })
        };
        let url = read("oidc-issuer").trim().to_string();
        let addr: SocketAddr = url
            .strip_prefix("https://")
            .and_then(|host| host.parse().ok())
            .unwrap_or_else(|| panic!("the issuer {url} is not https://<ip>:<port>"));
        let cert = Arc::new(ServingCert::default());
        cert.load(&ServingPems {
            ca_bundle: read("ca.crt"),
            cert: read("oidc.crt"),
            key: read("oidc.key"),
        })
        .expect("the provider's certificate");
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("a P-256 key");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("the key");
        let kid = URL_SAFE_NO_PAD.encode(&key.public_key().as_ref()[1..9]);
        let issuer = Arc::new(Issuer {
            url,
            kid,
            key,
            rng,
            clients,
            seen: Mutex::default(),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/keys", get(keys))
            .route("/oauth/token", post(token))
            .with_state(issuer.clone());
        let server = serve(addr, app, cert)
            .await
            .unwrap_or_else(|e| panic!("binding the issuer's address {addr}: {e}"));
        Provider {
            issuer,
            server: tokio::spawn(server),
        }
    }

    /// Where the SDK asks for tokens (`CAMUNDA_OAUTH_URL`).
    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.issuer.url)
    }

    /// A token for `client_id` with `audience`, as the token endpoint would issue it.
    pub fn token_for(&self, client_id: &str, audience: &str) -> String {
        let client = self
            .issuer
            .clients
            .iter()
            .find(|c| c.id == client_id)
            .unwrap_or_else(|| panic!("no client {client_id}"));
        self.issuer.sign(client, audience)
    }

    /// The token requests answered so far.
    pub fn requests(&self) -> Vec<TokenRequestSeen> {
        self.issuer.seen.lock().expect("requests").clone()
    }
}

impl Issuer {
    /// A JWS (compact, ES256) of the claims the API server's authenticator checks.
    fn sign(&self, client: &OidcClient, audience: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        let header = json!({ "alg": "ES256", "typ": "JWT", "kid": self.kid });
        let claims = json!({
            "iss": self.url,
            "sub": client.id,
            "aud": audience,
            "azp": client.id,
            "iat": now,
            "exp": now + TOKEN_LIFETIME_SECS,
            "groups": client.groups,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .expect("signing");
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }
}

async fn discovery(State(issuer): State<Arc<Issuer>>) -> Json<Value> {
    Json(json!({
        "issuer": issuer.url,
        "jwks_uri": format!("{}/keys", issuer.url),
        "token_endpoint": format!("{}/oauth/token", issuer.url),
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    }))
}

async fn keys(State(issuer): State<Arc<Issuer>>) -> Json<Value> {
    // The uncompressed point: 0x04, then x and y of 32 bytes each.
    let point = issuer.key.public_key().as_ref();
    Json(json!({ "keys": [{
        "kty": "EC",
        "crv": "P-256",
        "alg": "ES256",
        "use": "sig",
        "kid": issuer.kid,
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    }]}))
}

/// The client-credentials grant with the credentials in the form body, as the SDK sends them; the
/// token's audience is the requested one (the client ID when none is asked for).
async fn token(State(issuer): State<Arc<Issuer>>, Form(form): Form<BTreeMap<String, String>>) -> Response {
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    let audience = form.get("audience").cloned();
    let client = issuer
        .clients
        .iter()
        .find(|c| Some(&c.id) == form.get("client_id") && Some(&c.secret) == form.get("client_secret"));
    let granted =
        client.is_some() && form.get("grant_type").map(String::as_str) == Some("client_credentials");
    issuer.seen.lock().expect("requests").push(TokenRequestSeen {
        client_id: client_id.clone(),
        audience: audience.clone(),
        granted,
    });
    match client {
        Some(client) if granted => {
            let access_token = issuer.sign(client, audience.as_deref().unwrap_or(&client.id));
            Json(json!({
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME_SECS,
            }))
            .into_response()
        }
        Some(_) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "unsupported_grant_type" })),
        )
            .into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "invalid_client" })),
        )
            .into_response(),
    }
}
