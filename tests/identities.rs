//! Accounts, passwords, lockout, organisations, PII at rest, legacy import and PII key rotation, on
//! SQLite always and on PostgreSQL when YIHAO_TEST_DATABASE_URL is set. Lockout runs on a fixed
//! clock: `now` is a parameter, nothing sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use yihao::app::{open_ephemeral, open_store};
use yihao::domain::account::AccountStatus;
use yihao::domain::identifiers::CreditCode;
use yihao::domain::organisation::{OrgId, Role, Scope};
use yihao::domain::password::Password;
use yihao::protocol::accounts::{AccountError, Identities, LoginError, NewAccount};
use yihao::protocol::import::Outcome;
use yihao::store::Store;

use common::people::{Person, grant, new_id};

/// 2026-11-27 12:00 UTC.
const NOW: i64 = 1_795_780_800;

/// A person at real-name level 2 from the population register, all recorded at [`NOW`].
fn new_account(number: &str, name: &str, phone: Option<&str>) -> NewAccount {
    Person {
        phone,
        source: "population register",
        document_at: NOW,
        verified_at: NOW,
        ..Person::new(number, name)
    }
    .account()
}

/// 张三 (11010519491231002X, phone 13812341234) with `password`, created at [`NOW`].
async fn zhang_san(ids: &Identities, password: &Password) {
    ids.create_account(
        new_id(),
        new_account("11010519491231002X", "张三", Some("13812341234")),
        Some(password),
        NOW,
    )
    .await
    .unwrap();
}

/// What a backend test needs: the identities, the store, and what must outlive them.
struct Backend {
    ids: Identities,
    store: Arc<dyn Store>,
    sqlite_file: Option<std::path::PathBuf>,
    _keep: Box<dyn std::any::Any>,
}

async fn sqlite() -> Option<Backend> {
    let tc = common::test_config();
    let store = open_store(&tc.config.database).await.unwrap();
    store.migrate().await.unwrap();
    let file = tc
        .config
        .database
        .url
        .trim_start_matches("sqlite://")
        .into();
    let ids = common::identities(store.clone(), open_ephemeral(&tc.config.cache).unwrap(), 1);
    Some(Backend {
        ids,
        store,
        sqlite_file: Some(file),
        _keep: Box::new(tc),
    })
}

async fn postgres() -> Option<Backend> {
    let Some(db) = common::postgres_database().await else {
        common::not_configured(common::PG_URL_VAR);
        return None;
    };
    let store = open_store(&db.config).await.unwrap();
    store.migrate().await.unwrap();
    let ids = common::identities(
        store.clone(),
        open_ephemeral(&common::test_config().config.cache).unwrap(),
        1,
    );
    Some(Backend {
        ids,
        store,
        sqlite_file: None,
        _keep: Box::new(db),
    })
}

mod suite {
    use super::*;

    pub async fn accounts_are_found_by_document_legacy_number_and_phone(b: Backend) {
        let ids = &b.ids;
        let a = ids
            .create_account(
                new_id(),
                new_account("11010519491231002X", "张三", Some("13812341234")),
                None,
                NOW,
            )
            .await
            .unwrap();
        for key in [
            "11010519491231002X",
            "11010519491231002x",
            "110105491231002",
            "13812341234",
            "+86 138 1234 1234",
        ] {
            let found = ids
                .find(key, NOW)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{key} not found"));
            assert_eq!(found, a);
        }
        assert_eq!(ids.find("440305200002290029", NOW).await.unwrap(), None);
        assert_eq!(ids.find("13900000000", NOW).await.unwrap(), None);
        assert_eq!(ids.find("not an identifier", NOW).await.unwrap(), None);
        let again = ids
            .create_account(
                new_id(),
                new_account("110105491231002", "张三", None),
                None,
                NOW,
            )
            .await;
        assert!(
            matches!(again, Err(AccountError::Taken(ref w)) if w == "document"),
            "{again:?}"
        );
        let phone = ids
            .create_account(
                new_id(),
                new_account("440305200002290029", "李四", Some("13812341234")),
                None,
                NOW,
            )
            .await;
        assert!(
            matches!(phone, Err(AccountError::Taken(ref w)) if w == "phone"),
            "{phone:?}"
        );
        assert_eq!(
            ids.find("440305200002290029", NOW).await.unwrap(),
            None,
            "a refused account left rows behind"
        );
    }

    pub async fn no_plain_id_number_or_phone_reaches_the_database(b: Backend) {
        let ids = &b.ids;
        let people = [
            ("11010519491231002X", "13812341234"),
            ("440305200002290029", "13912345678"),
            ("510104200808080072", "15011112222"),
        ];
        for (number, phone) in people {
            let a = ids
                .create_account(
                    new_id(),
                    new_account(number, "王五", Some(phone)),
                    Some(&Password::new("Str0ng-pass!")),
                    NOW,
                )
                .await
                .unwrap();
            ids.add_legacy_id(&a.id, "hall", number).await.unwrap();
        }
        ids.create_account(
            new_id(),
            new_account("510104080808007", "赵六", None),
            None,
            NOW,
        )
        .await
        .unwrap();
        let secrets = [
            "11010519491231002X",
            "440305200002290029",
            "510104200808080072",
            "13812341234",
            "13912345678",
            "15011112222",
            "510104080808007",
        ];
        let haystack: Vec<u8> = match &b.sqlite_file {
            Some(file) => {
                let mut bytes = std::fs::read(file).unwrap();
                bytes.extend(std::fs::read(format!("{}-wal", file.display())).unwrap_or_default());
                bytes
            }
            None => {
                let tables = [
                    "accounts",
                    "account_documents",
                    "credentials",
                    "password_history",
                    "legacy_ids",
                    "organisations",
                    "org_members",
                ];
                let mut text = String::new();
                for t in tables {
                    let rows: Vec<String> = sqlx_rows(&b, t).await;
                    text.extend(rows);
                }
                assert!(
                    text.contains("王五"),
                    "the dump does not hold the table contents"
                );
                text.into_bytes()
            }
        };
        assert!(haystack.len() > 1000);
        for s in secrets {
            assert!(
                !haystack.windows(s.len()).any(|w| w == s.as_bytes()),
                "{s} found in plain text"
            );
        }
        // Everything still opens.
        assert_eq!(
            ids.legacy_ids(
                &ids.find("440305200002290029", NOW)
                    .await
                    .unwrap()
                    .unwrap()
                    .id
            )
            .await
            .unwrap(),
            vec![("hall".to_owned(), "440305200002290029".to_owned())]
        );
    }

    async fn sqlx_rows(b: &Backend, table: &str) -> Vec<String> {
        let _ = b;
        let url = &b
            ._keep
            .downcast_ref::<common::TestDatabase>()
            .unwrap()
            .config
            .url;
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT t::text FROM {table} t"
        )))
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;
        rows
    }

    pub async fn lockout_after_five_failures_for_fifteen_minutes_and_no_enumeration(b: Backend) {
        let ids = &b.ids;
        let good = Password::new("Str0ng-pass!");
        let bad = Password::new("Wrong-pass1!");
        zhang_san(ids, &good).await;
        for identifier in ["11010519491231002X", "440305200002290029"] {
            for attempt in 1..=4 {
                let e = ids
                    .login(identifier, &bad, NOW + attempt)
                    .await
                    .unwrap_err();
                assert!(
                    matches!(e, LoginError::InvalidCredentials),
                    "{identifier} attempt {attempt}: {e:?}"
                );
            }
            let e = ids.login(identifier, &bad, NOW + 5).await.unwrap_err();
            assert!(
                matches!(e, LoginError::LockedOut { until, started: true } if until == NOW + 5 + 900),
                "{identifier}: known and unknown lock alike: {e:?}"
            );
            let e = ids.login(identifier, &good, NOW + 600).await.unwrap_err();
            assert!(
                matches!(e, LoginError::LockedOut { until, started: false } if until == NOW + 905),
                "{identifier}: even the right password waits: {e:?}"
            );
        }
        let a = ids
            .login("11010519491231002X", &good, NOW + 906)
            .await
            .unwrap();
        assert_eq!(a.name.as_str(), "张三");
        // A success resets the count: four more failures do not lock.
        for attempt in 1..=4 {
            assert!(matches!(
                ids.login("13812341234", &bad, NOW + 1000 + attempt)
                    .await
                    .unwrap_err(),
                LoginError::InvalidCredentials
            ));
        }
        ids.login("13812341234", &good, NOW + 1005).await.unwrap();
        // The status is revealed only to someone who knows the password.
        ids.set_status(&a.id, AccountStatus::Disabled, NOW)
            .await
            .unwrap();
        assert!(matches!(
            ids.login("13812341234", &bad, NOW + 1010)
                .await
                .unwrap_err(),
            LoginError::InvalidCredentials
        ));
        assert!(matches!(
            ids.login("13812341234", &good, NOW + 1011)
                .await
                .unwrap_err(),
            LoginError::Unavailable("disabled")
        ));
    }

    /// Security review 3: the lock was checked, then the password hashed, then the failure counted,
    /// so concurrent guesses all passed the check. Counted first, at most `lockout_threshold` (5) of
    /// ten concurrent guesses are checked; the rest are refused as locked, without password work.
    pub async fn concurrent_guesses_cannot_pass_the_lockout(b: Backend) {
        let ids = &b.ids;
        let good = Password::new("Str0ng-pass!");
        let bad = Password::new("Wrong-pass1!");
        zhang_san(ids, &good).await;
        let guesses = (0..10).map(|_| ids.login("13812341234", &bad, NOW + 1));
        let outcomes = futures::future::join_all(guesses).await;
        let checked = outcomes
            .iter()
            .filter(|o| matches!(o, Err(LoginError::InvalidCredentials)))
            .count();
        let locked: Vec<bool> = outcomes
            .iter()
            .filter_map(|o| match o {
                Err(LoginError::LockedOut { started, .. }) => Some(*started),
                _ => None,
            })
            .collect();
        assert_eq!(checked, 4, "{outcomes:?}");
        assert_eq!(locked.len(), 6, "{outcomes:?}");
        assert_eq!(locked.iter().filter(|s| **s).count(), 1, "one lockout");
        assert!(matches!(
            ids.login("13812341234", &good, NOW + 2).await,
            Err(LoginError::LockedOut { .. })
        ));
    }

    /// Security review 4: ID numbers are not secret, and five wrong passwords from anywhere locked
    /// the account for everyone. Failures lock the account for their source; the owner, elsewhere,
    /// still signs in; only failures spread over many sources reach the account-wide lock; and a
    /// source locked again within a day waits twice as long.
    pub async fn a_stranger_cannot_lock_the_owner_out(b: Backend) {
        let ids = &b.ids;
        let good = Password::new("Str0ng-pass!");
        let bad = Password::new("Wrong-pass1!");
        zhang_san(ids, &good).await;
        let id = "11010519491231002X";
        let stranger = Some("198.51.100.7");
        for attempt in 1..=4 {
            assert!(matches!(
                ids.login_from(id, &bad, stranger, NOW + attempt).await,
                Err(LoginError::InvalidCredentials)
            ));
        }
        assert!(matches!(
            ids.login_from(id, &bad, stranger, NOW + 5).await,
            Err(LoginError::LockedOut { until, started: true }) if until == NOW + 5 + 900
        ));
        assert!(matches!(
            ids.login_from(id, &good, stranger, NOW + 6).await,
            Err(LoginError::LockedOut { .. })
        ));
        // The owner, from their own address, is not locked out.
        ids.login_from(id, &good, Some("203.0.113.20"), NOW + 7)
            .await
            .unwrap();
        // Locked again within a day: twice as long.
        for attempt in 1..=4 {
            let _ = ids
                .login_from(id, &bad, stranger, NOW + 1000 + attempt)
                .await;
        }
        assert!(matches!(
            ids.login_from(id, &bad, stranger, NOW + 1005).await,
            Err(LoginError::LockedOut { until, started: true }) if until == NOW + 1005 + 1800
        ));
        // Failures spread over many sources reach the account-wide lock (20).
        for source in 0..5 {
            let address = format!("192.0.2.{source}");
            for attempt in 0..4 {
                let _ = ids
                    .login_from(id, &bad, Some(&address), NOW + 3000 + attempt)
                    .await;
            }
        }
        assert!(matches!(
            ids.login_from(id, &good, Some("203.0.113.20"), NOW + 3010)
                .await,
            Err(LoginError::LockedOut { .. })
        ));
    }

    pub async fn passwords_follow_policy_history_and_legacy_hashes_upgrade(b: Backend) {
        let ids = &b.ids;
        let a = ids
            .create_account(
                new_id(),
                new_account("11010519491231002X", "张三", Some("13812341234")),
                Some(&Password::new("First-pass1")),
                NOW,
            )
            .await
            .unwrap();
        let weak = ids
            .set_password(&a.id, &Password::new("weakpass"), NOW)
            .await
            .unwrap_err();
        assert!(weak.to_string().contains("at least 3"), "{weak}");
        let personal = ids
            .set_password(&a.id, &Password::new("Aa!13812341234"), NOW)
            .await
            .unwrap_err();
        assert!(
            personal.to_string().contains("ID number or phone"),
            "{personal}"
        );
        for p in ["Second-pass2", "Third-pass3", "Fourth-pass4", "Fifth-pass5"] {
            ids.set_password(&a.id, &Password::new(p), NOW)
                .await
                .unwrap();
        }
        for reused in ["First-pass1", "Third-pass3", "Fifth-pass5"] {
            let e = ids
                .set_password(&a.id, &Password::new(reused), NOW)
                .await
                .unwrap_err();
            assert!(e.to_string().contains("last 5"), "{reused}: {e}");
        }
        ids.set_password(&a.id, &Password::new("Sixth-pass6"), NOW)
            .await
            .unwrap();
        ids.set_password(&a.id, &Password::new("First-pass1"), NOW)
            .await
            .unwrap();
        assert_eq!(
            b.store.password_history(a.id.as_str()).await.unwrap().len(),
            4,
            "history keeps 4 + the current"
        );

        let bcrypt = bcrypt::hash_with_salt("Legacy#2019", 4, [9u8; 16])
            .unwrap()
            .format_for_version(bcrypt::Version::TwoB);
        let line = serde_json::json!({
            "source": "hall", "user_id": "u-legacy", "id_number": "440305200002290029", "name": "李四",
            "password": {"format": "bcrypt", "hash": bcrypt},
        });
        assert_eq!(
            ids.import_line(&line.to_string(), NOW).await.unwrap(),
            Outcome::Created
        );
        let id = ids
            .find("440305200002290029", NOW)
            .await
            .unwrap()
            .unwrap()
            .id;
        assert!(
            b.store
                .password_hash(id.as_str())
                .await
                .unwrap()
                .unwrap()
                .starts_with("$2b$")
        );
        ids.login("440305200002290029", &Password::new("Legacy#2019"), NOW)
            .await
            .unwrap();
        let upgraded = b.store.password_hash(id.as_str()).await.unwrap().unwrap();
        assert!(upgraded.starts_with("$argon2id$"), "{upgraded}");
        ids.login("440305200002290029", &Password::new("Legacy#2019"), NOW)
            .await
            .unwrap();
    }

    pub async fn organisations_and_mandates(b: Backend) {
        let ids = &b.ids;
        let lr = ids
            .create_account(
                new_id(),
                new_account("11010519491231002X", "法人", None),
                None,
                NOW,
            )
            .await
            .unwrap()
            .id;
        let admin = ids
            .create_account(
                new_id(),
                new_account("440305200002290029", "管理员", None),
                None,
                NOW,
            )
            .await
            .unwrap()
            .id;
        let agent = ids
            .create_account(
                new_id(),
                new_account("510104200808080072", "经办人", None),
                None,
                NOW,
            )
            .await
            .unwrap()
            .id;
        let code = CreditCode::parse("91512081MA62K0260E").unwrap();
        let org = ids
            .create_org(
                OrgId::parse("o-1").unwrap(),
                code.clone(),
                "测试有限公司",
                NOW,
            )
            .await
            .unwrap();
        let dup = ids
            .create_org(OrgId::parse("o-2").unwrap(), code.clone(), "另一个", NOW)
            .await;
        assert!(
            matches!(dup, Err(AccountError::Taken(ref w)) if w == "organisation"),
            "{dup:?}"
        );
        assert_eq!(b.store.org_by_code(&code).await.unwrap().unwrap(), org);

        grant(
            ids,
            &org,
            &lr,
            Role::LegalRepresentative,
            Scope::All,
            None,
            None,
            NOW,
        )
        .await
        .unwrap();
        let second = grant(
            ids,
            &org,
            &admin,
            Role::LegalRepresentative,
            Scope::All,
            None,
            None,
            NOW,
        )
        .await;
        assert!(
            matches!(second, Err(AccountError::Taken(ref w)) if w == "legal representative"),
            "{second:?}"
        );
        let by_agent = grant(
            ids,
            &org,
            &admin,
            Role::Administrator,
            Scope::All,
            None,
            Some(agent.clone()),
            NOW,
        )
        .await;
        assert!(by_agent.is_err(), "an agent granted an administrator");
        grant(
            ids,
            &org,
            &admin,
            Role::Administrator,
            Scope::All,
            None,
            Some(lr.clone()),
            NOW,
        )
        .await
        .unwrap();
        let items = Scope::parse(&["tax.declare".into(), "330100-001".into()]).unwrap();
        let m = grant(
            ids,
            &org,
            &agent,
            Role::Agent,
            items.clone(),
            Some(NOW + 86_400),
            Some(admin.clone()),
            NOW,
        )
        .await
        .unwrap();
        assert_eq!(m.scope, items);
        let members = b.store.members(&org.id).await.unwrap();
        assert_eq!(members.len(), 3);
        assert_eq!(
            b.store.memberships_of(&agent).await.unwrap(),
            vec![m.clone()]
        );
        assert!(b.store.revoke(&org.id, &agent, Role::Agent).await.unwrap());
        assert!(!b.store.revoke(&org.id, &agent, Role::Agent).await.unwrap());
        assert!(b.store.memberships_of(&agent).await.unwrap().is_empty());
    }

    pub async fn pii_rotation_reseals_every_row_and_keeps_them_readable(b: Backend) {
        let ids = &b.ids;
        let mut accounts = Vec::new();
        for i in 0..25u32 {
            let number = common::resident_id(i);
            let a = ids
                .create_account(
                    new_id(),
                    new_account(&number, "钱七", Some(&format!("1390000{i:04}"))),
                    None,
                    NOW,
                )
                .await
                .unwrap();
            ids.add_legacy_id(&a.id, "tax", &format!("user-{i}"))
                .await
                .unwrap();
            accounts.push(a);
        }
        let rotated = common::identities(b.store.clone(), ids.ephemeral.clone(), 2);
        let mut total = 0;
        loop {
            let done = rotated.reseal_batch(7).await.unwrap();
            if done == 0 {
                break;
            }
            total += done;
        }
        assert_eq!(total, 75, "25 phones, 25 documents, 25 legacy ids");
        assert!(
            b.store
                .accounts_sealed_otherwise(2, 100)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            b.store
                .documents_sealed_otherwise(2, 100)
                .await
                .unwrap()
                .is_empty()
        );
        for a in &accounts {
            assert_eq!(&rotated.account(&a.id).await.unwrap().unwrap(), a);
            assert_eq!(
                &ids.account(&a.id).await.unwrap().unwrap(),
                a,
                "a node still on version 1 reads version 2"
            );
        }
        assert_eq!(
            rotated
                .find(&common::resident_id(3), NOW)
                .await
                .unwrap()
                .unwrap(),
            accounts[3]
        );
    }

    /// `YIHAO_TEST_IMPORT_LINES` lines (default 20 000; the release figures in the notes are for
    /// 100 000): four fifths people from "hall", the last fifth some of them again from "tax"
    /// (merged), with every hash format; every 997th line invalid; every 400th "tax" line names
    /// someone else.
    pub async fn legacy_import_merges_reports_and_is_idempotent(b: Backend) {
        let total: u32 = std::env::var("YIHAO_TEST_IMPORT_LINES")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n >= 1000)
            .unwrap_or(20_000);
        let hall = total / 5 * 4;
        let ids = &b.ids;
        let bcrypt = bcrypt::hash_with_salt("Legacy#2019", 4, [3u8; 16])
            .unwrap()
            .format_for_version(bcrypt::Version::TwoA);
        let hex = |d: yihao::crypto::password::LegacyDigest, input: &[u8]| {
            d.digest(input)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        use yihao::crypto::password::LegacyDigest::*;
        let formats = [
            serde_json::json!({"format": "bcrypt", "hash": bcrypt}),
            serde_json::json!({"format": "md5", "hash": hex(Md5, b"s1Legacy#2019"), "salt": "s1", "salt_position": "prefix"}),
            serde_json::json!({"format": "sha1", "hash": hex(Sha1, b"Legacy#2019s2"), "salt": "s2", "salt_position": "suffix"}),
            serde_json::json!({"format": "sha256", "hash": hex(Sha256, b"Legacy#2019")}),
            serde_json::json!({"format": "sm3", "hash": hex(Sm3, b"s3Legacy#2019"), "salt": "s3", "salt_position": "prefix"}),
        ];
        let mut lines = Vec::with_capacity(total as usize);
        let (mut rejected, mut conflicts) = (0, 0);
        for n in 0..total {
            let (source, person) = if n < hall {
                ("hall", n)
            } else {
                ("tax", n - hall)
            };
            let mut line = serde_json::json!({
                "source": source, "user_id": format!("{source}-{person}"),
                "id_number": common::resident_id(person), "name": format!("居民{person}"),
                "phone": format!("139{person:08}"),
                "password": formats[(n % 5) as usize].clone(),
            });
            if n % 997 == 0 {
                line["id_number"] = serde_json::Value::from("110105194912310021");
                rejected += 1;
            } else if n >= hall && n % 400 == 0 && !(n - hall).is_multiple_of(997) {
                line["name"] = serde_json::Value::from("别人");
                conflicts += 1;
            }
            lines.push(line.to_string());
        }
        let mut counts = std::collections::HashMap::<&str, u32>::new();
        // As `yihao account import` does: lanes by subject, in file order within a lane.
        for chunk in lines.chunks(500) {
            let numbered: Vec<(u64, String)> = chunk
                .iter()
                .cloned()
                .enumerate()
                .map(|(i, l)| (i as u64, l))
                .collect();
            let lanes = yihao::protocol::import::lanes(numbered, 8, NOW);
            let results = futures::future::join_all(lanes.into_iter().map(|lane| async move {
                let mut out = Vec::new();
                for (_, line) in lane {
                    out.push(ids.import_line(&line, NOW).await);
                }
                out
            }))
            .await;
            for r in results.into_iter().flatten() {
                *counts
                    .entry(match r.unwrap() {
                        Outcome::Created => "created",
                        Outcome::Merged => "merged",
                        Outcome::Unchanged => "unchanged",
                        Outcome::Conflict(_) => "conflict",
                        Outcome::Rejected(_) => "rejected",
                    })
                    .or_default() += 1;
            }
        }
        let invalid_hall = (0..hall).filter(|n| n % 997 == 0).count() as u32;
        // A tax line whose person's hall line was invalid creates that person instead of merging.
        let tax_creating = (hall..total)
            .filter(|n| (n - hall).is_multiple_of(997) && n % 997 != 0)
            .count() as u32;
        assert_eq!(counts.get("rejected").copied().unwrap_or(0), rejected);
        assert_eq!(counts.get("conflict").copied().unwrap_or(0), conflicts);
        assert_eq!(counts["created"], hall - invalid_hall + tax_creating);
        assert_eq!(
            counts["merged"],
            (total - hall) - rejected + invalid_hall - conflicts - tax_creating
        );
        // Both legacy ids of a merged person are recorded on one account.
        let merged = ids
            .find(&common::resident_id(1), NOW)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            ids.legacy_ids(&merged.id).await.unwrap(),
            vec![
                ("hall".to_owned(), "hall-1".to_owned()),
                ("tax".to_owned(), "tax-1".to_owned())
            ]
        );
        // Every format verifies at login.
        for person in 1..=5 {
            ids.login(
                &common::resident_id(person),
                &Password::new("Legacy#2019"),
                NOW,
            )
            .await
            .unwrap();
        }
        // Importing again changes nothing.
        for line in lines.iter().step_by(97) {
            let again = ids.import_line(line, NOW).await.unwrap();
            assert!(
                matches!(
                    again,
                    Outcome::Unchanged | Outcome::Rejected(_) | Outcome::Conflict(_)
                ),
                "{again:?}"
            );
        }
    }
}

macro_rules! identity_suite {
    ($backend:ident) => {
        mod $backend {
            use super::*;

            #[tokio::test]
            async fn accounts_are_found_by_document_legacy_number_and_phone() {
                let Some(b) = super::$backend().await else {
                    return;
                };
                suite::accounts_are_found_by_document_legacy_number_and_phone(b).await;
            }
            #[tokio::test]
            async fn no_plain_id_number_or_phone_reaches_the_database() {
                let Some(b) = super::$backend().await else {
                    return;
                };
                suite::no_plain_id_number_or_phone_reaches_the_database(b).await;
            }
            #[tokio::test]
            async fn lockout_after_five_failures_for_fifteen_minutes_and_no_enumeration() {
                let Some(b) = super::$backend().await else {
                    return;
                };
                suite::lockout_after_five_failures_for_fifteen_minutes_and_no_enumeration(b).await;
            }
            #[tokio::test]
            async fn concurrent_guesses_cannot_pass_the_lockout() {
                let Some(b) = super::$backend().await else {
                    return;
                };
                suite::concurrent_guesses_cannot_pass_the_lockout(b).await;
            }
            #[tokio::test]
            async fn a_stranger_cannot_lock_the_owner_out() {
                let Some(b) = super::$backend().await else {
                    return;
                };
                suite::a_stranger_cannot_lock_the_owner_out(b).await;
            }
            #[tokio::test]
            async fn passwords_follow_policy_history_and_legacy_hashes_upgrade() {
                let Some(b) = super::$backend().await else {
                    return;
                };
                suite::passwords_follow_policy_history_and_legacy_hashes_upgrade(b).await;
            }
            #[tokio::test]
            async fn organisations_and_mandates() {
                let Some(b) = super::$backend().await else {
                    return;
                };
                suite::organisations_and_mandates(b).await;
            }
            #[tokio::test]
            async fn pii_rotation_reseals_every_row_and_keeps_them_readable() {
                let Some(b) = super::$backend().await else {
                    return;
                };
                suite::pii_rotation_reseals_every_row_and_keeps_them_readable(b).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn legacy_import_merges_reports_and_is_idempotent() {
                let Some(b) = super::$backend().await else {
                    return;
                };
                suite::legacy_import_merges_reports_and_is_idempotent(b).await;
            }
        }
    };
}

identity_suite!(sqlite);
identity_suite!(postgres);
