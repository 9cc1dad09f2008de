//! The cookies a sign-in sets: Meshery's `token` (base64 OAuth2 document) and the
//! provider's name, `HttpOnly`, `SameSite=Lax`, `Secure` behind https.

/// A session cookie; `Secure` when browsers reach the server over https (`--public-url`).
pub fn cookie(config: &crate::app::Config, name: &str, value: &str) -> String {
    let secure = if config.https() { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax{secure}")
}

/// Meshery's `token` cookie value: base64 of an OAuth2 token document.
pub fn token_cookie_value(token: &str, expiry: i64) -> String {
    let expiry = chrono::DateTime::from_timestamp(expiry, 0)
        .unwrap_or_default()
        .to_rfc3339();
    let doc = serde_json::json!({"access_token": token, "token_type": "bearer", "refresh_token": "", "expiry": expiry});
    base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        doc.to_string(),
    )
}
