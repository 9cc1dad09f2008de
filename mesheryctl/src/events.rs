//! `events list` (REST) and `events watch` (the GraphQL `subscribeEvents` subscription over
//! WebSocket, graphql-transport-ws).

use futures_util::{SinkExt, StreamExt};
use meshery_client::graphql::SubscribeEvents;
use meshery_models::EventPage;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::api::Target;
use crate::failure::{self, Class, Failure, Outcome};
use crate::output::{self, Format};
use crate::perf::ListArgs;

fn events_table(page: &EventPage) -> String {
    let mut out = output::table(
        &[
            "time",
            "severity",
            "category",
            "action",
            "status",
            "description",
        ],
        page.events.iter().map(|e| {
            vec![
                output::time(&e.created_at),
                e.severity.to_string(),
                e.category.clone(),
                e.action.clone(),
                e.status.to_string(),
                e.description.clone(),
            ]
        }),
    );
    out.push('\n');
    out.push_str(&output::footer(page.page, page.page_size, page.total_count));
    out
}

pub async fn list(
    target: &Target,
    l: ListArgs,
    category: Vec<String>,
    severity: Vec<String>,
    format: Format,
) -> Outcome {
    let severity = severity
        .iter()
        .map(|s| {
            s.parse::<meshery_models::EventSeverity>().map_err(|_| {
                failure::usage(format!(
                    "--severity {s:?}: one of emergency, alert, critical, error, warning, informational, debug, success"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let client = target.client()?;
    let mut b = client.list_events().page(l.page).pagesize(l.pagesize);
    if let Some(s) = l.search {
        b = b.search(s);
    }
    if !category.is_empty() {
        b = b.category(category);
    }
    if !severity.is_empty() {
        b = b.severity(severity);
    }
    let page = b.send().await.map_err(|e| target.fail(e))?.into_inner();
    output::emit(format, &page, events_table)
}

fn protocol(e: impl std::fmt::Display) -> Failure {
    Failure::new(Class::Server, format!("event stream: {e}"))
}

/// Prints events as they happen until interrupted, or until `count` have arrived.
pub async fn watch(target: &Target, count: Option<usize>, format: Format) -> Outcome {
    let ws_url = if let Some(rest) = target.endpoint.strip_prefix("http://") {
        format!("ws://{rest}/api/system/graphql/query")
    } else if let Some(rest) = target.endpoint.strip_prefix("https://") {
        format!("wss://{rest}/api/system/graphql/query")
    } else {
        return Err(failure::usage(format!(
            "server address {} is not http:// or https://",
            target.endpoint
        )));
    };
    // The same roots (built-in and MESHERY_CA_FILE) as the REST calls.
    let connector = tokio_tungstenite::Connector::Rustls(std::sync::Arc::new(crate::api::tls()?));
    let mut request = ws_url.as_str().into_client_request().map_err(protocol)?;
    let headers = request.headers_mut();
    headers.insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let mut init = serde_json::json!({});
    if let Some(auth) = &target.auth {
        let mut cookie = format!("meshery-provider={}", auth.meshery_provider);
        if !auth.token.is_empty() {
            cookie.push_str(&format!("; token={}", auth.token));
            if let Ok(v) = HeaderValue::from_str(&format!("Bearer {}", auth.token)) {
                headers.insert("authorization", v);
            }
            init = serde_json::json!({"Authorization": format!("Bearer {}", auth.token)});
        }
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            headers.insert("cookie", v);
        }
    }
    let connect =
        tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(connector));
    let (mut ws, _) = match tokio::time::timeout(std::time::Duration::from_secs(10), connect).await
    {
        Ok(Ok(c)) => c,
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(r))) => {
            let status = r.status().as_u16();
            let said = r
                .body()
                .as_ref()
                .and_then(|b| serde_json::from_slice::<meshery_models::MeshKitError>(b).ok())
                .map(|e| e.error)
                .unwrap_or_default();
            return Err(failure::status(status, &said, ""));
        }
        Ok(Err(tokio_tungstenite::tungstenite::Error::Tls(e))) => {
            return Err(failure::tls_failure(&target.endpoint, &e));
        }
        Ok(Err(tokio_tungstenite::tungstenite::Error::Io(e)))
            if failure::tls_cause(&e).is_some() =>
        {
            return Err(failure::tls_failure(&target.endpoint, &e));
        }
        Ok(Err(tokio_tungstenite::tungstenite::Error::Io(e))) => {
            return Err(Failure::new(
                Class::Unreachable,
                format!(
                    "the Meshery server at {} is not reachable ({e}); is it running?",
                    target.endpoint
                ),
            ));
        }
        Ok(Err(e)) => return Err(protocol(e)),
        Err(_) => {
            return Err(Failure::new(
                Class::Unreachable,
                format!(
                    "the Meshery server at {} did not answer in time",
                    target.endpoint
                ),
            ));
        }
    };
    let send = |v: serde_json::Value| Message::text(v.to_string());
    ws.send(send(
        serde_json::json!({"type": "connection_init", "payload": init}),
    ))
    .await
    .map_err(protocol)?;
    use cynic::SubscriptionBuilder;
    let operation = SubscribeEvents::build(());
    let mut subscribed = false;
    let mut seen = 0usize;
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        let message = tokio::select! {
            m = ws.next() => m,
            _ = &mut stop => break,
        };
        let Some(message) = message else {
            return Err(protocol("the server closed the connection"));
        };
        let text = match message.map_err(protocol)? {
            Message::Text(t) => t.to_string(),
            Message::Close(_) => return Err(protocol("the server closed the connection")),
            _ => continue,
        };
        let frame: serde_json::Value = serde_json::from_str(&text).map_err(protocol)?;
        match frame["type"].as_str() {
            Some("connection_ack") if !subscribed => {
                ws.send(send(
                    serde_json::json!({"id": "1", "type": "subscribe", "payload": operation}),
                ))
                .await
                .map_err(protocol)?;
                subscribed = true;
                eprintln!("watching events on {} (Ctrl-C stops)", target.endpoint);
            }
            Some("ping") => {
                ws.send(send(serde_json::json!({"type": "pong"})))
                    .await
                    .map_err(protocol)?;
            }
            Some("next") => {
                let response: cynic::GraphQlResponse<SubscribeEvents> =
                    serde_json::from_value(frame["payload"].clone()).map_err(protocol)?;
                if let Some(errors) = response.errors.filter(|e| !e.is_empty()) {
                    let message = errors
                        .iter()
                        .map(|e| e.message.clone())
                        .collect::<Vec<_>>()
                        .join("; ");
                    return Err(
                        if message.contains("401") || message.to_lowercase().contains("unauth") {
                            failure::status(401, &message, "")
                        } else {
                            protocol(message)
                        },
                    );
                }
                let Some(data) = response.data else { continue };
                let e = data.subscribe_events;
                let line = match format {
                    Format::Table => format!(
                        "{}  {:<13} {}/{}  {}",
                        e.created_at.0, e.severity, e.category, e.action, e.description
                    ),
                    _ => frame["payload"]["data"]["subscribeEvents"].to_string(),
                };
                println!("{line}");
                seen += 1;
                if count.is_some_and(|n| seen >= n) {
                    break;
                }
            }
            Some("error") => {
                let message = frame["payload"].to_string();
                return Err(
                    if message.contains("401") || message.to_lowercase().contains("unauth") {
                        failure::status(401, &message, "")
                    } else {
                        protocol(message)
                    },
                );
            }
            Some("complete") => break,
            _ => {}
        }
    }
    let _ = ws
        .send(send(serde_json::json!({"id": "1", "type": "complete"})))
        .await;
    let _ = ws.close(None).await;
    Ok(String::new())
}
