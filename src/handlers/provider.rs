use crate::auth::Caller;
use crate::error::ApiError;
use crate::generated::rest::*;
use crate::server::Api;

impl ProviderApi for Api {
    async fn list_providers(
        &self,
        _: ListProvidersRequest<Caller>,
    ) -> Result<ListProvidersResponse, ApiError> {
        Ok(ListProvidersResponse::Ok(self.providers.list().await))
    }

    async fn select_provider(
        &self,
        request: SelectProviderRequest<Caller>,
    ) -> Result<SelectProviderResponse, ApiError> {
        Ok(match self.providers.canonical(&request.provider) {
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
        })
    }

    async fn get_provider_capabilities(
        &self,
        request: GetProviderCapabilitiesRequest<Caller>,
    ) -> Result<GetProviderCapabilitiesResponse, ApiError> {
        let name = request.caller.provider?;
        let provider = self
            .providers
            .get(&name)
            .ok_or_else(|| ApiError::bad_request(format!("unknown provider {name:?}")))?;
        Ok(GetProviderCapabilitiesResponse::Ok(
            self.providers.capabilities(&provider).await,
        ))
    }
}
