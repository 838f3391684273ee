//! When the operator's own CA and serving certificate are issued again: pure functions of what the
//! Secret holds and `now`, so the timing is table-tested.
//!
//! Each certificate is renewed once two thirds of its life have passed, so a renewal that fails (the
//! API server is down, RBAC was changed) has a third of the lifetime to be retried before anything
//! expires. The CA is also renewed when it would expire before a serving certificate issued now, so a
//! serving certificate never outlives the CA that signed it.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The validity of one certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

impl Validity {
    /// The certificate to issue at `now` for `lifetime`: valid from slightly before `now`, so that a
    /// client whose clock is a little behind accepts it, by at most a minute and a tenth of the
    /// lifetime (short test lifetimes would otherwise be renewed at once).
    pub fn issued(now: DateTime<Utc>, lifetime: Duration) -> Validity {
        let lifetime = chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::MAX);
        let backdate = (lifetime / 10).min(chrono::Duration::minutes(1));
        Validity {
            not_before: now - backdate,
            not_after: now
                .checked_add_signed(lifetime)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        }
    }

    /// When it is due for renewal: two thirds into its life.
    pub fn renew_at(&self) -> DateTime<Utc> {
        self.not_before + (self.not_after - self.not_before) * 2 / 3
    }

    pub fn is_valid_at(&self, now: DateTime<Utc>) -> bool {
        self.not_before <= now && now < self.not_after
    }
}

/// What the Secret holds of the serving certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerView {
    pub validity: Validity,
    /// It names exactly the hosts it is asked for (a changed Service name needs a new certificate).
    pub hosts_match: bool,
    /// The current CA signed it (a CA renewed by another replica needs a new one).
    pub signed_by_ca: bool,
}

/// What to issue now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renewal {
    Keep,
    /// A new serving certificate, signed by the current CA.
    Server,
    /// A new CA and a new serving certificate signed by it; the old CA stays in the bundle until it
    /// expires, so replicas that still serve a certificate it signed are trusted meanwhile.
    CaAndServer,
}

/// Decides what to issue; `None` means missing or unreadable.
pub fn renewal(
    ca: Option<Validity>,
    server: Option<&ServerView>,
    cert_lifetime: Duration,
    now: DateTime<Utc>,
) -> Renewal {
    let cert_lifetime = chrono::Duration::from_std(cert_lifetime).unwrap_or(chrono::Duration::MAX);
    let ca_due = ca.is_none_or(|ca| {
        !ca.is_valid_at(now)
            || now >= ca.renew_at()
            || now
                .checked_add_signed(cert_lifetime)
                .is_none_or(|end| ca.not_after < end)
    });
    if ca_due {
        return Renewal::CaAndServer;
    }
    let server_due = server.is_none_or(|server| {
        !server.hosts_match
            || !server.signed_by_ca
            || !server.validity.is_valid_at(now)
            || now >= server.validity.renew_at()
    });
    if server_due {
        Renewal::Server
    } else {
        Renewal::Keep
    }
}

/// How often the Secret is read again even when nothing is due: a replica picks up what another one
/// renewed (and the caBundle is put back if someone changed it) within this. A tenth of the serving
/// certificate's lifetime, between one second and one hour.
pub fn poll_period(cert_lifetime: Duration) -> Duration {
    (cert_lifetime / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600))
}

/// When to look again: at the next renewal point, or after `poll` at the latest.
pub fn next_check(ca: Validity, server: Validity, poll: Duration, now: DateTime<Utc>) -> DateTime<Utc> {
    let poll = chrono::Duration::from_std(poll).unwrap_or(chrono::Duration::hours(1));
    let renewal = ca.renew_at().min(server.renew_at());
    (now + poll).min(renewal.max(now + chrono::Duration::seconds(1)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::TimeZone;

    use super::*;

    const DAY: u64 = 24 * 3600;

    fn t(seconds: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(seconds)
    }

    fn days(n: i64) -> i64 {
        n * 24 * 3600
    }

    #[test]
    fn a_certificate_is_backdated_a_little_and_renewed_two_thirds_into_its_life() {
        let ninety_days = Validity::issued(t(0), Duration::from_secs(90 * DAY));
        assert_eq!(ninety_days.not_before, t(-60));
        assert_eq!(ninety_days.not_after, t(days(90)));
        // 60 days after issue, 20 s before (two thirds of the backdated minute).
        assert_eq!(ninety_days.renew_at(), t(days(60) - 20));
        // A 30 s test certificate is backdated 3 s and renewed 19 s after issue.
        let short = Validity::issued(t(0), Duration::from_secs(30));
        assert_eq!((short.not_before, short.not_after), (t(-3), t(30)));
        assert_eq!(short.renew_at(), t(19));
    }

    #[test]
    fn what_is_issued_follows_the_secret_and_the_clock() {
        let lifetime = Duration::from_secs(90 * DAY);
        let ca = Validity {
            not_before: t(0),
            not_after: t(days(365)),
        };
        let server = |from: i64, to: i64| ServerView {
            validity: Validity {
                not_before: t(from),
                not_after: t(to),
            },
            hosts_match: true,
            signed_by_ca: true,
        };
        let fresh = server(0, days(90));
        // What, the CA, the serving certificate, seconds from t(0), what is issued.
        type Case = (&'static str, Option<Validity>, Option<ServerView>, i64, Renewal);
        let cases: Vec<Case> = vec![
            ("nothing in the Secret", None, None, 0, Renewal::CaAndServer),
            ("no CA", None, Some(fresh.clone()), 0, Renewal::CaAndServer),
            (
                "a fresh pair",
                Some(ca),
                Some(fresh.clone()),
                days(1),
                Renewal::Keep,
            ),
            ("no serving certificate", Some(ca), None, days(1), Renewal::Server),
            (
                "just before the serving cert's renewal point",
                Some(ca),
                Some(fresh.clone()),
                days(60) - 1,
                Renewal::Keep,
            ),
            (
                "at the serving cert's renewal point",
                Some(ca),
                Some(fresh.clone()),
                days(60),
                Renewal::Server,
            ),
            (
                "an expired serving certificate",
                Some(ca),
                Some(fresh.clone()),
                days(91),
                Renewal::Server,
            ),
            (
                "a serving certificate not valid yet",
                Some(ca),
                Some(server(days(2), days(92))),
                days(1),
                Renewal::Server,
            ),
            (
                "other hosts",
                Some(ca),
                Some(ServerView {
                    hosts_match: false,
                    ..fresh.clone()
                }),
                days(1),
                Renewal::Server,
            ),
            (
                "signed by another CA",
                Some(ca),
                Some(ServerView {
                    signed_by_ca: false,
                    ..fresh.clone()
                }),
                days(1),
                Renewal::Server,
            ),
            (
                "at the CA's renewal point",
                Some(ca),
                Some(server(days(240), days(330))),
                days(244),
                Renewal::CaAndServer,
            ),
            (
                "a CA that would expire before a serving certificate issued now",
                Some(Validity {
                    not_before: t(0),
                    not_after: t(days(100)),
                }),
                Some(server(days(0), days(90))),
                days(11),
                Renewal::CaAndServer,
            ),
            (
                "an expired CA",
                Some(ca),
                Some(fresh),
                days(400),
                Renewal::CaAndServer,
            ),
        ];
        for (what, ca, server, now, expected) in cases {
            assert_eq!(renewal(ca, server.as_ref(), lifetime, t(now)), expected, "{what}");
        }
    }

    #[test]
    fn the_secret_is_read_again_at_the_next_renewal_point_or_after_the_poll_period() {
        assert_eq!(
            poll_period(Duration::from_secs(90 * DAY)),
            Duration::from_secs(3600)
        );
        assert_eq!(poll_period(Duration::from_secs(30)), Duration::from_secs(3));
        assert_eq!(poll_period(Duration::from_secs(5)), Duration::from_secs(1));
        let ca = Validity::issued(t(0), Duration::from_secs(365 * DAY));
        let server = Validity::issued(t(0), Duration::from_secs(30));
        // The serving certificate's renewal point (19 s) comes before the 1 h poll.
        assert_eq!(next_check(ca, server, Duration::from_secs(3600), t(0)), t(19));
        // The poll comes first.
        assert_eq!(next_check(ca, server, Duration::from_secs(3), t(0)), t(3));
        // A renewal point already passed (its renewal failed) is retried a second later, not at once.
        assert_eq!(next_check(ca, server, Duration::from_secs(3600), t(25)), t(26));
    }
}
