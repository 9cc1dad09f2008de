//! The bare axum baseline (`bench baseline <port>`): what the same stack costs with none of
//! the server's work. `/` answers "ok", `/sse` is an idle event stream with the server's
//! keep-alive interval, `/ws` an idle WebSocket with the library's defaults.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;

pub fn run(port: u16) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async move {
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
            );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("the baseline's port");
        axum::serve(listener, app).await.expect("serving");
    });
}
