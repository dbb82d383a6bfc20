//! The contract every adapter keeps. `Store`: SQLite always, PostgreSQL when YIHAO_TEST_DATABASE_URL
//! is set. `Ephemeral`: in-process always, Redis when YIHAO_TEST_REDIS_URL is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use yihao::app::{open_ephemeral, open_store};
use yihao::crypto::hash_secret;
use yihao::domain::client::{
    AuthMethod, Client, ClientSecrets, ClientSpec, GrantType, RedirectUri, Scope,
};
use yihao::store::{Ephemeral, Notice, Store, StoreError};

fn client(id: &str, now: i64) -> Client {
    let spec = ClientSpec {
        redirect_uris: vec![
            RedirectUri::parse("https://hall.example.gov.cn/cb").unwrap(),
            RedirectUri::parse("http://127.0.0.1/cb").unwrap(),
        ],
        post_logout_redirect_uris: vec![
            RedirectUri::parse("https://hall.example.gov.cn/bye").unwrap(),
        ],
        ..common::clients::web(
            id,
            "https://hall.example.gov.cn/cb",
            AuthMethod::ClientSecretBasic,
            &["openid", "profile"],
            true,
        )
    };
    let secrets = ClientSecrets::hashed(hash_secret("s3cret"), None);
    Client::register(spec, Some(secrets), now).unwrap()
}

mod store_contract {
    use super::*;

    pub async fn migrations_are_idempotent(store: &dyn Store) {
        store.migrate().await.unwrap();
        store.migrate().await.unwrap();
        store.ping().await.unwrap();
    }

    pub async fn clients_round_trip(store: &dyn Store) {
        let c = client("hall", 1_700_000_000);
        assert_eq!(store.client(c.id()).await.unwrap(), None);
        store.insert_client(&c).await.unwrap();
        assert_eq!(store.client(c.id()).await.unwrap().as_ref(), Some(&c));
        let public = {
            let mut spec = client("app", 1).spec();
            spec.auth_method = AuthMethod::None;
            spec.grant_types = vec![GrantType::AuthorizationCode];
            Client::register(spec, None, 5).unwrap()
        };
        store.insert_client(&public).await.unwrap();
        let all = store.clients().await.unwrap();
        assert_eq!(all, vec![public.clone(), c.clone()], "ordered by id");
        assert_eq!(
            store.client(public.id()).await.unwrap().unwrap().secrets(),
            None
        );
    }

    pub async fn duplicate_client_ids_conflict_and_change_nothing(store: &dyn Store) {
        let c = client("dup", 1);
        store.insert_client(&c).await.unwrap();
        let mut other = c.spec();
        other.name = "another".into();
        let other = Client::register(other, c.secrets().cloned(), 2).unwrap();
        let err = store.insert_client(&other).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        assert_eq!(
            store.client(c.id()).await.unwrap().unwrap().name(),
            c.name()
        );
    }

    pub async fn updates_replace_and_keep_rotated_secrets(store: &dyn Store) {
        let c = client("rot", 10);
        store.insert_client(&c).await.unwrap();
        let secrets = ClientSecrets::hashed(hash_secret("new"), Some((hash_secret("s3cret"), 99)));
        let mut spec = c.spec();
        spec.scopes.push(Scope::parse("offline_access").unwrap());
        let rotated = Client::restore(spec, Some(secrets), 10, 20).unwrap();
        store.update_client(&rotated).await.unwrap();
        assert_eq!(store.client(c.id()).await.unwrap().unwrap(), rotated);
        let missing = client("missing", 1);
        assert!(matches!(
            store.update_client(&missing).await.unwrap_err(),
            StoreError::NotFound(_)
        ));
        assert_eq!(store.client(missing.id()).await.unwrap(), None);
    }

    /// Refresh families: a live token is listed for its account, a used or revoked one is not, and
    /// rotation of a used token revokes its family.
    /// A level-2 account with no phone, stored.
    async fn stored_account(
        store: &dyn Store,
        id: &str,
        name: &str,
    ) -> yihao::store::AccountRecord {
        let account = yihao::store::AccountRecord {
            id: id.into(),
            name: name.into(),
            phone_index: None,
            phone_sealed: None,
            email: None,
            level: 2,
            proof_method: "register_check".into(),
            proof_source: "test".into(),
            proof_at: 1,
            status: "active".into(),
            pii_version: 1,
            created_at: 1,
            updated_at: 1,
        };
        store
            .create_account(&account, &[], None, &[], &[])
            .await
            .unwrap();
        account
    }

    /// Agreements are stored with the account in its transaction, and deleting the account takes
    /// them, its refresh tokens and its sessions with it.
    pub async fn agreements_are_kept_and_deleted_with_their_account(store: &dyn Store) {
        use yihao::store::AgreementRecord;
        let mut account =
            stored_account(store, "6f0c6b6e-2c8e-4d54-9a53-7c1c2c9d0009", "王五").await;
        assert!(store.agreements(&account.id).await.unwrap().is_empty());
        account.id = "6f0c6b6e-2c8e-4d54-9a53-7c1c2c9d0010".into();
        let agreed = |kind: &str| AgreementRecord {
            account_id: account.id.clone(),
            kind: kind.into(),
            version: "2026-11-30".into(),
            agreed_at: 5,
        };
        store
            .create_account(
                &account,
                &[],
                None,
                &[],
                &[agreed("terms"), agreed("privacy")],
            )
            .await
            .unwrap();
        let kept = store.agreements(&account.id).await.unwrap();
        assert_eq!(kept, vec![agreed("privacy"), agreed("terms")]);
        // An agreement that cannot be stored (twice the same) leaves no account behind.
        let mut other = account.clone();
        other.id = "6f0c6b6e-2c8e-4d54-9a53-7c1c2c9d0011".into();
        let twice = AgreementRecord {
            account_id: other.id.clone(),
            ..agreed("terms")
        };
        assert!(
            store
                .create_account(&other, &[], None, &[], &[twice.clone(), twice])
                .await
                .is_err()
        );
        assert_eq!(store.account(&other.id).await.unwrap(), None);
        assert!(store.delete_account(&account.id).await.unwrap());
        assert!(!store.delete_account(&account.id).await.unwrap());
        assert!(store.agreements(&account.id).await.unwrap().is_empty());
        assert_eq!(store.account(&account.id).await.unwrap(), None);
    }

    /// Consents are listed per account and withdrawn one by one; refresh tokens are revoked per
    /// client; the audit log is read by actor or target, newest first.
    pub async fn consents_withdraw_and_the_audit_log_reads_by_person(store: &dyn Store) {
        use yihao::domain::audit::{AuditEvent, EventType};
        let account = stored_account(store, "6f0c6b6e-2c8e-4d54-9a53-7c1c2c9d0012", "赵六").await;
        let id = account.id.as_str();
        for c in ["c1", "c2"] {
            store.insert_client(&client(c, 1)).await.unwrap();
        }
        store
            .save_consent(id, "c1", &["openid".into()], 10)
            .await
            .unwrap();
        store
            .save_consent(id, "c2", &["openid".into(), "phone".into()], 20)
            .await
            .unwrap();
        let listed = store.consents_of(id).await.unwrap();
        assert_eq!(
            listed
                .iter()
                .map(|c| c.client_id.as_str())
                .collect::<Vec<_>>(),
            ["c2", "c1"],
            "newest first"
        );
        assert_eq!(listed[0].scopes, ["openid", "phone"]);
        assert!(store.delete_consent(id, "c2").await.unwrap());
        assert!(!store.delete_consent(id, "c2").await.unwrap());
        assert_eq!(store.consents_of(id).await.unwrap().len(), 1);

        let token = |hash: u8, client: &str| yihao::store::RefreshRecord {
            token_hash: vec![hash; 32],
            family_id: format!("f{hash}"),
            client_id: client.into(),
            account_id: id.into(),
            grant_json: "{}".into(),
            issued_at: 1,
            expires_at: 1_000,
            family_expires_at: 1_000,
            used_at: None,
            revoked_at: None,
        };
        store.insert_refresh(&token(41, "c1")).await.unwrap();
        store.insert_refresh(&token(42, "c2")).await.unwrap();
        assert_eq!(store.revoke_client_refresh(id, "c2", 5).await.unwrap(), 1);
        let live: Vec<_> = store
            .live_refresh_of(id, 5)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.client_id)
            .collect();
        assert_eq!(live, ["c1"]);

        let subject = format!("a:{id}");
        let events = [
            AuditEvent::success(EventType::LoginSuccess).actor(id),
            AuditEvent::failure(EventType::LoginFailure, "invalid_credentials").target(&subject),
            AuditEvent::success(EventType::LoginSuccess).actor("someone-else"),
            AuditEvent::success(EventType::AttributeRelease)
                .actor(id)
                .client("c1"),
        ];
        let batch: Vec<_> = events.into_iter().map(|e| (e, 1_000)).collect();
        store.append_audit("n1", &batch).await.unwrap();
        let mine = store.audit_about(id, &subject, i64::MAX, 10).await.unwrap();
        assert_eq!(
            mine.iter().map(|r| r.event.as_str()).collect::<Vec<_>>(),
            ["attribute_release", "login_failure", "login_success"]
        );
        let older = store
            .audit_about(id, &subject, mine[0].seq, 1)
            .await
            .unwrap();
        assert_eq!(older.len(), 1);
        assert_eq!(older[0].event, "login_failure");
    }

    pub async fn refresh_families_rotate_and_list_live_tokens(store: &dyn Store) {
        use yihao::store::{RefreshRecord, Rotation};
        let account = stored_account(store, "6f0c6b6e-2c8e-4d54-9a53-7c1c2c9d0002", "李四").await;
        store.insert_client(&client("rt", 1)).await.unwrap();
        let token = |hash: u8, family: &str| RefreshRecord {
            token_hash: vec![hash; 32],
            family_id: family.into(),
            client_id: "rt".into(),
            account_id: account.id.clone(),
            grant_json: "{}".into(),
            issued_at: 100,
            expires_at: 1_000,
            family_expires_at: 2_000,
            used_at: None,
            revoked_at: None,
        };
        store.insert_refresh(&token(1, "f1")).await.unwrap();
        store.insert_refresh(&token(2, "f2")).await.unwrap();
        let account_id = account.id.as_str();
        let live = |now| async move {
            let mut families: Vec<String> = store
                .live_refresh_of(account_id, now)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.family_id)
                .collect();
            families.sort();
            families
        };
        assert_eq!(live(500).await, ["f1", "f2"]);
        assert!(live(1_000).await.is_empty(), "expired at expires_at");
        assert!(matches!(
            store.rotate_refresh(&[1; 32], 500).await.unwrap(),
            Rotation::Rotated(_)
        ));
        assert_eq!(live(500).await, ["f2"], "a used token is not live");
        assert!(matches!(
            store.rotate_refresh(&[1; 32], 501).await.unwrap(),
            Rotation::Reused(_)
        ));
        assert_eq!(store.revoke_family("f2", 502).await.unwrap(), 1);
        assert!(live(503).await.is_empty());
        // A rotation that raced the reuse cannot add a token to the revoked family (review 20).
        assert!(matches!(
            store.insert_refresh(&token(3, "f1")).await,
            Err(yihao::store::StoreError::Conflict(_))
        ));
        assert!(live(503).await.is_empty());
        store.insert_refresh(&token(4, "f3")).await.unwrap();
    }

    /// Revoked access tokens are kept until they expire, whoever asks and however often they are
    /// revoked, then pruned.
    pub async fn revocations_hold_until_the_token_expires(store: &dyn Store) {
        assert!(!store.token_revoked("j1", 100).await.unwrap());
        store.revoke_token("j1", 1_000).await.unwrap();
        store.revoke_token("j1", 1_000).await.unwrap();
        assert!(store.token_revoked("j1", 100).await.unwrap());
        assert!(store.token_revoked("j1", 1_000).await.unwrap(), "until exp");
        assert!(!store.token_revoked("j1", 1_001).await.unwrap());
        assert!(!store.token_revoked("j2", 100).await.unwrap());
        store.revoke_token("j2", 5_000).await.unwrap();
        assert_eq!(store.prune_revoked(2_000).await.unwrap(), 1);
        assert!(store.token_revoked("j2", 100).await.unwrap(), "kept");
    }

    /// Durable sessions: recorded, touched, ended once (however many callers), swept when expired
    /// (back-channel logout queued for the clients that received tokens), pruned after retention.
    pub async fn sessions_end_once_expire_and_fan_out(shared: Arc<dyn Store>) {
        let store = shared.as_ref();
        let audit = yihao::app::Auditor::start(
            shared.clone(),
            "test".into(),
            16,
            prometheus_client::metrics::counter::Counter::default(),
            std::sync::Arc::new(yihao::clock::SystemClock),
        );
        use yihao::protocol::session::{self, EndReason, Session, SessionPolicy, Sessions};
        use yihao::store::SessionRecord;
        let account = stored_account(store, "6f0c6b6e-2c8e-4d54-9a53-7c1c2c9d0001", "张三").await;
        let mut spec = client("bc", 1).spec();
        spec.settings.backchannel_logout_uri = Some("https://hall.example.gov.cn/bc".into());
        let bc = Client::register(spec, client("bc", 1).secrets().cloned(), 1).unwrap();
        store.insert_client(&bc).await.unwrap();
        let ephemeral = open_ephemeral(&common::test_config().config.cache).unwrap();
        let subjects = yihao::crypto::subject::SubjectCodec::new(
            &yihao::crypto::MasterKey::from_bytes(*b"secret-secret-secret-secret-sec!"),
        );
        let sessions = Sessions {
            rows: store,
            clients: store,
            outbox: store,
            ephemeral: ephemeral.as_ref(),
            subjects: &subjects,
            audit: &audit,
        };
        let policy = SessionPolicy {
            idle_secs: 600,
            absolute_secs: 3600,
        };
        let t0 = 1_800_000_000;
        let open = |sid: &str, at: i64| SessionRecord {
            sid: sid.into(),
            account_id: account.id.clone(),
            channel: "web".into(),
            client_id: "bc".into(),
            clients: Vec::new(),
            ip: Some("203.0.113.7".into()),
            user_agent: Some("Mozilla/5.0".into()),
            level: 2,
            amr: "pwd".into(),
            created_at: at,
            last_seen_at: at,
            expires_at: at + 3600,
            ended_at: None,
            end_reason: None,
        };
        let live = Session {
            account_id: account.id.clone(),
            auth_time: t0,
            level: 2,
            amr: vec!["pwd".into()],
            created_at: t0,
            clients: vec!["bc".into()],
            idle_secs: 0,
            absolute_secs: 0,
            ceiling: 0,
        };
        for (sid, at) in [
            ("s-admin", t0),
            ("s-idle", t0),
            ("s-alive", t0),
            ("s-other", t0 + 1),
        ] {
            sessions.record(&open(sid, at)).await.unwrap();
            session::save(ephemeral.as_ref(), sid, &live, policy)
                .await
                .unwrap();
            store.touch_session(sid, &live.clients, at).await.unwrap();
        }
        let row = store.session("s-admin").await.unwrap().unwrap();
        assert_eq!(row.clients, vec!["bc".to_owned()]);
        assert_eq!(row.ip.as_deref(), Some("203.0.113.7"));
        let listed = store.sessions_of(&account.id, false).await.unwrap();
        assert_eq!(
            listed.first().map(|r| r.sid.as_str()),
            Some("s-other"),
            "newest first"
        );
        assert_eq!(listed.len(), 4);

        // Ended once: the second caller changes nothing and queues nothing.
        assert!(
            sessions
                .end("s-admin", EndReason::Admin, t0 + 5)
                .await
                .unwrap()
        );
        assert!(
            !sessions
                .end("s-admin", EndReason::Logout, t0 + 6)
                .await
                .unwrap()
        );
        assert!(
            !sessions
                .end("unknown", EndReason::Admin, t0 + 6)
                .await
                .unwrap()
        );
        let ended = store.session("s-admin").await.unwrap().unwrap();
        assert_eq!(
            (ended.ended_at, ended.end_reason.as_deref()),
            (Some(t0 + 5), Some("admin"))
        );
        assert_eq!(
            session::get(ephemeral.as_ref(), "s-admin").await.unwrap(),
            None
        );
        assert_eq!(store.logout_deliveries("bc").await.unwrap().len(), 1);
        assert_eq!(
            store.sessions_of(&account.id, false).await.unwrap().len(),
            3
        );
        assert_eq!(store.sessions_of(&account.id, true).await.unwrap().len(), 4);

        // Idle period over: the one still in the live store was used since and is kept (seen now);
        // the one whose idle timer ran out ends as expired and fans out.
        session::end(ephemeral.as_ref(), "s-idle").await.unwrap();
        let expired = sessions.sweep(policy, t0, t0 + 700).await.unwrap();
        assert_eq!(expired, 1);
        let idle = store.session("s-idle").await.unwrap().unwrap();
        assert_eq!(idle.end_reason.as_deref(), Some("expired"));
        assert_eq!(
            store
                .session("s-alive")
                .await
                .unwrap()
                .unwrap()
                .last_seen_at,
            t0 + 700
        );
        assert_eq!(store.logout_deliveries("bc").await.unwrap().len(), 2);

        // A session ended elsewhere (another node, the CLI: only its row changed) leaves this live
        // store at the next sweep.
        assert!(
            store
                .end_session_record("s-other", "admin", t0 + 800)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            session::get(ephemeral.as_ref(), "s-other")
                .await
                .unwrap()
                .is_some()
        );
        sessions.sweep(policy, t0 + 790, t0 + 801).await.unwrap();
        assert_eq!(
            session::get(ephemeral.as_ref(), "s-other").await.unwrap(),
            None
        );

        // Past the absolute limit even a live session ends.
        assert_eq!(
            sessions.sweep(policy, t0 + 3600, t0 + 3600).await.unwrap(),
            1
        );
        assert_eq!(
            store
                .session("s-alive")
                .await
                .unwrap()
                .unwrap()
                .end_reason
                .as_deref(),
            Some("expired")
        );
        assert_eq!(store.sessions_of(&account.id, false).await.unwrap(), vec![]);

        // Password change: every open session of the account ends.
        sessions.record(&open("s-pw-1", t0 + 4000)).await.unwrap();
        sessions.record(&open("s-pw-2", t0 + 4001)).await.unwrap();
        assert_eq!(
            sessions
                .end_all(&account.id, EndReason::PasswordChanged, t0 + 4002)
                .await
                .unwrap(),
            2
        );

        // Each session ended through `Sessions` is audited once, with its reason.
        let reasons: Vec<String> = store
            .audit_records(1, 100)
            .await
            .unwrap()
            .iter()
            .filter(|r| r.event == "session_end")
            .map(|r| {
                serde_json::from_str::<serde_json::Value>(r.details.as_deref().unwrap())
                        .unwrap()["reason"]
                        .as_str()
                        .unwrap()
                        .to_owned()
            })
            .collect();
        assert_eq!(
            reasons,
            [
                "admin",
                "expired",
                "expired",
                "password_changed",
                "password_changed"
            ]
        );

        // Retention: rows ended before the cut are deleted, later ones stay.
        assert_eq!(store.prune_sessions(t0 + 3000).await.unwrap(), 3);
        assert_eq!(store.sessions_of(&account.id, true).await.unwrap().len(), 3);
    }

    fn master(byte: u8) -> yihao::crypto::MasterKey {
        yihao::crypto::MasterKey::from_bytes([byte; 32])
    }

    /// Security review 20: the master key can be rotated. Every derived key stays what it was
    /// (the first root is the first master key's bytes), a replaced key opens the root only until
    /// the re-wrap, and a wrong key opens nothing.
    pub async fn the_master_key_rotates_by_rewrapping_the_key_root(store: &dyn Store) {
        use yihao::protocol::key_root::{self, KeyRootError, Opener};
        let (a, b, c) = (master(1), master(2), master(3));
        assert_eq!(store.key_root().await.unwrap(), None);

        let (root, opener) = key_root::open(store, &a, &[], 10).await.unwrap();
        assert_eq!(opener, Opener::Created);
        assert_eq!(
            *root.derive("pii/blind-index"),
            *a.derive("pii/blind-index")
        );
        let (_, opener) = key_root::open(store, &a, &[], 11).await.unwrap();
        assert_eq!(opener, Opener::Current);

        // Rotation: B is configured, A listed as previous.
        assert!(matches!(
            key_root::open(store, &b, &[], 12).await,
            Err(KeyRootError::NotOpened)
        ));
        let (root, opener) = key_root::open(store, &b, &[c.first_root(), a.first_root()], 12)
            .await
            .unwrap();
        assert_eq!(opener, Opener::Previous(1));
        assert_eq!(*root.derive("subject/siv"), *a.derive("subject/siv"));
        let before = store.key_root().await.unwrap().unwrap();
        assert_eq!(
            key_root::rewrap(store, &b, &[a.first_root()], 13)
                .await
                .unwrap(),
            Opener::Previous(0)
        );
        let after = store.key_root().await.unwrap().unwrap();
        assert_ne!(before, after);
        assert_eq!(
            key_root::rewrap(store, &b, &[a.first_root()], 14)
                .await
                .unwrap(),
            Opener::Current
        );
        assert_eq!(store.key_root().await.unwrap().unwrap(), after);

        // After the rotation B alone opens the same root; A no longer does.
        let (root, opener) = key_root::open(store, &b, &[], 15).await.unwrap();
        assert_eq!(opener, Opener::Current);
        assert_eq!(*root.derive("client-secret"), *a.derive("client-secret"));
        assert!(matches!(
            key_root::open(store, &a, &[], 16).await,
            Err(KeyRootError::NotOpened)
        ));
        // A writer holding a stale row changes nothing.
        assert!(
            !store
                .put_key_root(b"stale", Some(&before), 17)
                .await
                .unwrap()
        );
        assert!(!store.put_key_root(b"second", None, 17).await.unwrap());
        assert_eq!(store.key_root().await.unwrap().unwrap(), after);
    }

    /// Second factors: counters only move forward (a replayed TOTP step, a cloned authenticator),
    /// a credential id is unique, recovery codes are spent once, the two-factor rule is set and
    /// cleared, and everything goes with the account.
    pub async fn factors_move_forward_and_recovery_codes_are_spent_once(store: &dyn Store) {
        use yihao::store::{AgreementRecord, FactorRecord};
        let account = stored_account(store, "6f0c6b6e-2c8e-4d54-9a53-7c1c2c9d0020", "赵六").await;
        let totp = FactorRecord {
            id: "f-totp".into(),
            account_id: account.id.clone(),
            kind: "totp".into(),
            label: "手机".into(),
            credential_id: None,
            secret: vec![1, 2, 3],
            counter: 100,
            backup_eligible: false,
            backup_state: false,
            created_at: 10,
            last_used_at: None,
        };
        store.add_factor(&totp).await.unwrap();
        let passkey = FactorRecord {
            id: "f-passkey".into(),
            kind: "passkey".into(),
            credential_id: Some("cred-1".into()),
            counter: 0,
            created_at: 11,
            ..totp.clone()
        };
        store.add_factor(&passkey).await.unwrap();
        let clash = FactorRecord {
            id: "f-clash".into(),
            ..passkey.clone()
        };
        assert!(
            store.add_factor(&clash).await.is_err(),
            "credential ids are unique"
        );
        assert_eq!(
            store.factors_of(&account.id).await.unwrap(),
            vec![totp.clone(), passkey.clone()]
        );
        assert!(
            !store
                .advance_factor("f-totp", 100, false, 20)
                .await
                .unwrap(),
            "same step"
        );
        assert!(
            !store.advance_factor("f-totp", 99, false, 20).await.unwrap(),
            "older step"
        );
        assert!(
            store
                .advance_factor("f-totp", 101, false, 20)
                .await
                .unwrap()
        );
        // A passkey that keeps no counter stays at 0; once it counted, going back is refused.
        assert!(
            store
                .advance_factor("f-passkey", 0, true, 21)
                .await
                .unwrap()
        );
        assert!(
            store
                .advance_factor("f-passkey", 5, true, 22)
                .await
                .unwrap()
        );
        assert!(
            !store
                .advance_factor("f-passkey", 0, true, 23)
                .await
                .unwrap()
        );
        assert!(
            !store
                .advance_factor("f-passkey", 5, true, 23)
                .await
                .unwrap()
        );
        let found = store.factor_by_credential("cred-1").await.unwrap().unwrap();
        assert_eq!(
            (found.counter, found.backup_state, found.last_used_at),
            (5, true, Some(22))
        );

        let hashes = vec![vec![1u8; 32], vec![2u8; 32]];
        store
            .replace_recovery_codes(&account.id, &hashes, 30)
            .await
            .unwrap();
        assert_eq!(store.recovery_codes_left(&account.id).await.unwrap(), 2);
        assert_eq!(
            store
                .spend_recovery_code(&account.id, &hashes[0], 31)
                .await
                .unwrap(),
            Some(true)
        );
        assert_eq!(
            store
                .spend_recovery_code(&account.id, &hashes[0], 32)
                .await
                .unwrap(),
            Some(false)
        );
        assert_eq!(
            store
                .spend_recovery_code(&account.id, &[9u8; 32], 32)
                .await
                .unwrap(),
            None
        );
        assert_eq!(store.recovery_codes_left(&account.id).await.unwrap(), 1);
        store
            .replace_recovery_codes(&account.id, &hashes, 33)
            .await
            .unwrap();
        assert_eq!(
            store.recovery_codes_left(&account.id).await.unwrap(),
            2,
            "a new set"
        );

        assert!(!store.second_factor_required(&account.id).await.unwrap());
        store
            .set_second_factor_required(&account.id, true, 40)
            .await
            .unwrap();
        store
            .set_second_factor_required(&account.id, true, 41)
            .await
            .unwrap();
        assert!(store.second_factor_required(&account.id).await.unwrap());
        store
            .set_second_factor_required(&account.id, false, 42)
            .await
            .unwrap();
        assert!(!store.second_factor_required(&account.id).await.unwrap());
        store
            .set_second_factor_required(&account.id, true, 43)
            .await
            .unwrap();

        let face = AgreementRecord {
            account_id: account.id.clone(),
            kind: "face_verification".into(),
            version: "v1".into(),
            agreed_at: 50,
        };
        store.add_agreement(&face).await.unwrap();
        store
            .add_agreement(&AgreementRecord {
                agreed_at: 51,
                ..face.clone()
            })
            .await
            .unwrap();
        assert_eq!(
            store.agreements(&account.id).await.unwrap(),
            vec![AgreementRecord {
                agreed_at: 51,
                ..face
            }]
        );

        assert!(store.remove_factor(&account.id, "f-totp").await.unwrap());
        assert!(
            !store
                .remove_factor("someone-else", "f-passkey")
                .await
                .unwrap()
        );
        assert!(store.delete_account(&account.id).await.unwrap());
        assert!(store.factors_of(&account.id).await.unwrap().is_empty());
        assert_eq!(store.factor_by_credential("cred-1").await.unwrap(), None);
        assert_eq!(store.recovery_codes_left(&account.id).await.unwrap(), 0);
        assert!(!store.second_factor_required(&account.id).await.unwrap());
    }

    pub async fn admin_roles_are_one_per_account_and_the_audit_log_is_searched(store: &dyn Store) {
        use yihao::domain::audit::{AuditEvent, EventType};
        use yihao::store::{AdminRoleRecord, AuditFilter, StoreError};
        let a = stored_account(store, "6f0c6b6e-2c8e-4d54-9a53-7c1c2c9d0031", "管理甲").await;
        let b = stored_account(store, "6f0c6b6e-2c8e-4d54-9a53-7c1c2c9d0032", "管理乙").await;
        let role = AdminRoleRecord {
            account_id: a.id.clone(),
            role: "security".into(),
            department: None,
            granted_at: 5,
            granted_by: "admin".into(),
        };
        store.grant_role(&role).await.unwrap();
        let second = AdminRoleRecord {
            role: "audit".into(),
            ..role.clone()
        };
        assert!(matches!(
            store.grant_role(&second).await,
            Err(StoreError::Conflict(_))
        ));
        let dept = AdminRoleRecord {
            account_id: b.id.clone(),
            role: "department".into(),
            department: Some("11110000000000000N".into()),
            ..role.clone()
        };
        store.grant_role(&dept).await.unwrap();
        assert_eq!(store.role_of(&a.id).await.unwrap(), Some(role.clone()));
        assert_eq!(
            store.admin_roles().await.unwrap(),
            vec![dept.clone(), role.clone()],
            "by role, then account"
        );
        assert!(store.revoke_role(&a.id).await.unwrap());
        assert!(!store.revoke_role(&a.id).await.unwrap());
        assert_eq!(store.role_of(&a.id).await.unwrap(), None);
        // Names by their beginning, in code-point order, page by page (the index's range scan).
        for (i, name) in ["管理丙", "管理", "管道工", "Zoë", "管理甲乙"]
            .iter()
            .enumerate()
        {
            stored_account(
                store,
                &format!("6f0c6b6e-2c8e-4d54-9a53-7c1c2c9d004{i}"),
                name,
            )
            .await;
        }
        let names = |rows: Vec<yihao::store::AccountRecord>| {
            rows.into_iter().map(|r| r.name).collect::<Vec<_>>()
        };
        assert_eq!(
            names(store.accounts_by_name("管理", None, 10).await.unwrap()),
            ["管理", "管理丙", "管理乙", "管理甲", "管理甲乙"]
        );
        let first = store.accounts_by_name("管理", None, 2).await.unwrap();
        let last = first.last().unwrap();
        assert_eq!(
            names(
                store
                    .accounts_by_name("管理", Some((&last.name, &last.id)), 10)
                    .await
                    .unwrap()
            ),
            ["管理乙", "管理甲", "管理甲乙"]
        );
        assert!(
            store
                .accounts_by_name("管理丁", None, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            names(store.accounts_by_name("Z", None, 10).await.unwrap()),
            ["Zoë"]
        );
        // Deleting an account takes its role with it.
        assert!(store.delete_account(&b.id).await.unwrap());
        assert!(store.admin_roles().await.unwrap().is_empty());

        let events = [
            (
                AuditEvent::success(EventType::AdminClient)
                    .actor("x")
                    .target("c1"),
                1_000,
            ),
            (
                AuditEvent::success(EventType::AdminAccount)
                    .actor("x")
                    .target("p1"),
                2_000,
            ),
            (
                AuditEvent::success(EventType::AdminClient)
                    .actor("y")
                    .target("c2"),
                3_000,
            ),
            (
                AuditEvent::success(EventType::AdminClient)
                    .actor("x")
                    .target("c3"),
                4_000,
            ),
        ];
        store.append_audit("n1", &events).await.unwrap();
        let all = AuditFilter {
            since_ms: 0,
            until_ms: i64::MAX,
            ..AuditFilter::default()
        };
        let search = |filter: AuditFilter, before: i64, limit: i64| async move {
            store
                .search_audit(&filter, before, limit)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.target.unwrap_or_default())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            search(all.clone(), i64::MAX, 10).await,
            ["c3", "c2", "p1", "c1"]
        );
        let by_x_clients = AuditFilter {
            event: Some("admin_client".into()),
            actor: Some("x".into()),
            ..all.clone()
        };
        assert_eq!(
            search(by_x_clients.clone(), i64::MAX, 10).await,
            ["c3", "c1"]
        );
        let newest = store
            .search_audit(&by_x_clients, i64::MAX, 1)
            .await
            .unwrap();
        assert_eq!(search(by_x_clients, newest[0].seq, 10).await, ["c1"]);
        let window = AuditFilter {
            since_ms: 2_000,
            until_ms: 4_000,
            ..all.clone()
        };
        assert_eq!(search(window, i64::MAX, 10).await, ["c2", "p1"]);
        let target = AuditFilter {
            target: Some("p1".into()),
            ..all
        };
        assert_eq!(search(target, i64::MAX, 10).await, ["p1"]);
    }

    pub async fn deletes_report_whether_something_was_deleted(store: &dyn Store) {
        let c = client("gone", 1);
        store.insert_client(&c).await.unwrap();
        assert!(store.delete_client(c.id()).await.unwrap());
        assert!(!store.delete_client(c.id()).await.unwrap());
        assert_eq!(store.client(c.id()).await.unwrap(), None);
    }
}

macro_rules! store_suite {
    ($backend:ident, $open:expr, $var:expr) => {
        mod $backend {
            use super::*;

            /// The store, and what must live as long as it (its folder or its schema).
            async fn open() -> Option<(Arc<dyn Store>, Box<dyn std::any::Any>)> {
                let tc = common::test_config();
                #[allow(clippy::redundant_closure_call)]
                let Some((database, guard)) = ($open)(tc).await else {
                    common::not_configured($var);
                    return None;
                };
                let store = open_store(&database).await.unwrap();
                store.migrate().await.unwrap();
                Some((store, guard))
            }

            #[tokio::test]
            async fn migrations_are_idempotent() {
                let Some((s, _t)) = open().await else { return };
                store_contract::migrations_are_idempotent(s.as_ref()).await;
            }
            #[tokio::test]
            async fn clients_round_trip() {
                let Some((s, _t)) = open().await else { return };
                store_contract::clients_round_trip(s.as_ref()).await;
            }
            #[tokio::test]
            async fn duplicate_client_ids_conflict_and_change_nothing() {
                let Some((s, _t)) = open().await else { return };
                store_contract::duplicate_client_ids_conflict_and_change_nothing(s.as_ref()).await;
            }
            #[tokio::test]
            async fn updates_replace_and_keep_rotated_secrets() {
                let Some((s, _t)) = open().await else { return };
                store_contract::updates_replace_and_keep_rotated_secrets(s.as_ref()).await;
            }
            #[tokio::test]
            async fn sessions_end_once_expire_and_fan_out() {
                let Some((s, _t)) = open().await else { return };
                store_contract::sessions_end_once_expire_and_fan_out(s.clone()).await;
            }
            #[tokio::test]
            async fn agreements_are_kept_and_deleted_with_their_account() {
                let Some((s, _t)) = open().await else { return };
                store_contract::agreements_are_kept_and_deleted_with_their_account(s.as_ref())
                    .await;
            }
            #[tokio::test]
            async fn consents_withdraw_and_the_audit_log_reads_by_person() {
                let Some((s, _t)) = open().await else { return };
                store_contract::consents_withdraw_and_the_audit_log_reads_by_person(s.as_ref())
                    .await;
            }
            #[tokio::test]
            async fn refresh_families_rotate_and_list_live_tokens() {
                let Some((s, _t)) = open().await else { return };
                store_contract::refresh_families_rotate_and_list_live_tokens(s.as_ref()).await;
            }
            #[tokio::test]
            async fn revocations_hold_until_the_token_expires() {
                let Some((s, _t)) = open().await else { return };
                store_contract::revocations_hold_until_the_token_expires(s.as_ref()).await;
            }
            #[tokio::test]
            async fn the_master_key_rotates_by_rewrapping_the_key_root() {
                let Some((s, _t)) = open().await else { return };
                store_contract::the_master_key_rotates_by_rewrapping_the_key_root(s.as_ref()).await;
            }
            #[tokio::test]
            async fn factors_move_forward_and_recovery_codes_are_spent_once() {
                let Some((s, _t)) = open().await else { return };
                store_contract::factors_move_forward_and_recovery_codes_are_spent_once(s.as_ref())
                    .await;
            }
            #[tokio::test]
            async fn admin_roles_are_one_per_account_and_the_audit_log_is_searched() {
                let Some((s, _t)) = open().await else { return };
                store_contract::admin_roles_are_one_per_account_and_the_audit_log_is_searched(
                    s.as_ref(),
                )
                .await;
            }
            #[tokio::test]
            async fn deletes_report_whether_something_was_deleted() {
                let Some((s, _t)) = open().await else { return };
                store_contract::deletes_report_whether_something_was_deleted(s.as_ref()).await;
            }
        }
    };
}

store_suite!(
    sqlite,
    |tc: common::TestConfig| async move {
        let db = tc.config.database.clone();
        Some((db, Box::new(tc) as Box<dyn std::any::Any>))
    },
    ""
);
store_suite!(
    postgres,
    |_| async {
        let db = common::postgres_database().await?;
        Some((db.config.clone(), Box::new(db) as Box<dyn std::any::Any>))
    },
    common::PG_URL_VAR
);

#[tokio::test]
async fn sqlite_creates_its_file_and_folder_with_wal() {
    let tc = common::test_config();
    let dir = tempfile::tempdir().unwrap();
    let mut db = tc.config.database.clone();
    db.url = format!(
        "sqlite://{}",
        dir.path().join("nested/deeper/y.db").display()
    );
    let store = open_store(&db).await.unwrap();
    store.migrate().await.unwrap();
    store.insert_client(&client("wal", 1)).await.unwrap();
    assert!(dir.path().join("nested/deeper/y.db").is_file());
    assert!(
        dir.path().join("nested/deeper/y.db-wal").exists(),
        "journal is not WAL"
    );
    store.close().await;
}

mod ephemeral_contract {
    use super::*;

    /// Rate limits count per fixed window chosen from the caller's clock: no sleeping, and every
    /// node sharing the store counts into the same window.
    pub async fn rate_limits_count_per_window_on_a_fixed_clock(e: &dyn Ephemeral) {
        use yihao::protocol::limits::{Limited, Rule, Verdict, hit, hit_all};
        let subject = format!("203.0.113.{}", uuid::Uuid::new_v4().as_u128() % 200);
        let rule = Rule {
            name: "login_ip",
            limit: 3,
            window_secs: 60,
        };
        let t = 1_800_000_010; // 10 s into a minute window
        for i in 0..3 {
            assert_eq!(
                hit(e, rule, &subject, t + i).await.unwrap(),
                Verdict::Allowed,
                "hit {i}"
            );
        }
        assert_eq!(
            hit(e, rule, &subject, t + 5).await.unwrap(),
            Verdict::Limited(Limited {
                retry_after: 45,
                rule: "login_ip",
                first: true
            }),
            "the fourth in the window waits for its end"
        );
        assert_eq!(
            hit(e, rule, &subject, t + 6).await.unwrap(),
            Verdict::Limited(Limited {
                retry_after: 44,
                rule: "login_ip",
                first: false
            }),
            "only the first refusal of a window is marked for the audit log"
        );
        assert_eq!(
            hit(e, rule, "another-subject", t + 5).await.unwrap(),
            Verdict::Allowed
        );
        assert_eq!(
            hit(e, rule, &subject, t + 50).await.unwrap(),
            Verdict::Allowed,
            "next window"
        );
        let off = Rule { limit: 0, ..rule };
        for _ in 0..10 {
            assert_eq!(
                hit(e, off, &subject, t).await.unwrap(),
                Verdict::Allowed,
                "0 is off"
            );
        }
        // Several rules: all are counted, the one over the limit answers.
        let tight = Rule {
            name: "login_account",
            limit: 1,
            window_secs: 1,
        };
        let checks = [(rule, "x-subject"), (tight, "x-account")];
        assert_eq!(hit_all(e, &checks, t).await.unwrap(), Verdict::Allowed);
        assert_eq!(
            hit_all(e, &checks, t).await.unwrap(),
            Verdict::Limited(Limited {
                retry_after: 1,
                rule: "login_account",
                first: true
            })
        );
        assert_eq!(
            hit(e, rule, "x-subject", t).await.unwrap(),
            Verdict::Allowed,
            "counted twice so far"
        );
        assert!(matches!(
            hit(e, rule, "x-subject", t).await.unwrap(),
            Verdict::Limited(_)
        ));
    }

    const SHORT: Duration = Duration::from_millis(100);
    const LONG: Duration = Duration::from_secs(60);
    const PAST_SHORT: Duration = Duration::from_millis(400);

    pub async fn put_get_delete(e: &dyn Ephemeral) {
        e.ping().await.unwrap();
        assert_eq!(e.get("k").await.unwrap(), None);
        e.put("k", b"v1", LONG).await.unwrap();
        assert_eq!(e.get("k").await.unwrap().as_deref(), Some(&b"v1"[..]));
        e.put("k", b"\x00binary\xff", LONG).await.unwrap();
        assert_eq!(
            e.get("k").await.unwrap().as_deref(),
            Some(&b"\x00binary\xff"[..])
        );
        assert!(e.delete("k").await.unwrap());
        assert!(!e.delete("k").await.unwrap());
        assert_eq!(e.get("k").await.unwrap(), None);
    }

    pub async fn values_expire(e: &dyn Ephemeral) {
        e.put("short", b"v", SHORT).await.unwrap();
        e.put("long", b"v", LONG).await.unwrap();
        // Real time: the adapter's own TTL (Redis PX, the memory store's Instant) is what expires it.
        tokio::time::sleep(PAST_SHORT).await;
        assert_eq!(e.get("short").await.unwrap(), None);
        assert_eq!(e.take("short").await.unwrap(), None);
        assert!(!e.delete("short").await.unwrap());
        assert!(e.get("long").await.unwrap().is_some());
    }

    pub async fn take_is_one_time_under_contention(e: Arc<dyn Ephemeral>) {
        e.put("code", b"once", LONG).await.unwrap();
        let takers: Vec<_> = (0..16)
            .map(|_| {
                let e = e.clone();
                tokio::spawn(async move { e.take("code").await.unwrap() })
            })
            .collect();
        let mut won = 0;
        for t in takers {
            if let Some(v) = t.await.unwrap() {
                assert_eq!(v, b"once");
                won += 1;
            }
        }
        assert_eq!(won, 1, "exactly one take gets the value");
        assert_eq!(e.get("code").await.unwrap(), None);
    }

    pub async fn put_if_absent_refuses_a_second_writer(e: &dyn Ephemeral) {
        assert!(e.put_if_absent("jti", b"a", SHORT).await.unwrap());
        assert!(!e.put_if_absent("jti", b"b", SHORT).await.unwrap());
        assert_eq!(e.get("jti").await.unwrap().as_deref(), Some(&b"a"[..]));
        // Real time: the adapter's own TTL (Redis PX, the memory store's Instant) is what expires it.
        tokio::time::sleep(PAST_SHORT).await;
        assert!(
            e.put_if_absent("jti", b"c", SHORT).await.unwrap(),
            "expired entries do not block"
        );
    }

    pub async fn counters_count_atomically_within_their_window(e: Arc<dyn Ephemeral>) {
        assert_eq!(e.increment("n", SHORT).await.unwrap(), 1);
        assert_eq!(e.increment("n", SHORT).await.unwrap(), 2);
        // Real time: the adapter's own TTL (Redis PX, the memory store's Instant) is what expires it.
        tokio::time::sleep(PAST_SHORT).await;
        assert_eq!(
            e.increment("n", SHORT).await.unwrap(),
            1,
            "a new window starts at one"
        );
        let incs: Vec<_> = (0..40)
            .map(|_| {
                let e = e.clone();
                tokio::spawn(async move { e.increment("many", LONG).await.unwrap() })
            })
            .collect();
        let mut seen = Vec::new();
        for t in incs {
            seen.push(t.await.unwrap());
        }
        seen.sort_unstable();
        assert_eq!(seen, (1..=40).collect::<Vec<_>>());
        e.put("text", b"not a number", LONG).await.unwrap();
        assert!(e.increment("text", LONG).await.is_err());
        assert_eq!(
            e.get("text").await.unwrap().as_deref(),
            Some(&b"not a number"[..])
        );
    }

    pub async fn published_messages_reach_every_subscriber_of_the_channel(e: &dyn Ephemeral) {
        let mut a = e.subscribe("clients").await.unwrap();
        let mut b = e.subscribe("clients").await.unwrap();
        let mut other = e.subscribe("keys").await.unwrap();
        e.publish("clients", b"client 42 changed").await.unwrap();
        for sub in [&mut a, &mut b] {
            let got = tokio::time::timeout(Duration::from_secs(5), sub.recv())
                .await
                .unwrap();
            assert_eq!(got, Some(Notice::Message(b"client 42 changed".to_vec())));
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(200), other.recv())
                .await
                .is_err(),
            "a message reached another channel"
        );
        e.publish("nobody-listens", b"x").await.unwrap();
    }
}

macro_rules! ephemeral_suite {
    ($backend:ident, $open:expr, $var:expr) => {
        mod $backend {
            use super::*;

            async fn open() -> Option<Arc<dyn Ephemeral>> {
                #[allow(clippy::redundant_closure_call)]
                let Some(cache) = ($open)().await else {
                    common::not_configured($var);
                    return None;
                };
                Some(open_ephemeral(&cache).unwrap())
            }

            #[tokio::test]
            async fn rate_limits_count_per_window_on_a_fixed_clock() {
                let Some(e) = open().await else { return };
                ephemeral_contract::rate_limits_count_per_window_on_a_fixed_clock(e.as_ref()).await;
            }
            #[tokio::test]
            async fn put_get_delete() {
                let Some(e) = open().await else { return };
                ephemeral_contract::put_get_delete(e.as_ref()).await;
            }
            #[tokio::test]
            async fn values_expire() {
                let Some(e) = open().await else { return };
                ephemeral_contract::values_expire(e.as_ref()).await;
            }
            #[tokio::test]
            async fn take_is_one_time_under_contention() {
                let Some(e) = open().await else { return };
                ephemeral_contract::take_is_one_time_under_contention(e).await;
            }
            #[tokio::test]
            async fn put_if_absent_refuses_a_second_writer() {
                let Some(e) = open().await else { return };
                ephemeral_contract::put_if_absent_refuses_a_second_writer(e.as_ref()).await;
            }
            #[tokio::test]
            async fn counters_count_atomically_within_their_window() {
                let Some(e) = open().await else { return };
                ephemeral_contract::counters_count_atomically_within_their_window(e).await;
            }
            #[tokio::test]
            async fn published_messages_reach_every_subscriber_of_the_channel() {
                let Some(e) = open().await else { return };
                ephemeral_contract::published_messages_reach_every_subscriber_of_the_channel(
                    e.as_ref(),
                )
                .await;
            }
        }
    };
}

ephemeral_suite!(
    memory,
    || async { Some(common::test_config().config.cache) },
    ""
);
ephemeral_suite!(redis, common::redis_cache, common::REDIS_URL_VAR);

#[tokio::test]
async fn memory_expiry_reclaims_memory_without_reads() {
    let store = yihao::store::memory::MemoryEphemeral::new(Duration::from_millis(10));
    for i in 0..1000 {
        store
            .put(&format!("k{i}"), b"value", Duration::from_millis(30))
            .await
            .unwrap();
    }
    store
        .put("kept", b"value", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(store.held(), 1001);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while store.held() > 1 && tokio::time::Instant::now() < deadline {
        // Real time: the memory store's sweeper task frees entries on its own timer.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.held(), 1, "expired entries were not swept");
}

#[tokio::test]
async fn redis_keys_are_isolated_by_prefix() {
    let (Some(a), Some(b)) = (common::redis_cache().await, common::redis_cache().await) else {
        common::not_configured(common::REDIS_URL_VAR);
        return;
    };
    let (a, b) = (open_ephemeral(&a).unwrap(), open_ephemeral(&b).unwrap());
    a.put("same", b"a", Duration::from_secs(60)).await.unwrap();
    assert_eq!(b.get("same").await.unwrap(), None);
    let mut sub = b.subscribe("ch").await.unwrap();
    a.publish("ch", b"x").await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(200), sub.recv())
            .await
            .is_err()
    );
}
