//! Client secrets at rest. Every secret is kept as its SHA-256; a client registered with
//! `client_secret_jwt` signs its assertions with HMAC keyed by the secret itself (OIDC Core §9: "the
//! octets of the UTF-8 representation of the client_secret as the shared key"), so for those clients
//! only the secret is also sealed with AES-256-GCM under a key derived from the master key, with the
//! client id as associated data (a sealed secret copied to another client's row does not open).

use zeroize::Zeroizing;

use super::MasterKey;
use super::hash_secret;
use super::pii::{PiiError, Sealer};
use crate::domain::client::{AuthMethod, Client, ClientId, ClientSecrets, SealedSecret};

pub struct ClientSecretBox {
    sealer: Sealer,
}

impl std::fmt::Debug for ClientSecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecretBox([redacted])")
    }
}

fn context(id: &ClientId) -> String {
    format!("clients.secret:{id}")
}

impl ClientSecretBox {
    /// `version`: the active key version (`keys.pii_version`); every version opens.
    pub fn new(master: &MasterKey, version: u32) -> Self {
        Self {
            sealer: Sealer::new(master, "client-secret", version),
        }
    }

    /// What is stored for a new `secret` of client `id` using `method`; `replaces`: the secrets it
    /// replaces and until when (epoch seconds) the previous one stays valid.
    pub fn store(
        &self,
        id: &ClientId,
        method: AuthMethod,
        secret: &str,
        replaces: Option<(&ClientSecrets, i64)>,
    ) -> ClientSecrets {
        let jwt = method == AuthMethod::ClientSecretJwt;
        ClientSecrets {
            current: hash_secret(secret),
            previous: replaces.map(|(old, until)| (old.current, until)),
            sealed: jwt.then(|| SealedSecret(self.sealer.seal(&context(id), secret.as_bytes()))),
            previous_sealed: replaces
                .filter(|_| jwt)
                .and_then(|(old, _)| old.sealed.clone()),
        }
    }

    /// The HMAC keys a `client_secret_jwt` assertion from `client` may be signed with at `now`: the
    /// current secret, and during a rotation the previous one until its deadline.
    pub fn hmac_keys(
        &self,
        client: &Client,
        now: i64,
    ) -> Result<Vec<Zeroizing<Vec<u8>>>, PiiError> {
        let Some(secrets) = client.secrets() else {
            return Ok(Vec::new());
        };
        let previous = secrets
            .previous
            .filter(|&(_, until)| now < until)
            .and(secrets.previous_sealed.as_ref());
        secrets
            .sealed
            .iter()
            .chain(previous)
            .map(|s| {
                self.sealer
                    .open(&context(client.id()), &s.0)
                    .map(Zeroizing::new)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::client::{ClientSettings, ClientSpec, GrantType, Scope};

    fn z(keys: &[&[u8]]) -> Vec<Zeroizing<Vec<u8>>> {
        keys.iter().map(|k| Zeroizing::new(k.to_vec())).collect()
    }

    fn key() -> MasterKey {
        MasterKey::from_bytes([9; 32])
    }

    fn client(id: &str, method: AuthMethod, secrets: ClientSecrets) -> Client {
        let spec = ClientSpec {
            id: ClientId::parse(id).unwrap(),
            name: id.into(),
            auth_method: method,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grant_types: vec![GrantType::ClientCredentials],
            scopes: vec![Scope::parse("read").unwrap()],
            first_party: false,
            settings: ClientSettings::default(),
        };
        Client::register(spec, Some(secrets), 0).unwrap()
    }

    #[test]
    fn only_client_secret_jwt_keeps_a_recoverable_secret() {
        let sb = ClientSecretBox::new(&key(), 1);
        let id = ClientId::parse("dept").unwrap();
        let basic = sb.store(&id, AuthMethod::ClientSecretBasic, "s1", None);
        assert!(basic.sealed.is_none());
        assert_eq!(basic.current, hash_secret("s1"));

        let first = sb.store(&id, AuthMethod::ClientSecretJwt, "s1", None);
        let c = client("dept", AuthMethod::ClientSecretJwt, first.clone());
        assert_eq!(sb.hmac_keys(&c, 0).unwrap(), z(&[b"s1"]));

        // Rotation: both open until the deadline, then only the new one.
        let second = sb.store(&id, AuthMethod::ClientSecretJwt, "s2", Some((&first, 100)));
        let c = client("dept", AuthMethod::ClientSecretJwt, second.clone());
        assert_eq!(sb.hmac_keys(&c, 99).unwrap(), z(&[b"s2", b"s1"]));
        assert_eq!(sb.hmac_keys(&c, 100).unwrap(), z(&[b"s2"]));

        // Copied to another client's row, it does not open.
        let other = client("other", AuthMethod::ClientSecretJwt, second);
        assert!(matches!(sb.hmac_keys(&other, 0), Err(PiiError::Tampered)));
    }
}
