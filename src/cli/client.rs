//! `yihao client ...`: the client registry, through the same operations as the admin API
//! (`protocol::admin::clients`), as the operator.

use anyhow::{Context, bail};

use super::{Admin, ClientCommand, CreateClient, Output, TokenSettings, now};
use crate::protocol::admin::clients::{ClientChange, ClientView};
use crate::protocol::audit::RequestContext;

pub(super) async fn run(admin: &Admin, command: ClientCommand) -> anyhow::Result<()> {
    let context = RequestContext::default();
    let ops = admin.administration(&context);
    let now = now();
    match command {
        ClientCommand::Create(args) => {
            let output = args.output;
            let change = creation(&args)?;
            let client = ops.create_client(&change, now).await?;
            print_client(&client, output);
        }
        ClientCommand::Update(args) => {
            let change = ClientChange {
                client_name: args.name.clone(),
                redirect_uris: given(&args.redirect_uris),
                post_logout_redirect_uris: given(&args.post_logout_redirect_uris),
                grant_types: given(&args.grant_types),
                scope: scope_list(&args.scopes)?,
                first_party: args.first_party,
                ..settings_change(&args.settings)?
            };
            let client = ops.update_client(&args.id, &change, now).await?;
            print_client(&client, args.output);
        }
        ClientCommand::List { output } => {
            let mut clients = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = ops
                    .list_clients(None, after.as_deref(), crate::protocol::admin::MAX_PAGE)
                    .await?;
                clients.extend(page.items);
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            match output {
                Output::Json => println!("{}", serde_json::to_string(&clients)?),
                Output::Text => {
                    for c in &clients {
                        println!(
                            "{}\t{}\t{}\t{}",
                            c.client_id,
                            c.token_endpoint_auth_method,
                            c.grant_types.join(","),
                            c.client_name
                        );
                    }
                }
            }
        }
        ClientCommand::Show { id, output } => {
            print_client(&ops.show_client(&id).await?, output);
        }
        ClientCommand::RotateSecret {
            id,
            previous_valid_secs,
            output,
        } => {
            let client = ops
                .rotate_client_secret(&id, previous_valid_secs, now)
                .await?;
            print_client(&client, output);
        }
        ClientCommand::RegistrationToken {
            department,
            expires_in,
            output,
        } => {
            let issued = ops
                .issue_registration_token(department.as_deref(), expires_in, now)
                .await?;
            let value = serde_json::to_value(&issued)?;
            match output {
                Output::Json => println!("{value}"),
                Output::Text => {
                    super::print_text(&value);
                    eprintln!("note: the token is shown only now; it registers one client, once");
                }
            }
        }
        ClientCommand::Approve { id, output } => {
            print_client(&ops.approve_client(&id, now).await?, output);
        }
        ClientCommand::Delete { id } => {
            ops.delete_client(&id).await?;
            eprintln!("deleted client {id}");
        }
    }
    Ok(())
}

/// The `--scope` flags as RFC 7591's space-separated `scope`, each flag one scope token.
fn scope_list(scopes: &[String]) -> anyhow::Result<Option<String>> {
    for s in scopes {
        crate::domain::client::Scope::parse(s)?;
    }
    Ok(given(scopes).map(|s| s.join(" ")))
}

fn given(items: &[String]) -> Option<Vec<String>> {
    (!items.is_empty()).then(|| items.to_vec())
}

/// The registration the flags describe.
fn creation(args: &CreateClient) -> anyhow::Result<ClientChange> {
    let method = match (&args.token_endpoint_auth_method, args.public) {
        (Some(m), true) if m != "none" => {
            bail!("--public clients authenticate with token_endpoint_auth_method none, not {m}")
        }
        (Some(m), _) => Some(m.clone()),
        (None, true) => Some("none".to_owned()),
        (None, false) => None,
    };
    let cas_only = !args.settings.cas_services.is_empty() && args.redirect_uris.is_empty();
    Ok(ClientChange {
        client_id: args.id.clone(),
        client_name: Some(args.name.clone()),
        redirect_uris: Some(args.redirect_uris.clone()),
        post_logout_redirect_uris: Some(args.post_logout_redirect_uris.clone()),
        grant_types: Some(if cas_only && args.grant_types == ["authorization_code"] {
            Vec::new()
        } else {
            args.grant_types.clone()
        }),
        scope: scope_list(&args.scopes)?,
        token_endpoint_auth_method: method,
        first_party: Some(args.first_party),
        ..settings_change(&args.settings)?
    })
}

/// The token-setting flags that were given.
fn settings_change(flags: &TokenSettings) -> anyhow::Result<ClientChange> {
    let jwks = match &flags.jwks {
        Some(jwks) => {
            let text = match jwks.strip_prefix('@') {
                Some(path) => {
                    std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?
                }
                None => jwks.clone(),
            };
            Some(serde_json::from_str(&text).context("--jwks is not JSON")?)
        }
        None => None,
    };
    Ok(ClientChange {
        id_token_signed_response_alg: flags.id_token_signed_response_alg.clone(),
        access_token_signed_response_alg: flags.access_token_signed_response_alg.clone(),
        access_token_lifetime: flags.access_token_lifetime,
        id_token_lifetime: flags.id_token_lifetime,
        full_phone: flags.full_phone,
        pkce_optional: flags.pkce_optional,
        min_level: flags.min_level,
        location: flags.location.clone(),
        jwks,
        jwks_uri: flags.jwks_uri.clone(),
        backchannel_logout_uri: flags.backchannel_logout_uri.clone(),
        backchannel_logout_session_required: flags.backchannel_logout_session_required,
        frontchannel_logout_uri: flags.frontchannel_logout_uri.clone(),
        frontchannel_logout_session_required: flags.frontchannel_logout_session_required,
        channel: flags.channel.clone(),
        resources: given(&flags.resources),
        department: flags.department.clone(),
        cas_services: given(&flags.cas_services),
        ..ClientChange::default()
    })
}

fn print_client(client: &ClientView, output: Output) {
    let value = serde_json::to_value(client).unwrap_or_default();
    match output {
        Output::Json => println!("{value}"),
        Output::Text => {
            super::print_text(&value);
            if client.client_secret.is_some() {
                eprintln!(
                    "note: the client secret is shown only now; it is stored as a hash{}",
                    if client.token_endpoint_auth_method == "client_secret_jwt" {
                        " and, for client_secret_jwt, sealed under the master key"
                    } else {
                        ""
                    }
                );
            }
        }
    }
}
