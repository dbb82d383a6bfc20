//! `yihao client ...`: the client registry.

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::{Admin, ClientCommand, CreateClient, Output, TokenSettings, now};
use crate::crypto::random_token;
use crate::domain::client::ClientSettings;
use crate::domain::client::{
    AuthMethod, Channel, Client, ClientId, ClientSpec, GrantType, RedirectUri, Scope,
};
use crate::domain::jose::Alg;
use crate::protocol::audit::EventType;
use crate::store::ClientStore;

use crate::store::client_cache::CLIENTS_CHANNEL;

pub(super) async fn run(admin: &Admin, command: ClientCommand) -> anyhow::Result<()> {
    let (store, ephemeral) = (&admin.store, &admin.ephemeral);
    let now = now();
    let changed = match command {
        ClientCommand::Create(args) => {
            let output = args.output;
            let (client, secret) = register_client(admin, args, now)?;
            store.insert_client(&client).await?;
            print_client(&client, secret.as_deref(), output);
            Some((client.id().clone(), "create"))
        }
        ClientCommand::Update(args) => {
            let client = find_client(store.as_ref(), &args.id).await?;
            let mut spec = client.spec();
            if let Some(name) = args.name {
                spec.name = name;
            }
            if !args.redirect_uris.is_empty() {
                spec.redirect_uris = args
                    .redirect_uris
                    .iter()
                    .map(|u| RedirectUri::parse(u))
                    .collect::<Result<_, _>>()?;
            }
            if !args.post_logout_redirect_uris.is_empty() {
                spec.post_logout_redirect_uris = args
                    .post_logout_redirect_uris
                    .iter()
                    .map(|u| RedirectUri::parse_post_logout(u))
                    .collect::<Result<_, _>>()?;
            }
            if !args.grant_types.is_empty() {
                spec.grant_types = args
                    .grant_types
                    .iter()
                    .map(|g| GrantType::parse(g))
                    .collect::<Result<_, _>>()?;
            }
            if !args.scopes.is_empty() {
                spec.scopes = args
                    .scopes
                    .iter()
                    .map(|s| Scope::parse(s))
                    .collect::<Result<_, _>>()?;
            }
            if let Some(first_party) = args.first_party {
                spec.first_party = first_party;
            }
            apply_settings(&mut spec.settings, &args.settings)?;
            let updated =
                Client::restore(spec, client.secrets().cloned(), client.created_at(), now)?;
            store.update_client(&updated).await?;
            print_client(&updated, None, args.output);
            Some((updated.id().clone(), "update"))
        }
        ClientCommand::List { output } => {
            let clients = store.clients().await?;
            match output {
                Output::Json => {
                    let list: Vec<Value> = clients.iter().map(|c| client_json(c, None)).collect();
                    println!("{}", Value::Array(list));
                }
                Output::Text => {
                    for c in &clients {
                        println!(
                            "{}\t{}\t{}\t{}",
                            c.id(),
                            c.auth_method().as_str(),
                            c.grant_types()
                                .iter()
                                .map(|g| g.as_str())
                                .collect::<Vec<_>>()
                                .join(","),
                            c.name()
                        );
                    }
                }
            }
            None
        }
        ClientCommand::Show { id, output } => {
            let client = find_client(store.as_ref(), &id).await?;
            print_client(&client, None, output);
            None
        }
        ClientCommand::RotateSecret {
            id,
            previous_valid_secs,
            output,
        } => {
            let client = find_client(store.as_ref(), &id).await?;
            let Some(old) = client.secrets() else {
                bail!(
                    "client {id} uses {} and has no secret",
                    client.auth_method().as_str()
                );
            };
            let secret = random_token();
            let secrets = admin.client_secrets.store(
                client.id(),
                client.auth_method(),
                &secret,
                Some((old, now + i64::from(previous_valid_secs))),
            );
            let rotated = Client::restore(client.spec(), Some(secrets), client.created_at(), now)?;
            store.update_client(&rotated).await?;
            print_client(&rotated, Some(&secret), output);
            Some((rotated.id().clone(), "rotate_secret"))
        }
        ClientCommand::Delete { id } => {
            let id = ClientId::parse(&id)?;
            if !store.delete_client(&id).await? {
                bail!("client {id} not found");
            }
            eprintln!("deleted client {id}");
            Some((id, "delete"))
        }
    };
    if let Some((id, change)) = changed {
        super::audit_admin(admin, EventType::AdminClient, id.as_str(), change).await?;
        // Running nodes drop what they cached about this client. Best effort: with the in-process
        // cache there is no other node to tell.
        if let Err(e) = ephemeral
            .publish(CLIENTS_CHANNEL, id.as_str().as_bytes())
            .await
        {
            eprintln!(
                "warning: client saved, but running nodes were not notified: {}",
                crate::telemetry::ErrorChain(&e)
            );
        }
    }
    Ok(())
}

async fn find_client(store: &dyn ClientStore, id: &str) -> anyhow::Result<Client> {
    let id = ClientId::parse(id)?;
    store
        .client(&id)
        .await?
        .with_context(|| format!("client {id} not found"))
}

/// Turns the flags into a checked registration and, for secret-based methods, a fresh secret.
fn register_client(
    admin: &Admin,
    args: CreateClient,
    now: i64,
) -> anyhow::Result<(Client, Option<String>)> {
    let auth_method = match (&args.token_endpoint_auth_method, args.public) {
        (Some(m), public) => {
            let m = AuthMethod::parse(m)?;
            if public && m != AuthMethod::None {
                bail!(
                    "--public clients authenticate with token_endpoint_auth_method none, not {}",
                    m.as_str()
                );
            }
            m
        }
        (None, true) => AuthMethod::None,
        (None, false) => AuthMethod::ClientSecretBasic,
    };
    let id = match &args.id {
        Some(id) => ClientId::parse(id)?,
        None => ClientId::parse(&uuid::Uuid::new_v4().to_string())?,
    };
    let spec = ClientSpec {
        id,
        name: args.name,
        auth_method,
        redirect_uris: args
            .redirect_uris
            .iter()
            .map(|u| RedirectUri::parse(u))
            .collect::<Result<_, _>>()?,
        post_logout_redirect_uris: args
            .post_logout_redirect_uris
            .iter()
            .map(|u| RedirectUri::parse_post_logout(u))
            .collect::<Result<_, _>>()?,
        grant_types: args
            .grant_types
            .iter()
            .map(|g| GrantType::parse(g))
            .collect::<Result<_, _>>()?,
        scopes: args
            .scopes
            .iter()
            .map(|s| Scope::parse(s))
            .collect::<Result<_, _>>()?,
        first_party: args.first_party,
        settings: {
            let mut settings = ClientSettings::default();
            apply_settings(&mut settings, &args.settings)?;
            settings
        },
    };
    let secret = auth_method.uses_secret().then(random_token);
    let secrets = secret
        .as_deref()
        .map(|s| admin.client_secrets.store(&spec.id, auth_method, s, None));
    Ok((Client::register(spec, secrets, now)?, secret))
}

/// Applies the token-setting flags that were given.
fn apply_settings(settings: &mut ClientSettings, flags: &TokenSettings) -> anyhow::Result<()> {
    if let Some(alg) = &flags.id_token_signed_response_alg {
        settings.id_token_alg = Some(Alg::parse(alg).map_err(anyhow::Error::msg)?);
    }
    if let Some(alg) = &flags.access_token_signed_response_alg {
        settings.access_token_alg = Some(Alg::parse(alg).map_err(anyhow::Error::msg)?);
    }
    if let Some(secs) = flags.access_token_lifetime {
        settings.access_token_secs = Some(secs);
    }
    if let Some(secs) = flags.id_token_lifetime {
        settings.id_token_secs = Some(secs);
    }
    if let Some(full) = flags.full_phone {
        settings.full_phone = full;
    }
    if let Some(optional) = flags.pkce_optional {
        settings.pkce_optional = optional;
    }
    if let Some(location) = &flags.location {
        // Empty clears it.
        settings.location = Some(location.trim().to_owned()).filter(|l| !l.is_empty());
    }
    if let Some(level) = flags.min_level {
        // 0 clears it.
        settings.min_level = (level > 0).then_some(level);
    }
    if let Some(jwks) = &flags.jwks {
        let text = match jwks.strip_prefix('@') {
            Some(path) => {
                std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?
            }
            None => jwks.clone(),
        };
        settings.jwks = Some(text);
        settings.jwks_uri = None;
    }
    if let Some(uri) = &flags.jwks_uri {
        settings.jwks_uri = Some(uri.clone());
        settings.jwks = None;
    }
    if let Some(uri) = &flags.backchannel_logout_uri {
        settings.backchannel_logout_uri = Some(uri.clone());
    }
    if let Some(required) = flags.backchannel_logout_session_required {
        settings.backchannel_logout_session_required = required;
    }
    if let Some(uri) = &flags.frontchannel_logout_uri {
        settings.frontchannel_logout_uri = Some(uri.clone());
    }
    if let Some(required) = flags.frontchannel_logout_session_required {
        settings.frontchannel_logout_session_required = required;
    }
    if !flags.resources.is_empty() {
        settings.resources = flags.resources.clone();
    }
    if let Some(channel) = &flags.channel {
        settings.channel = Channel::parse(channel)?;
    }
    Ok(())
}

/// RFC 7591 §3.2.1 client information response fields (`first_party` is ours).
fn client_json(client: &Client, secret: Option<&str>) -> Value {
    let strs = |items: Vec<&str>| Value::from(items);
    let mut out = json!({
        "client_id": client.id().as_str(),
        "client_name": client.name(),
        "redirect_uris": strs(client.redirect_uris().iter().map(RedirectUri::as_str).collect()),
        "post_logout_redirect_uris":
            strs(client.post_logout_redirect_uris().iter().map(RedirectUri::as_str).collect()),
        "grant_types": strs(client.grant_types().iter().map(|g| g.as_str()).collect()),
        "response_types": if client.grant_types().contains(&GrantType::AuthorizationCode) { json!(["code"]) } else { json!([]) },
        "scope": client.scopes().iter().map(Scope::as_str).collect::<Vec<_>>().join(" "),
        "token_endpoint_auth_method": client.auth_method().as_str(),
        "client_id_issued_at": client.created_at(),
        "first_party": client.first_party(),
        "id_token_signed_response_alg": client.settings().id_token_alg.map(|a| a.as_str()),
        "access_token_signed_response_alg": client.settings().access_token_alg.map(|a| a.as_str()),
        "access_token_lifetime": client.settings().access_token_secs,
        "id_token_lifetime": client.settings().id_token_secs,
        "full_phone": client.settings().full_phone,
        "pkce_optional": client.settings().pkce_optional,
        "min_level": client.settings().min_level,
        "location": client.settings().location,
        "jwks_uri": client.settings().jwks_uri,
        "jwks": client.settings().jwks.as_deref().and_then(|j| serde_json::from_str::<Value>(j).ok()),
        "resources": client.settings().resources,
        "backchannel_logout_uri": client.settings().backchannel_logout_uri,
        "backchannel_logout_session_required": client.settings().backchannel_logout_session_required,
        "frontchannel_logout_uri": client.settings().frontchannel_logout_uri,
        "frontchannel_logout_session_required": client.settings().frontchannel_logout_session_required,
        "channel": client.settings().channel.as_str(),
    });
    if let Some(secret) = secret {
        out["client_secret"] = Value::from(secret);
        out["client_secret_expires_at"] = Value::from(0);
    }
    out
}

fn print_client(client: &Client, secret: Option<&str>, output: Output) {
    let value = client_json(client, secret);
    match output {
        Output::Json => println!("{value}"),
        Output::Text => {
            super::print_text(&value);
            if secret.is_some() {
                eprintln!(
                    "note: the client secret is shown only now; it is stored as a hash{}",
                    if client.auth_method() == AuthMethod::ClientSecretJwt {
                        " and, for client_secret_jwt, sealed under the master key"
                    } else {
                        ""
                    }
                );
            }
        }
    }
}
