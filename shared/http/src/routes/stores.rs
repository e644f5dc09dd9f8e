//! In-app store purchases of the signed-in user: `/api/v1/app/stores/*`.
//! The app asks for the `appAccountToken` it passes to StoreKit, and
//! registers its Google Play purchase tokens, so the App Store and Google
//! Play notifications (`routes::webhooks::{apple, google}`) find their user.
//! Handlers translate; the rules are in `quper_core::app_stores`.

use axum::Json;
use axum::extract::State;
use quper_core::App;
use quper_core::app_stores::{GooglePurchase, LinkedPurchase, StoreAccount};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::routes::doc;

routes! {
    "/api/v1/app/stores/account" => {
        get(account, doc("Your store account: the appAccountToken to pass with App Store purchases, and your store subscriptions")),
    },
    "/api/v1/app/stores/google/purchases" => {
        post(link_google_purchase, doc("Register a Google Play purchase token as yours (notifications about it then apply to you)")),
    },
}

pub async fn account(State(app): State<App>, Caller(caller): Caller) -> ApiResult<Json<StoreAccount>> {
    Ok(Json(app.store_account(&caller).await?))
}

pub async fn link_google_purchase(
    State(app): State<App>,
    Caller(caller): Caller,
    ApiJson(purchase): ApiJson<GooglePurchase>,
) -> ApiResult<Json<LinkedPurchase>> {
    Ok(Json(app.link_google_purchase(&caller, purchase).await?))
}
