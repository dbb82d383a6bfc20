//! RP-Initiated Logout 1.0 and Front-Channel Logout 1.0: what a logout request may ask, whether it
//! ends the session at once or asks the person first, and which front-channel pages the ending
//! session's clients get.
//!
//! §2: "At the Logout Endpoint, the OP SHOULD ask the End-User whether to log out of the OP as well.
//! ... If the OP is not able to validate the ID Token Hint or to determine that the logout request was
//! actually sent by the RP, the OP SHOULD ask the End-User". A request whose `id_token_hint` names the
//! current session (its `sid`) logs out at once; any other asks first. §3: the
//! `post_logout_redirect_uri` must exactly match one the client registered, and the client must be
//! identified (by the hint or `client_id`); otherwise the browser stays here.

use serde_json::Value;

use super::session::{self, EndReason, Session, SessionPolicy, Sessions};
use crate::crypto::signing::KeyRing;
use crate::domain::client::ClientId;
use crate::store::{ClientLookup, Ephemeral, StoreError};

/// Why a logout request is refused (shown to the person; the browser stays here).
#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    #[error("a parameter is repeated")]
    Repeated,
    #[error("id_token_hint is not an ID token from this server")]
    BadHint,
    #[error("client_id does not match the id_token_hint")]
    ClientMismatch,
    #[error("post_logout_redirect_uri is not registered for this client")]
    UnregisteredRedirect,
    #[error("the server failed")]
    Store(#[from] StoreError),
}

/// What to do with a logout request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// End this session at once (none: nothing to end), or ask the person first.
    pub next: Ending,
    /// Where to send the browser afterwards, already checked against the client's registration.
    pub redirect: Option<String>,
    pub state: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The relying party proved the session (or there is none): end it without asking.
    Now { sid: Option<String> },
    /// Ask the person whether to log out of yihao too.
    AskFirst,
}

/// The ports and settings of logout.
pub struct Logouts<'a> {
    pub issuer: &'a str,
    pub ring: &'a KeyRing,
    pub clients: &'a dyn ClientLookup,
    pub ephemeral: &'a dyn Ephemeral,
    pub sessions: Sessions<'a>,
    pub policy: SessionPolicy,
}

impl Logouts<'_> {
    /// Reads a logout request against the browser's session (its cookie secret, if any).
    pub async fn decide(
        &self,
        params: &[(String, String)],
        secret: Option<&str>,
        now: i64,
    ) -> Result<Decision, LogoutError> {
        let get = |name: &str| super::param(params, name);
        let mut names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(LogoutError::Repeated);
        }
        let hint = get("id_token_hint")
            .map(|token| self.hint(token, now))
            .transpose()?;
        let hinted_client = hint.as_ref().and_then(|c| match &c["aud"] {
            Value::String(a) => Some(a.clone()),
            Value::Array(list) => list.first().and_then(Value::as_str).map(str::to_owned),
            _ => None,
        });
        let client_id = match (get("client_id"), hinted_client.as_deref()) {
            (Some(a), Some(b)) if a != b => return Err(LogoutError::ClientMismatch),
            (Some(a), _) => Some(a),
            (None, b) => b,
        };
        let client = match client_id.and_then(|id| ClientId::parse(id).ok()) {
            Some(id) => self.clients.client(&id).await?,
            None => None,
        };
        let redirect = match get("post_logout_redirect_uri") {
            None => None,
            Some(uri) => {
                let registered = client.is_some_and(|c| {
                    c.post_logout_redirect_uris()
                        .iter()
                        .any(|r| r.as_str() == uri)
                });
                if !registered {
                    return Err(LogoutError::UnregisteredRedirect);
                }
                Some(uri.to_owned())
            }
        };
        let current = match secret {
            Some(secret) => session::load(self.ephemeral, secret, self.policy, now).await?,
            None => None,
        };
        let tied = match (&hint, &current) {
            (Some(claims), Some((sid, _))) => claims["sid"].as_str() == Some(sid.as_str()),
            _ => false,
        };
        let next = if tied || current.is_none() {
            Ending::Now {
                sid: current.map(|(sid, _)| sid),
            }
        } else {
            Ending::AskFirst
        };
        Ok(Decision {
            next,
            redirect,
            state: get("state").map(str::to_owned),
        })
    }

    /// An ID token this server signed; it may have expired (§2: logout must still work).
    fn hint(&self, token: &str, now: i64) -> Result<Value, LogoutError> {
        let mut validation = jsonwebtoken::Validation {
            validate_exp: false,
            validate_aud: false,
            ..Default::default()
        };
        validation.set_issuer(&[self.issuer]);
        self.ring
            .verify_token::<Value>(token, validation, now)
            .map(|(_, claims)| claims)
            .map_err(|_| LogoutError::BadHint)
    }

    /// Ends session `sid` (every client that received tokens in it gets a back-channel logout) and
    /// returns the front-channel pages to load (Front-Channel Logout 1.0 §2: each client of the
    /// session that registered a `frontchannel_logout_uri`, with `iss` and `sid` when it asked).
    pub async fn end(&self, sid: &str, now: i64) -> Result<Vec<String>, StoreError> {
        let frames = match session::get(self.ephemeral, sid).await {
            Ok(Some(s)) => self.front_channel_frames(sid, &s).await,
            _ => Vec::new(),
        };
        self.sessions.end(sid, EndReason::Logout, now).await?;
        tracing::info!(sid = %sid, "session ended by logout");
        Ok(frames)
    }

    async fn front_channel_frames(&self, sid: &str, session: &Session) -> Vec<String> {
        let mut frames = Vec::new();
        for client_id in &session.clients {
            let Ok(id) = ClientId::parse(client_id) else {
                continue;
            };
            let Ok(Some(client)) = self.clients.client(&id).await else {
                continue;
            };
            let settings = client.settings();
            let Some(uri) = &settings.frontchannel_logout_uri else {
                continue;
            };
            let Ok(mut url) = url::Url::parse(uri) else {
                continue;
            };
            if settings.frontchannel_logout_session_required {
                url.query_pairs_mut()
                    .append_pair("iss", self.issuer)
                    .append_pair("sid", sid);
            }
            frames.push(url.to_string());
        }
        frames
    }
}

/// Where the browser goes after logout: the registered URI with `state` (§3).
pub fn return_to(redirect: Option<String>, state: Option<&str>) -> Option<String> {
    redirect.map(|mut target| {
        if let Some(state) = state {
            let encoded = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("state", state)
                .finish();
            target.push(if target.contains('?') { '&' } else { '?' });
            target.push_str(&encoded);
        }
        target
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_goes_back_with_the_right_separator() {
        assert_eq!(
            return_to(Some("https://a/bye".into()), Some("x y")).as_deref(),
            Some("https://a/bye?state=x+y")
        );
        assert_eq!(
            return_to(Some("https://a/bye?k=1".into()), Some("s")).as_deref(),
            Some("https://a/bye?k=1&state=s")
        );
        assert_eq!(
            return_to(Some("https://a/bye".into()), None).as_deref(),
            Some("https://a/bye")
        );
        assert_eq!(return_to(None, Some("s")), None);
    }
}
