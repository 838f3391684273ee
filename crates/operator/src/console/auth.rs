//! Who calls, and what they may do: the bearer token is checked by the API server (`TokenReview`), and
//! every operation is authorised as the caller (`SubjectAccessReview`), so the endpoint never grants
//! more than the caller has in Kubernetes. The endpoint's own ServiceAccount only carries out what the
//! caller was allowed.

use k8s_openapi::api::{
    authentication::v1::{TokenReview, TokenReviewSpec, UserInfo},
    authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
};
use kube::{Api, Client, api::PostParams};

use crate::api::GROUP;

/// An authenticated caller, as the API server knows it.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user: UserInfo,
}

impl Caller {
    pub fn name(&self) -> &str {
        self.user.username.as_deref().unwrap_or_default()
    }
}

/// The token out of `Authorization: Bearer <token>` (the scheme is case-insensitive, RFC 7235).
pub fn bearer_token(header: Option<&str>) -> Option<&str> {
    let (scheme, token) = header?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The caller the API server finds for `token`, or `None` for a token it does not accept.
pub async fn authenticate(client: &Client, token: &str) -> Result<Option<Caller>, kube::Error> {
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: Some(token.to_string()),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    let status = answer.status.unwrap_or_default();
    Ok(match (status.authenticated, status.user) {
        (Some(true), Some(user)) => Some(Caller { user }),
        _ => None,
    })
}

/// One check: may the caller `verb` the `resource` (of our group) in `namespace`, optionally the
/// object `name`?
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    pub verb: &'static str,
    pub resource: &'static str,
    pub namespace: String,
    pub name: Option<String>,
}

impl Access {
    pub fn new(verb: &'static str, resource: &'static str, namespace: &str) -> Access {
        Access {
            verb,
            resource,
            namespace: namespace.to_string(),
            name: None,
        }
    }

    pub fn named(self, name: &str) -> Access {
        Access {
            name: Some(name.to_string()),
            ..self
        }
    }

    /// The review the API server answers, carrying everything the TokenReview said about the caller
    /// (groups and extra included, so that group bindings and scoped tokens count as they would).
    pub fn review(&self, caller: &Caller) -> SubjectAccessReview {
        SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: caller.user.username.clone(),
                uid: caller.user.uid.clone(),
                groups: caller.user.groups.clone(),
                extra: caller.user.extra.clone(),
                resource_attributes: Some(ResourceAttributes {
                    group: Some(GROUP.to_string()),
                    resource: Some(self.resource.to_string()),
                    verb: Some(self.verb.to_string()),
                    namespace: Some(self.namespace.clone()),
                    name: self.name.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

/// Whether the API server allows the caller `access`.
pub async fn allowed(client: &Client, caller: &Caller, access: &Access) -> Result<bool, kube::Error> {
    let answer = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &access.review(caller))
        .await?;
    Ok(answer
        .status
        .is_some_and(|s| s.allowed && !s.denied.unwrap_or(false)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bearer_token_is_taken() {
        let table = [
            (None, None),
            (Some("Bearer abc"), Some("abc")),
            (Some("bearer  abc "), Some("abc")),
            (Some("Basic abc"), None),
            (Some("Bearer "), None),
            (Some("Bearer"), None),
        ];
        for (header, token) in table {
            assert_eq!(bearer_token(header), token, "{header:?}");
        }
    }

    #[test]
    fn the_review_asks_as_the_caller_in_our_group() {
        let caller = Caller {
            user: UserInfo {
                username: Some("system:serviceaccount:team-a:ci".into()),
                uid: Some("u1".into()),
                groups: Some(vec!["system:serviceaccounts".into()]),
                extra: None,
            },
        };
        let review = Access::new("delete", "clusterbackups", "team-a")
            .named("b1")
            .review(&caller);
        assert_eq!(
            review.spec.user.as_deref(),
            Some("system:serviceaccount:team-a:ci")
        );
        assert_eq!(review.spec.groups, caller.user.groups);
        let attributes = review.spec.resource_attributes.unwrap_or_default();
        assert_eq!(attributes.group.as_deref(), Some("c8backup.dev"));
        assert_eq!(attributes.resource.as_deref(), Some("clusterbackups"));
        assert_eq!(attributes.verb.as_deref(), Some("delete"));
        assert_eq!(attributes.namespace.as_deref(), Some("team-a"));
        assert_eq!(attributes.name.as_deref(), Some("b1"));
    }
}
