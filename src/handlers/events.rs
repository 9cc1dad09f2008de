use crate::error::ApiError;
use crate::generated::rest::*;
use crate::models::EventsChanged;
use crate::server::Api;
use crate::session::Session;
use crate::store::EventFilter;

impl EventsApi for Api {
    async fn list_events(
        &self,
        r: ListEventsRequest<Session>,
    ) -> Result<ListEventsResponse, ApiError> {
        // Meshery's UI sends `sort=created_at&order=desc`: the field apart from the direction.
        let order = match (r.sort.as_deref(), r.order.as_deref()) {
            (Some(field), Some(direction)) if is_direction(direction) => {
                Some(format!("{} {direction}", field.trim()))
            }
            (Some(field), None) => Some(field.trim().to_string()),
            (_, order) => order.map(str::to_string),
        };
        let listing = crate::store::listing(
            r.page,
            r.pagesize.as_deref().or(r.page_size.as_deref()),
            r.search.clone(),
            order.as_deref(),
            r.from,
            r.to,
        )?;
        let filter = EventFilter {
            category: r.category.clone(),
            severity: r.severity.iter().map(ToString::to_string).collect(),
            action: r.action.clone(),
            status: r.status.map(|s| s.to_string()),
        };
        let (events, total) = self.events.list(&r.session, &filter, &listing).await?;
        let mut page: crate::models::EventPage = listing.page_of(events, total);
        page.count_by_severity_level = self
            .events
            .unread_by_severity(&r.session)
            .await?
            .into_iter()
            .filter_map(|(severity, count)| {
                Some(crate::models::EventPageCountBySeverityLevelItem {
                    severity: severity.parse().ok()?,
                    count,
                })
            })
            .collect();
        Ok(ListEventsResponse::Ok(page))
    }

    async fn create_event(
        &self,
        r: CreateEventRequest<Session>,
    ) -> Result<CreateEventResponse, ApiError> {
        let event = self.events.ingest(&r.session, r.body).await?;
        Ok(CreateEventResponse::Created(event))
    }

    async fn delete_events(
        &self,
        r: DeleteEventsRequest<Session>,
    ) -> Result<DeleteEventsResponse, ApiError> {
        let n = self.events.delete(&r.session, &r.body.ids).await?;
        Ok(DeleteEventsResponse::Ok(EventsChanged {
            changed: n as i64,
        }))
    }

    async fn delete_events_bulk(
        &self,
        r: DeleteEventsBulkRequest<Session>,
    ) -> Result<DeleteEventsBulkResponse, ApiError> {
        let n = self.events.delete(&r.session, &r.body.ids).await?;
        Ok(DeleteEventsBulkResponse::Ok(EventsChanged {
            changed: n as i64,
        }))
    }

    async fn list_event_types(
        &self,
        r: ListEventTypesRequest<Session>,
    ) -> Result<ListEventTypesResponse, ApiError> {
        let (category, action) = self.events.types(&r.session).await?;
        Ok(ListEventTypesResponse::Ok(crate::models::EventTypes {
            category,
            action,
        }))
    }

    async fn get_event_log_level(
        &self,
        _: GetEventLogLevelRequest<Session>,
    ) -> Result<GetEventLogLevelResponse, ApiError> {
        Ok(GetEventLogLevelResponse::Ok(log_level()?))
    }

    async fn set_event_log_level(
        &self,
        r: SetEventLogLevelRequest<Session>,
    ) -> Result<SetEventLogLevelResponse, ApiError> {
        ApiError::unless_admin(
            &r.session,
            "change the server's log level",
            "The log level is the server's, every user's.",
        )?;
        let level = r.body.event_log_level.to_string();
        crate::logging::set(&level).map_err(ApiError::bad_request)?;
        self.bus.publish(crate::bus::Topic::LogLevel, &level).await;
        tracing::info!(level, user = %r.session.user.user_name, "log level set");
        Ok(SetEventLogLevelResponse::Ok(log_level()?))
    }

    async fn update_events_status(
        &self,
        r: UpdateEventsStatusRequest<Session>,
    ) -> Result<UpdateEventsStatusResponse, ApiError> {
        let changed = self
            .events
            .set_status(&r.session, &r.body.ids, r.body.status)
            .await?;
        Ok(UpdateEventsStatusResponse::Ok(EventsChanged {
            changed: changed.len() as i64,
        }))
    }

    async fn update_event_status(
        &self,
        r: UpdateEventStatusRequest<Session>,
    ) -> Result<UpdateEventStatusResponse, ApiError> {
        let ids = [r.event_id.clone()];
        let mut changed = self
            .events
            .set_status(&r.session, &ids, r.body.status)
            .await?;
        let event = changed.pop().ok_or_else(|| not_found(&r.event_id))?;
        Ok(UpdateEventStatusResponse::Ok(event))
    }

    async fn subscribe_events(
        &self,
        r: SubscribeEventsRequest<Session>,
    ) -> Result<SubscribeEventsResponse, ApiError> {
        use futures_util::StreamExt;
        let after = match r.last_event_id.as_deref() {
            None => None,
            Some(id) => Some(self.events.resume_point(id).await?),
        };
        let frames = self
            .events
            .subscribe(&r.session, after)
            .map(|p| p.shared(|p| rt::SseFrame::with_id(Some(&p.seq.to_string()), &p.json)))
            .boxed();
        Ok(SubscribeEventsResponse::Ok(super::until_session_ends(
            self, &r.session, frames,
        )))
    }

    async fn delete_event(
        &self,
        r: DeleteEventRequest<Session>,
    ) -> Result<DeleteEventResponse, ApiError> {
        let ids = [r.event_id.clone()];
        match self.events.delete(&r.session, &ids).await? {
            0 => Err(not_found(&r.event_id)),
            _ => Ok(DeleteEventResponse::NoContent),
        }
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("no event {id:?} of yours"))
}

/// The server's log level as Meshery answers it.
fn log_level() -> Result<crate::models::EventLogLevel, ApiError> {
    let parse = |l: &str| {
        l.parse::<crate::models::LogLevel>()
            .map_err(|e| ApiError::internal("reading the log level", e))
    };
    Ok(crate::models::EventLogLevel {
        status: crate::models::EventLogLevelStatus::Success,
        event_log_level: parse(crate::logging::level())?,
        available_levels: crate::logging::LEVELS
            .iter()
            .map(|l| parse(l))
            .collect::<Result<_, _>>()?,
    })
}

fn is_direction(order: &str) -> bool {
    let order = order.trim();
    order.eq_ignore_ascii_case("asc") || order.eq_ignore_ascii_case("desc")
}

#[cfg(test)]
mod tests {
    use crate::generated::rest::rt::SseFrame;

    fn text(frame: SseFrame) -> String {
        format!("{frame:?}")
    }

    #[test]
    fn sse_frames_carry_json_on_one_data_line_and_other_text_line_by_line() {
        let one = text(SseFrame::from_json(r#"{"a":"b\nc"}"#));
        assert!(one.contains(r#"data: {\"a\":\"b\\nc\"}\n\n"#), "{one}");
        let many = text(SseFrame::from_json("x\r\ny\rz\nw"));
        assert!(
            many.contains(r#"data: x\ndata: y\ndata: z\ndata: w\n\n"#),
            "{many}"
        );
        assert_eq!(
            text(SseFrame::json(&serde_json::json!({"a": "b\nc"})).unwrap()),
            one
        );
    }
}
