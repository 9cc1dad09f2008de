use crate::auth::Session;
use crate::error::ApiError;
use crate::generated::rest::*;
use crate::models::EventsChanged;
use crate::server::App;
use crate::store::EventFilter;

fn event_frame(event: &crate::models::Event) -> Option<axum::response::sse::Event> {
    axum::response::sse::Event::default().json_data(event).ok()
}

impl EventsApi for App {
    async fn list_events(&self, r: ListEventsRequest<Session>) -> ListEventsResponse {
        let listing = match listing_of!(r) {
            Ok(l) => l,
            Err(e) => return e.to(),
        };
        let filter = EventFilter {
            category: r.category.clone(),
            severity: r.severity.iter().map(ToString::to_string).collect(),
            action: r.action.clone(),
            status: r.status.map(|s| s.to_string()),
        };
        let result = async {
            let (events, total) = self.events.list(&r.session, &filter, &listing).await?;
            let mut page: crate::models::EventPage = listing.page_of(events, total);
            page.count_by_severity_level = self.events.unread_by_severity(&r.session).await?;
            Ok::<_, ApiError>(page)
        };
        match result.await {
            Ok(page) => ListEventsResponse::Ok(page),
            Err(e) => e.to(),
        }
    }

    async fn create_event(&self, r: CreateEventRequest<Session>) -> CreateEventResponse {
        match self.events.ingest(&r.session, r.body).await {
            Ok(event) => CreateEventResponse::Created(event),
            Err(e) => e.to(),
        }
    }

    async fn delete_events(&self, r: DeleteEventsRequest<Session>) -> DeleteEventsResponse {
        match self.events.delete(&r.session, &r.body.ids).await {
            Ok(n) => DeleteEventsResponse::Ok(EventsChanged { changed: n as i64 }),
            Err(e) => e.to(),
        }
    }

    async fn update_events_status(
        &self,
        r: UpdateEventsStatusRequest<Session>,
    ) -> UpdateEventsStatusResponse {
        match self
            .events
            .set_status(&r.session, &r.body.ids, r.body.status)
            .await
        {
            Ok(changed) => UpdateEventsStatusResponse::Ok(EventsChanged {
                changed: changed.len() as i64,
            }),
            Err(e) => e.to(),
        }
    }

    async fn update_event_status(
        &self,
        r: UpdateEventStatusRequest<Session>,
    ) -> UpdateEventStatusResponse {
        let ids = [r.event_id.clone()];
        match self
            .events
            .set_status(&r.session, &ids, r.body.status)
            .await
        {
            Ok(mut changed) => match changed.pop() {
                Some(event) => UpdateEventStatusResponse::Ok(event),
                None => not_found(&r.event_id).to(),
            },
            Err(e) => e.to(),
        }
    }

    async fn subscribe_events(
        &self,
        r: SubscribeEventsRequest<Session>,
    ) -> SubscribeEventsResponse {
        use futures_util::StreamExt;
        let frames = self
            .events
            .subscribe(&r.session)
            .filter_map(|e| std::future::ready(event_frame(&e)))
            .boxed();
        SubscribeEventsResponse::Ok(frames)
    }

    async fn delete_event(&self, r: DeleteEventRequest<Session>) -> DeleteEventResponse {
        let ids = [r.event_id.clone()];
        match self.events.delete(&r.session, &ids).await {
            Ok(0) => not_found(&r.event_id).to(),
            Ok(_) => DeleteEventResponse::NoContent,
            Err(e) => e.to(),
        }
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("no event {id:?} of yours"))
}
