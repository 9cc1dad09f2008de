//! A database of its own on the PostgreSQL server an administrator's URL names (the one
//! `cargo xtask test`/`bench` start); shared by the contract harness, the replica tests
//! and the bench (`#[path]` module: they are separate crates).

/// Creates database `name` (kept if it exists: a server restarted on the same data);
/// its URL (the administrator's, with its path replaced).
pub async fn create(admin: &str, name: &str) -> String {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .expect("connecting to the test PostgreSQL");
    let created = sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await;
    match created {
        Ok(_) => {}
        // 42P04: it exists
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
        Err(e) => panic!("CREATE DATABASE {name}: {e}"),
    }
    let _ = conn.close().await;
    let mut url = url::Url::parse(admin).expect("a database URL");
    url.set_path(name);
    url.to_string()
}

/// A new database with a fresh name starting with `prefix`.
#[allow(dead_code)] // the contract harness names its databases after homes
pub async fn fresh(admin: &str, prefix: &str) -> String {
    create(
        admin,
        &format!("{prefix}_{}", uuid::Uuid::new_v4().simple()),
    )
    .await
}
