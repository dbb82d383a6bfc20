//! Pairwise subject identifiers (OIDC Core §8.1; docs/privacy.md): each client sector sees a different,
//! stable `sub` for the same person, so departments cannot join their data on it.
//!
//! `sub` is a deterministic authenticated encryption of the account id (the SIV construction: the
//! nonce is HMAC(K1, sector || account id), the ciphertext AES-256-GCM(K2, nonce, account id, aad =
//! sector)). It is stable per (sector, account), differs between sectors, reveals nothing without the
//! keys, and lets this server — and only it — recover the account from a `sub` and its sector, so
//! userinfo needs no lookup table.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::MasterKey;

pub struct SubjectCodec {
    nonce_key: Zeroizing<[u8; 32]>,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SubjectCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubjectCodec([redacted])")
    }
}

impl SubjectCodec {
    pub fn new(master: &MasterKey) -> Self {
        let key = master.derive("subject/aes-256-gcm");
        Self {
            nonce_key: master.derive("subject/siv"),
            cipher: Aes256Gcm::new(&(*key).into()),
        }
    }

    pub fn encode(&self, sector: &str, account_id: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.nonce_key.as_slice())
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(sector.as_bytes());
        mac.update(&[0]);
        mac.update(account_id.as_bytes());
        let tag = mac.finalize().into_bytes();
        let nonce = &tag[..12];
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: account_id.as_bytes(),
                    aad: sector.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(12 + sealed.len());
        out.extend_from_slice(nonce);
        out.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// The account id behind `sub` in `sector`, or `None` for anything this server did not issue there.
    pub fn decode(&self, sector: &str, sub: &str) -> Option<String> {
        let raw = URL_SAFE_NO_PAD.decode(sub).ok()?;
        if raw.len() < 12 + 16 {
            return None;
        }
        let (nonce, sealed) = raw.split_at(12);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: sector.as_bytes(),
                },
            )
            .ok()?;
        let account = String::from_utf8(plain).ok()?;
        // The nonce must be the one this account gets in this sector.
        (self.encode(sector, &account) == sub).then_some(account)
    }
}

/// The sector of a client (OIDC Core §8.1): the host of its redirect URIs when they share one,
/// otherwise the client id. A native app (a public client) whose redirects are all loopback
/// (RFC 8252 §7.3) has its own sector: every such app shares the host `127.0.0.1`, and two
/// departments' apps must not see the same `sub` (security review 15).
pub fn sector_of(client: &crate::domain::client::Client) -> String {
    let loopback = |host: &str| {
        matches!(host, "localhost" | "[::1]")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    };
    let hosts: std::collections::BTreeSet<String> = client
        .redirect_uris()
        .iter()
        .filter_map(|r| {
            url::Url::parse(r.as_str())
                .ok()?
                .host_str()
                .map(str::to_owned)
        })
        .collect();
    match (hosts.len(), hosts.iter().next()) {
        (1, Some(host)) if !(client.is_public() && loopback(host)) => host.clone(),
        _ => format!("client:{}", client.id()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec(byte: u8) -> SubjectCodec {
        SubjectCodec::new(&MasterKey::from_bytes([byte; 32]))
    }

    fn client(id: &str, redirect: &str, public: bool) -> crate::domain::client::Client {
        use crate::domain::client::{
            AuthMethod, Client, ClientId, ClientSecrets, ClientSettings, ClientSpec, GrantType,
            RedirectUri, Scope, SecretHash,
        };
        let spec = ClientSpec {
            id: ClientId::parse(id).unwrap(),
            name: id.into(),
            auth_method: if public {
                AuthMethod::None
            } else {
                AuthMethod::ClientSecretBasic
            },
            redirect_uris: vec![RedirectUri::parse(redirect).unwrap()],
            post_logout_redirect_uris: vec![],
            grant_types: vec![GrantType::AuthorizationCode],
            scopes: vec![Scope::parse("openid").unwrap()],
            first_party: false,
            settings: ClientSettings::default(),
        };
        let secrets = (!public).then(|| ClientSecrets::hashed(SecretHash([7; 32]), None));
        Client::register(spec, secrets, 1).unwrap()
    }

    /// Security review 15: every native app with loopback redirects shared the sector `127.0.0.1`.
    #[test]
    fn native_apps_on_loopback_have_sectors_of_their_own() {
        assert_eq!(
            sector_of(&client("app-a", "http://127.0.0.1/cb", true)),
            "client:app-a"
        );
        assert_eq!(
            sector_of(&client("app-b", "http://[::1]/cb", true)),
            "client:app-b"
        );
        assert_eq!(
            sector_of(&client("hall", "https://hall.example.gov.cn/cb", false)),
            "hall.example.gov.cn"
        );
    }

    #[test]
    fn subjects_are_stable_per_sector_and_differ_between_sectors() {
        let c = codec(1);
        let a = c.encode("hall.example.gov.cn", "acc-1");
        assert_eq!(a, c.encode("hall.example.gov.cn", "acc-1"));
        assert_ne!(a, c.encode("tax.example.gov.cn", "acc-1"));
        assert_ne!(a, c.encode("hall.example.gov.cn", "acc-2"));
        assert!(!a.contains("acc-1"));
        assert!(a.len() < 255);
        assert_eq!(
            c.decode("hall.example.gov.cn", &a).as_deref(),
            Some("acc-1")
        );
        assert_eq!(
            c.decode("tax.example.gov.cn", &a),
            None,
            "a sub from another sector"
        );
        assert_eq!(
            codec(2).decode("hall.example.gov.cn", &a),
            None,
            "another server's keys"
        );
        assert_eq!(c.decode("hall.example.gov.cn", "garbage"), None);
    }
}
