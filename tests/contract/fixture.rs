//! The generator's output for the codegen fixture (codegen/tests/snapshots), compiled and
//! served. It covers what the real spec does not use yet: path, array and header
//! parameters, constraints, a response header with a body, 204 and 404.

use std::sync::{Arc, Mutex};

use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::models::{NewPet, Pet};

#[allow(dead_code, clippy::all)]
mod server {
    include!("../../codegen/tests/snapshots/server.rs.txt");
}

use server::*;

#[derive(Clone)]
struct Pets(Arc<Mutex<Vec<Pet>>>, tokio::sync::broadcast::Sender<Pet>);

impl Default for Pets {
    fn default() -> Self {
        Pets(Arc::default(), tokio::sync::broadcast::channel(8).0)
    }
}

fn error(status: u16, message: String) -> Response {
    let status = axum::http::StatusCode::from_u16(status).unwrap();
    (status, axum::Json(crate::models::Error { message })).into_response()
}

impl Hooks for Pets {
    type Session = ();
    type Caller = ();
    /// A status and a message.
    type Error = (u16, String);

    async fn authenticate(&self, _: &'static Operation, parts: &mut Parts) -> Result<(), Response> {
        match parts.headers.get("authorization") {
            Some(v) if v == "Bearer good" => Ok(()),
            _ => Err(error(401, "no".into())),
        }
    }

    async fn identify(&self, _: &'static Operation, _: &mut Parts) -> Result<(), Response> {
        Ok(())
    }

    fn reject(&self, _: Option<&'static Operation>, rejection: Rejection) -> Response {
        error(rejection.status(), rejection.to_string())
    }

    fn error_body(
        &self,
        _: &'static Operation,
        (status, message): (u16, String),
    ) -> (u16, crate::models::Error) {
        (status, crate::models::Error { message })
    }

    fn body_limit(&self, _: &'static Operation) -> usize {
        256
    }
}

impl PetsApi for Pets {
    async fn page_pets(
        &self,
        request: PagePetsRequest<()>,
    ) -> Result<PagePetsResponse, (u16, String)> {
        let pets = self.0.lock().unwrap().clone();
        let size: i64 = request
            .pagesize
            .or(request.page_size)
            .and_then(|s| s.parse().ok())
            .unwrap_or(2);
        let page = request.page.unwrap_or(0);
        let total = pets.len() as i64;
        let items = pets
            .into_iter()
            .skip((page * size) as usize)
            .take(size as usize)
            .collect();
        Ok(PagePetsResponse::Ok(Page::from_parts(
            page, size, total, items,
        )))
    }

    async fn list_pets(
        &self,
        request: ListPetsRequest<()>,
    ) -> Result<ListPetsResponse, (u16, String)> {
        let pets = self.0.lock().unwrap().clone();
        let mut out: Vec<Pet> = pets
            .into_iter()
            .filter(|p| {
                request.tag.is_empty() || p.tag.as_ref().is_some_and(|t| request.tag.contains(t))
            })
            .collect();
        if request.x_trace.as_deref() == Some("none") {
            out.clear();
        }
        out.truncate(request.limit.unwrap_or(100) as usize);
        Ok(ListPetsResponse::Ok(out))
    }

    async fn create_pet(
        &self,
        request: CreatePetRequest<()>,
    ) -> Result<CreatePetResponse, (u16, String)> {
        let NewPet { name, tag } = request.body;
        let mut pets = self.0.lock().unwrap();
        let pet = Pet {
            id: format!("p{}", pets.len() + 1),
            name,
            tag,
        };
        pets.push(pet.clone());
        let _ = self.1.send(pet.clone());
        Ok(CreatePetResponse::Created {
            location: format!("/pets/{}", pet.id),
            body: pet,
        })
    }

    async fn watch_pets(
        &self,
        _: WatchPetsRequest<()>,
    ) -> Result<WatchPetsResponse, (u16, String)> {
        Ok(WatchPetsResponse::Ok(self.watch().await))
    }

    async fn delete_pet(
        &self,
        request: DeletePetRequest<()>,
    ) -> Result<DeletePetResponse, (u16, String)> {
        let mut pets = self.0.lock().unwrap();
        // An `Err` becomes the 404 the spec declares for it.
        let i = pets
            .iter()
            .position(|p| p.id == request.pet_id)
            .ok_or((404, "no such pet".to_string()))?;
        pets.remove(i);
        Ok(DeletePetResponse::NoContent)
    }

    async fn get_pet_photo(
        &self,
        request: GetPetPhotoRequest<()>,
    ) -> Result<GetPetPhotoResponse, (u16, String)> {
        // The id picks the type: png, jpeg, or one the operation does not declare.
        let content_type = match request.pet_id.as_str() {
            "png" => "image/png",
            "jpeg" => "image/jpeg",
            _ => "image/gif",
        };
        Ok(GetPetPhotoResponse::Ok {
            body: rt::File {
                content_type,
                bytes: request.pet_id.as_bytes().to_vec(),
            },
            content_disposition: Some(format!("attachment; filename={}", request.pet_id)),
        })
    }
}

impl Pets {
    async fn watch(&self) -> rt::EventStream {
        use futures_util::StreamExt;
        let events =
            tokio_stream::wrappers::BroadcastStream::new(self.1.subscribe()).filter_map(|pet| {
                std::future::ready(pet.ok().and_then(|p| rt::SseFrame::json(&p).ok()))
            });
        events.boxed()
    }
}

impl SystemApi for Pets {
    async fn get_health(
        &self,
        _: GetHealthRequest<()>,
    ) -> Result<GetHealthResponse, (u16, String)> {
        Ok(GetHealthResponse::Ok("ok".into()))
    }
}

#[tokio::test]
async fn fixture_router_extracts_validates_and_encodes() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, router(Pets::default()))
            .await
            .unwrap()
    });
    let http = crate::harness::client_builder().build().unwrap();
    let authed = |r: reqwest::RequestBuilder| r.header("authorization", "Bearer good");

    // Public operation, text body.
    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(health.text().await.unwrap(), "ok");

    // The guard runs before anything else.
    assert_eq!(
        http.get(format!("{base}/pets"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    // 201 with a Location header and a body.
    for (name, tag) in [("rex", "a"), ("tom", "b"), ("kit", "c")] {
        let created = authed(http.post(format!("{base}/pets")))
            .json(&json!({"name": name, "tag": tag}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let location = created.headers()["location"].to_str().unwrap().to_string();
        let pet: Pet = created.json().await.unwrap();
        assert_eq!(location, format!("/pets/{}", pet.id));
    }

    // Server-sent events: a new pet arrives as a `data:` frame.
    let events = authed(http.get(format!("{base}/pets/events")))
        .send()
        .await
        .unwrap();
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    use futures_util::StreamExt;
    let mut pets = Box::pin(meshery_client::sse::json_frames::<Pet, _, _, _>(
        events.bytes_stream(),
    ));
    authed(http.post(format!("{base}/pets")))
        .json(&json!({"name": "sse"}))
        .send()
        .await
        .unwrap();
    let pet = tokio::time::timeout(std::time::Duration::from_secs(5), pets.next())
        .await
        .expect("a frame within 5 s")
        .expect("the stream is open")
        .expect("a pet");
    assert_eq!(pet.name, "sse");

    // A page envelope: generated constructor, camelCase and legacy snake_case keys.
    let page: serde_json::Value = authed(http.get(format!("{base}/pets/pages?page=1&pagesize=2")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["page"], 1);
    assert_eq!(page["pageSize"], 2);
    assert_eq!(page["page_size"], 2);
    assert_eq!(page["totalCount"], 4);
    assert_eq!(page["total_count"], 4);
    assert_eq!(page["pets"].as_array().unwrap().len(), 2);

    // Array, integer and header parameters.
    let list = |q: &str| authed(http.get(format!("{base}/pets{q}"))).send();
    // Repeated, or as one JSON array (Meshery's clients' form).
    for query in ["?tag=a&tag=c", "?tag=%5B%22a%22%2C%22c%22%5D"] {
        let pets: Vec<Pet> = list(query).await.unwrap().json().await.unwrap();
        assert_eq!(
            pets.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["rex", "kit"],
            "{query}"
        );
    }
    // The array's items are held to the same constraints (at most 16 characters).
    let long = list("?tag=%5B%22aaaaaaaaaaaaaaaaaaaaaa%22%5D")
        .await
        .unwrap();
    assert_eq!(long.status(), 400);
    let pets: Vec<Pet> = list("?limit=1").await.unwrap().json().await.unwrap();
    assert_eq!(pets.len(), 1);
    let none: Vec<Pet> = authed(http.get(format!("{base}/pets")))
        .header("x-trace", "none")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(none.is_empty());
    for (q, why) in [
        ("?limit=0", "at least 1"),
        ("?limit=101", "at most 100"),
        ("?limit=ten", "invalid digit"),
    ] {
        let r = list(q).await.unwrap();
        assert_eq!(r.status(), 400, "{q}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(
            body["message"].as_str().unwrap().contains(why),
            "{q}: {body}"
        );
    }

    // Body validation and limits.
    let post = |body: String| {
        authed(http.post(format!("{base}/pets")))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_eq!(
        post(r#"{"name": "x", "legs": 4}"#.into())
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(post(r#"{"tag": "x"}"#.into()).await.unwrap().status(), 400);
    assert_eq!(
        post(format!(r#"{{"name": "{}"}}"#, "x".repeat(300)))
            .await
            .unwrap()
            .status(),
        413
    );

    // Path parameters; 204 has no body; an error the handler picks.
    let deleted = authed(http.delete(format!("{base}/pets/p2")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert!(deleted.bytes().await.unwrap().is_empty());
    // The handler's `Err` is answered as the 404 the spec declares, with its body.
    let missing = authed(http.delete(format!("{base}/pets/p2")))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body, json!({"message": "no such pet"}));
    // An alias path (`x-aliases`) reaches the same operation.
    assert_eq!(
        authed(http.delete(format!("{base}/animals/p1")))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        authed(http.delete(format!("{base}/animals/p1")))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // A file of one of several declared types, as the handler picks it; another is refused.
    for kind in ["png", "jpeg"] {
        let r = authed(http.get(format!("{base}/pets/{kind}/photo")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-type"],
            format!("image/{kind}").as_str()
        );
        assert_eq!(
            r.headers()["content-disposition"],
            format!("attachment; filename={kind}").as_str()
        );
        assert_eq!(r.bytes().await.unwrap(), kind.as_bytes());
    }
    let gif = authed(http.get(format!("{base}/pets/gif/photo")))
        .send()
        .await
        .unwrap();
    assert_eq!(gif.status(), 500);
    assert!(gif.text().await.unwrap().contains("image/gif"));
    // An undeclared method on a known path.
    assert_eq!(
        authed(http.put(format!("{base}/pets")))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
}

/// `x-document`: createPet's body may be the pet's name itself (text, a YAML or JSON
/// string), as Meshery's handlers take a design sent as the body; a JSON object is still
/// checked against the schema.
#[tokio::test]
async fn a_document_body_is_its_property() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, router(Pets::default()))
            .await
            .unwrap()
    });
    let http = crate::harness::client_builder().build().unwrap();
    let post = |content_type: Option<&str>, body: &str| {
        let mut r = http
            .post(format!("{base}/pets"))
            .header("authorization", "Bearer good")
            .body(body.to_string());
        if let Some(ct) = content_type {
            r = r.header("content-type", ct);
        }
        r.send()
    };
    let cases = [
        (Some("text/plain"), "Rex", "Rex"),
        (None, "Tom", "Tom"),
        // yaml.Marshal of a string, as mesheryctl sends a design
        (
            Some("application/yaml"),
            "|\n  line one\n  line two\n",
            "line one\nline two\n",
        ),
        (Some("application/json"), "\"Kit\"", "Kit"),
        // the object itself, in YAML
        (Some("application/yaml"), "name: Ada\ntag: x\n", "Ada"),
    ];
    for (content_type, body, name) in cases {
        let created = post(content_type, body).await.unwrap();
        assert_eq!(created.status(), 201, "{body:?}");
        let pet: Pet = created.json().await.unwrap();
        assert_eq!(pet.name, name, "{body:?}");
    }
    // An object is still held to the schema.
    let refused = post(Some("application/json"), r#"{"name": "Bo", "legs": 4}"#)
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    // Other media types are not documents.
    let refused = post(Some("image/png"), "Rex").await.unwrap();
    assert_eq!(refused.status(), 415);
}
