//! The bare axum baseline (`bench baseline <port>`): what the same stack costs with none of
//! the server's work. `/` answers "ok", `/sse` is an idle event stream with the server's
//! keep-alive interval, `/ws` an idle WebSocket with the library's defaults, `POST /graphql` a
//! GraphQL-shaped request with no GraphQL. For the
//! fan-out rows it also speaks just enough of the server's event paths: `POST
//! /api/system/events` hands the posted JSON to every subscriber of `GET
//! /api/system/events/subscribe` (SSE) and of a graphql-transport-ws subscription on
//! `/api/system/graphql/query`, through one tokio broadcast channel, with nothing stored
//! or checked: the floor any server on this stack and machine starts from.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures_util::StreamExt;
use tokio::sync::broadcast;

/// A posted event: its JSON as posted (the SSE data) and, built once, the GraphQL payload
/// every WebSocket subscriber wraps in its own `next`.
#[derive(Clone)]
struct Posted {
    body: Bytes,
    payload: std::sync::Arc<str>,
}

type Events = broadcast::Sender<Posted>;

pub fn run(port: u16) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async move {
        let (events, _) = broadcast::channel::<Posted>(1024);
        let app = axum::Router::new()
            .route("/", get(|| async { "ok" }))
            .route(
                "/sse",
                get(|| async {
                    Sse::new(futures_util::stream::pending::<Result<Event, Infallible>>())
                        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
                }),
            )
            .route(
                "/ws",
                get(|ws: WebSocketUpgrade| async {
                    ws.on_upgrade(|mut socket| async move {
                        while let Some(Ok(_)) = socket.recv().await {}
                    })
                }),
            )
            .route("/graphql", axum::routing::post(graphql_shaped))
            .route("/api/system/events", axum::routing::post(post))
            .route("/api/system/events/subscribe", get(sse))
            .route("/api/system/graphql/query", get(ws))
            .with_state(events);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("the baseline's port");
        axum::serve(listener, app).await.expect("serving");
    });
}

/// A GraphQL-shaped request with no GraphQL in it: the JSON body is read into its
/// parameters and a fixed JSON answer of the same shape goes back. What the request's shape
/// (a POST with a JSON body) costs on this stack, next to `GET /`.
async fn graphql_shaped(
    axum::Json(params): axum::Json<GraphqlParams>,
) -> axum::Json<serde_json::Value> {
    let build = if params.query.is_empty() {
        ""
    } else {
        "v0.1.0"
    };
    axum::Json(serde_json::json!({"data": {"version": {"build": build}}}))
}

#[derive(serde::Deserialize)]
struct GraphqlParams {
    query: String,
}

async fn post(State(events): State<Events>, body: Bytes) -> StatusCode {
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let payload = serde_json::json!({
        "data": {"subscribeEvents": {"description": event["description"]}},
    })
    .to_string()
    .into();
    // No subscriber yet is fine: the bench's barrier posts until all are live.
    let _ = events.send(Posted { body, payload });
    StatusCode::CREATED
}

async fn sse(State(events): State<Events>) -> impl IntoResponse {
    let frames = tokio_stream::wrappers::BroadcastStream::new(events.subscribe()).filter_map(
        |item| async move {
            let posted = item.ok()?;
            Some(Ok::<_, Infallible>(
                Event::default().data(String::from_utf8_lossy(&posted.body)),
            ))
        },
    );
    Sse::new(frames).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

async fn ws(State(events): State<Events>, ws: WebSocketUpgrade) -> impl IntoResponse {
    ws.protocols(["graphql-transport-ws"])
        .on_upgrade(move |socket| subscriber(socket, events))
}

/// graphql-transport-ws reduced to what the bench's subscribers send: `connection_init`
/// is acknowledged, a `subscribe` starts the events as `next` messages of its id.
async fn subscriber(mut socket: WebSocket, events: Events) {
    let mut rx: Option<(String, broadcast::Receiver<Posted>)> = None;
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(Message::Text(text))) = incoming else {
                    match incoming {
                        Some(Ok(_)) => continue,
                        _ => return,
                    }
                };
                let Ok(msg) = serde_json::from_str::<serde_json::Value>(text.as_str()) else {
                    return;
                };
                match msg["type"].as_str() {
                    Some("connection_init") => {
                        let ack = r#"{"type":"connection_ack"}"#;
                        if socket.send(Message::text(ack)).await.is_err() {
                            return;
                        }
                    }
                    Some("subscribe") => {
                        let id = msg["id"].as_str().unwrap_or("1").to_string();
                        rx = Some((id, events.subscribe()));
                    }
                    _ => {}
                }
            }
            event = async {
                match rx.as_mut() {
                    Some((_, r)) => r.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                let Ok(posted) = event else { continue };
                let Some((id, _)) = rx.as_ref() else { continue };
                let next = format!(r#"{{"id":{id:?},"type":"next","payload":{}}}"#, posted.payload);
                if socket.send(Message::text(next)).await.is_err() {
                    return;
                }
            }
        }
    }
}
