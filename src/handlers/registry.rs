use crate::error::ApiError;
use crate::generated::rest::*;
use crate::models::{
    RegistryCategory, RegistryComponent, RegistryModel, RegistryRegistrant, RegistryRelationship,
};
use crate::server::Api;
use crate::session::Session;

/// What the registry's listings need to know of an item: its text for `search` and the
/// value of each field `sort` may name.
trait Listed {
    fn text(&self) -> String;
    fn field(&self, field: &str) -> Option<String>;
}

impl Listed for RegistryModel {
    fn text(&self) -> String {
        format!("{} {}", self.name, self.display_name)
    }
    fn field(&self, field: &str) -> Option<String> {
        Some(match field {
            "name" => self.name.clone(),
            "displayname" | "display_name" => self.display_name.clone(),
            "version" => self.version.clone(),
            "category" => self.category.name.clone(),
            "registrant" => self.registrant.name.clone(),
            _ => return None,
        })
    }
}

impl Listed for RegistryComponent {
    fn text(&self) -> String {
        format!("{} {}", self.kind, self.display_name)
    }
    fn field(&self, field: &str) -> Option<String> {
        Some(match field {
            "name" | "kind" => self.kind.clone(),
            "displayname" | "display_name" => self.display_name.clone(),
            "version" | "apiversion" => self.api_version.clone(),
            "model" => self.model.name.clone(),
            _ => return None,
        })
    }
}

impl Listed for RegistryRelationship {
    fn text(&self) -> String {
        format!(
            "{} {} {}",
            self.from.join(" "),
            self.to.join(" "),
            self.sub_type
        )
    }
    fn field(&self, field: &str) -> Option<String> {
        Some(match field {
            "name" | "id" => self.id.clone(),
            "kind" => self.kind.to_string(),
            "type" => self.type_.clone(),
            "subtype" => self.sub_type.clone(),
            "model" => self.model.name.clone(),
            _ => return None,
        })
    }
}

impl Listed for RegistryCategory {
    fn text(&self) -> String {
        self.name.clone()
    }
    fn field(&self, field: &str) -> Option<String> {
        match field {
            "name" => Some(self.name.clone()),
            "count" => Some(format!("{:020}", self.models_count)),
            _ => None,
        }
    }
}

impl Listed for RegistryRegistrant {
    fn text(&self) -> String {
        self.name.clone()
    }
    fn field(&self, field: &str) -> Option<String> {
        match field {
            "name" => Some(self.name.clone()),
            "count" => Some(format!("{:020}", self.models_count)),
            _ => None,
        }
    }
}

/// The shared listing parameters of the registry (search ignores case; `sort` + `order`).
struct Params<'a> {
    page: Option<i64>,
    page_size: Option<&'a str>,
    search: Option<&'a str>,
    sort: Option<&'a str>,
    descending: bool,
}

macro_rules! params_of {
    ($r:expr) => {
        Params {
            page: $r.page,
            page_size: $r.pagesize.as_deref().or($r.page_size.as_deref()),
            search: $r.search.as_deref(),
            sort: $r.sort.as_deref(),
            descending: $r.order.as_deref() == Some("desc"),
        }
    };
}

fn page<T: Listed, P: Page<Item = T>>(mut items: Vec<T>, p: Params<'_>) -> Result<P, ApiError> {
    let listing = crate::store::listing(p.page, p.page_size, None, None, None, None)?;
    if let Some(search) = p.search.map(str::trim).filter(|s| !s.is_empty()) {
        let needle = search.to_lowercase();
        items.retain(|i| i.text().to_lowercase().contains(&needle));
    }
    let field = p.sort.map(|s| {
        s.trim_matches(|c| c == ' ' || c == '\t')
            .to_ascii_lowercase()
    });
    let field = field.as_deref().filter(|f| !f.is_empty()).unwrap_or("name");
    if items.first().is_some_and(|i| i.field(field).is_none()) {
        return Err(ApiError::bad_request(format!("cannot sort by {field:?}")));
    }
    // Stable: items equal in the field keep the registry's order (name, then version).
    items.sort_by_cached_key(|i| i.field(field).unwrap_or_default());
    if p.descending {
        items.reverse();
    }
    let total = i64::try_from(items.len()).unwrap_or(i64::MAX);
    let items = match listing.page_size {
        Some(size) => {
            let skip = usize::try_from(listing.page.saturating_mul(size)).unwrap_or(usize::MAX);
            items
                .into_iter()
                .skip(skip)
                .take(usize::try_from(size).unwrap_or(0))
                .collect()
        }
        None => items,
    };
    Ok(listing.page_of(items, total))
}

fn trim(components: &mut [RegistryComponent], trim: Option<bool>) {
    if trim.unwrap_or(false) {
        for c in components {
            c.schema.clear();
            c.component.schema.clear();
        }
    }
}

/// Whether an optional filter (empty: none) matches, any case.
fn matches_filter(filter: Option<&str>, value: &str) -> bool {
    filter
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .is_none_or(|f| f.eq_ignore_ascii_case(value))
}

impl RegistryApi for Api {
    async fn list_models(
        &self,
        r: ListModelsRequest<Session>,
    ) -> Result<ListModelsResponse, ApiError> {
        let mut models = self.registry.models(
            r.version.as_deref(),
            r.category.as_deref(),
            r.registrant.as_deref(),
        );
        if let Some(id) = r.id.as_deref() {
            models.retain(|m| m.id == id);
        }
        for m in &mut models {
            trim(&mut m.components, r.trim);
        }
        Ok(ListModelsResponse::Ok(page(models, params_of!(r))?))
    }

    async fn get_model(&self, r: GetModelRequest<Session>) -> Result<GetModelResponse, ApiError> {
        // Every version of the model (Meshery's answer is a listing), or the one asked
        // for; a model (or version) that is not there is a 404.
        self.registry.model(&r.model, r.version.as_deref())?;
        let mut models = self.registry.models(r.version.as_deref(), None, None);
        models.retain(|m| m.name == r.model);
        for m in &mut models {
            trim(&mut m.components, r.trim);
        }
        let params = Params {
            page: r.page,
            page_size: r.pagesize.as_deref().or(r.page_size.as_deref()),
            search: None,
            // The registry's order: by version, numerically.
            sort: None,
            descending: false,
        };
        Ok(GetModelResponse::Ok(page(models, params)?))
    }

    async fn list_model_components_of_kind(
        &self,
        r: ListModelComponentsOfKindRequest<Session>,
    ) -> Result<ListModelComponentsOfKindResponse, ApiError> {
        let mut m = self.registry.model(&r.model, r.version.as_deref())?;
        m.components
            .retain(|c| c.kind.eq_ignore_ascii_case(&r.kind));
        trim(&mut m.components, r.trim);
        let params = Params {
            page: r.page,
            page_size: r.pagesize.as_deref().or(r.page_size.as_deref()),
            search: None,
            sort: None,
            descending: false,
        };
        Ok(ListModelComponentsOfKindResponse::Ok(page(
            m.components,
            params,
        )?))
    }

    async fn list_category_models(
        &self,
        r: ListCategoryModelsRequest<Session>,
    ) -> Result<ListCategoryModelsResponse, ApiError> {
        let mut models = self.registry.models(None, Some(&r.category), None);
        for m in &mut models {
            trim(&mut m.components, r.trim);
        }
        let params = Params {
            page: r.page,
            page_size: r.pagesize.as_deref().or(r.page_size.as_deref()),
            search: r.search.as_deref(),
            sort: None,
            descending: false,
        };
        Ok(ListCategoryModelsResponse::Ok(page(models, params)?))
    }

    async fn list_model_components(
        &self,
        r: ListModelComponentsRequest<Session>,
    ) -> Result<ListModelComponentsResponse, ApiError> {
        let mut m = self.registry.model(&r.model, r.version.as_deref())?;
        trim(&mut m.components, r.trim);
        Ok(ListModelComponentsResponse::Ok(page(
            m.components,
            params_of!(r),
        )?))
    }

    async fn list_model_relationships(
        &self,
        r: ListModelRelationshipsRequest<Session>,
    ) -> Result<ListModelRelationshipsResponse, ApiError> {
        let m = self.registry.model(&r.model, r.version.as_deref())?;
        Ok(ListModelRelationshipsResponse::Ok(page(
            m.relationships,
            params_of!(r),
        )?))
    }

    async fn list_categories(
        &self,
        r: ListCategoriesRequest<Session>,
    ) -> Result<ListCategoriesResponse, ApiError> {
        Ok(ListCategoriesResponse::Ok(page(
            self.registry.categories(),
            params_of!(r),
        )?))
    }

    async fn list_components(
        &self,
        r: ListComponentsRequest<Session>,
    ) -> Result<ListComponentsResponse, ApiError> {
        let mut components = self.registry.components();
        if let Some(v) = r.api_version.as_deref() {
            components.retain(|c| c.api_version == v);
        }
        trim(&mut components, r.trim);
        Ok(ListComponentsResponse::Ok(page(components, params_of!(r))?))
    }

    async fn list_components_by_kind(
        &self,
        r: ListComponentsByKindRequest<Session>,
    ) -> Result<ListComponentsByKindResponse, ApiError> {
        let mut components = self.registry.components();
        components.retain(|c| {
            c.kind.eq_ignore_ascii_case(&r.name)
                && r.api_version.as_deref().is_none_or(|v| c.api_version == v)
        });
        trim(&mut components, r.trim);
        Ok(ListComponentsByKindResponse::Ok(page(
            components,
            params_of!(r),
        )?))
    }

    async fn list_relationships(
        &self,
        r: ListRelationshipsRequest<Session>,
    ) -> Result<ListRelationshipsResponse, ApiError> {
        let mut relationships = self.registry.relationships();
        relationships.retain(|x| {
            matches_filter(r.kind.as_deref(), &x.kind.to_string())
                && matches_filter(r.r#type.as_deref(), &x.type_)
                && matches_filter(r.sub_type.as_deref(), &x.sub_type)
        });
        Ok(ListRelationshipsResponse::Ok(page(
            relationships,
            params_of!(r),
        )?))
    }

    async fn list_registrants(
        &self,
        r: ListRegistrantsRequest<Session>,
    ) -> Result<ListRegistrantsResponse, ApiError> {
        Ok(ListRegistrantsResponse::Ok(page(
            self.registry.registrants(),
            params_of!(r),
        )?))
    }

    async fn register_model(
        &self,
        r: RegisterModelRequest<Session>,
    ) -> Result<RegisterModelResponse, ApiError> {
        // The catalogue is every user's: only an administrator may add to it.
        ApiError::unless_admin(
            &r.session,
            "register models",
            "The registry is shared by every user, so registering changes it for all of them.",
        )?;
        let registrant = r.session.user.user_name.clone();
        let model = self.registry.register(r.body, &registrant).await?;
        let event = crate::events::NewEvent::new(
            "registry",
            "register",
            crate::models::EventSeverity::Success,
            format!("Model {} registered", model.id),
        )
        .acted_upon(model.id.clone());
        self.events.note(&r.session, event).await;
        Ok(RegisterModelResponse::Created(model))
    }
}
