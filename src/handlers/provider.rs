use crate::auth::Caller;
use crate::generated::rest::*;
use crate::server::App;

impl ProviderApi for App {
    async fn list_providers(&self, _: ListProvidersRequest<Caller>) -> ListProvidersResponse {
        ListProvidersResponse::Ok(self.providers.list().await)
    }

    async fn select_provider(
        &self,
        request: SelectProviderRequest<Caller>,
    ) -> SelectProviderResponse {
        match self.providers.canonical(&request.provider) {
            Some(name) => SelectProviderResponse::Found {
                location: "/user/login".into(),
                set_cookie: Some(crate::cookies::cookie(
                    &self.config,
                    "meshery-provider",
                    &name,
                )),
            },
            // Browsers land here from the chooser: send them back to it.
            None => SelectProviderResponse::Found {
                location: "/provider".into(),
                set_cookie: None,
            },
        }
    }

    async fn get_provider_capabilities(
        &self,
        request: GetProviderCapabilitiesRequest<Caller>,
    ) -> GetProviderCapabilitiesResponse {
        let name = match request.caller.provider {
            Ok(name) => name,
            Err(e) => return e.to(),
        };
        match self.providers.get(&name) {
            Some(provider) => {
                GetProviderCapabilitiesResponse::Ok(self.providers.capabilities(&provider).await)
            }
            None => crate::error::ApiError::bad_request(format!("unknown provider {name:?}")).to(),
        }
    }
}
